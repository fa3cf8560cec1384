"""The in-process copies in front of the result cache: bounded, least recently used out first,
each kept only until its own expiry."""

from __future__ import annotations

import time

from core.stores.cache import LocalCopies


def test_bounded_and_least_recently_used_out_first() -> None:
    c = LocalCopies(2)
    c.put("a", "1", 60)
    c.put("b", "2", 60)
    assert c.get("a") == "1"  # a is now the most recently used
    c.put("c", "3", 60)
    assert (c.get("a"), c.get("b"), c.get("c")) == ("1", None, "3")


def test_expiry_and_off() -> None:
    c = LocalCopies(4)
    c.put("short", "x", 0.05)
    c.put("gone", "y", 0)  # already expired (a PTTL of -1 or -2 lands here too)
    assert c.get("short") == "x" and c.get("gone") is None
    time.sleep(0.1)
    assert c.get("short") is None
    off = LocalCopies(0)
    off.put("k", "v", 60)
    assert off.get("k") is None
