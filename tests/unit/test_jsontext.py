"""JSON text read on the request path: orjson's speed, the standard library's answers."""

from __future__ import annotations

import json
import math

import pytest

from core import jsontext


def test_reads_what_the_standard_library_reads() -> None:
    value = {"t": "tag", "at": 1.7e9, "s": {"collaborative": [["m1", 0.12345], ["m2", -1.0]]}}
    for text in (json.dumps(value), json.dumps(value).encode(), json.dumps(value, indent=2)):
        assert jsontext.loads(text) == json.loads(text)


def test_reads_nan_and_infinity_that_only_the_standard_library_writes() -> None:
    got = jsontext.loads(json.dumps({"a": float("nan"), "b": float("inf"), "c": [1, 2]}))
    assert math.isnan(got["a"]) and got["b"] == math.inf and got["c"] == [1, 2]


def test_a_broken_text_raises_the_standard_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        jsontext.loads('{"a": ')
