"""The write path without servers: script signatures, the served-list record, the handler table,
and the buffers a writer keeps between batches."""

from __future__ import annotations

import json
import random
import re
import time
from importlib import resources
from typing import Any, cast

import pytest

from core import events as ev
from core import scripts
from core.scripts import ATTRIBUTE_CLICK, COUNT_INTERACTIONS, Script, Signature
from core.served_list import (
    ATTRIBUTION_FIELDS,
    MAX_NAME,
    Attribution,
    ServedItem,
    ServedList,
    stats_fields,
    stats_name,
)
from indexing.apply import CategoryMembers, Stores, UnflushedWrites, UserSync
from indexing.worker import HANDLERS, _apply_run
from serving.impressions import to_record

SHIPPED = [s for s in vars(scripts).values() if isinstance(s, Script)]


def test_every_lua_file_is_a_declared_script() -> None:
    files = {
        f.name.removesuffix(".lua")
        for f in resources.files("core.scripts").iterdir()
        if f.name.endswith(".lua")
    }
    assert files == {s.name for s in SHIPPED}
    assert len(SHIPPED) == 13


@pytest.mark.parametrize("script", SHIPPED, ids=lambda s: s.name)
def test_scripts_index_only_what_they_declare(script: Script) -> None:
    """KEYS[n] and ARGV[n] in the code stay within the header's fixed names (no drift)."""
    used_keys = {int(n) for n in re.findall(r"KEYS\[(\d+)\]", script.source)}
    used_args = {int(n) for n in re.findall(r"ARGV\[(\d+)\]", script.source)}
    assert used_keys == set(range(1, len(script.keys.names) + 1))
    assert used_args <= set(range(1, len(script.args.names) + 1))
    if script.args.rest is None:
        assert used_args == set(range(1, len(script.args.names) + 1))


def test_count_interactions_reads_its_markers_and_sets_after_the_named_keys() -> None:
    first = re.search(r"local first_marker = (\d+)", COUNT_INTERACTIONS.source)
    assert first is not None and int(first.group(1)) == len(COUNT_INTERACTIONS.keys.names) + 1
    assert COUNT_INTERACTIONS.keys.rest == "rest" and COUNT_INTERACTIONS.args.rest == "events"


def test_signature_binds_names_in_declared_order() -> None:
    sig = Signature.parse("a b *rest", "t")
    assert sig == Signature(("a", "b"), "rest")
    assert sig.bind({"b": 2, "rest": [3, 4], "a": 1}, "t") == [1, 2, 3, 4]
    assert sig.bind({"b": 2, "rest": [], "a": 1}, "t") == [1, 2]
    with pytest.raises(TypeError, match=r"missing \['b'\], unknown \['c'\]"):
        sig.bind({"a": 1, "c": 2, "rest": []}, "t")
    with pytest.raises(TypeError, match=r"missing \['rest'\]"):
        sig.bind({"a": 1, "b": 2}, "t")
    assert Signature.parse("", "t") == Signature((), None)


@pytest.mark.parametrize("declared", ["a *b c", "*a *b", "a a", "a B", "a *a"])
def test_signature_rejects_bad_declarations(declared: str) -> None:
    with pytest.raises(ValueError):
        Signature.parse(declared, "t")


def _served(user: str = "u") -> ServedList:
    return ServedList(
        id="r1",
        user=user,
        surface="homepage",
        variant="B",
        t=12.5,
        cached=False,
        degraded=True,
        items=(
            ServedItem("a", ("content", "popular"), 1, False, 0.8),
            ServedItem("b", (), 2, True, None),
        ),
    )


def test_served_list_encodes_as_the_stream_and_hash_always_did() -> None:
    rec = _served()
    assert rec.to_json() == (
        '{"id":"r1","user":"u","surface":"homepage","variant":"B","t":12.5,"cached":false,'
        '"degraded":true,"items":[["a",["content","popular"],1,false,0.8],["b",[],2,true,null]]}'
    )
    assert ServedList.from_json(rec.to_json()) == rec
    info = rec.attributions()
    assert list(info) == ["a", "b"]
    assert info["a"] == (
        '{"user":"u","sources":["content","popular"],"position":1,"surface":"homepage",'
        '"variant":"B","explored":false,"propensity":0.8}'
    )
    assert Attribution.from_json(info["b"]) == Attribution("u", (), 2, "homepage", "B", True, None)


def test_a_lists_hash_is_byte_for_byte_each_items_attribution() -> None:
    """`attributions()` encodes the list's fields once: the same bytes as one `Attribution`
    per item, whatever the names hold (quotes, non-ASCII, separators) or the numbers are."""
    rng = random.Random(7)
    names = ["u", 'a"b', "é中", "x\\y", "tab\t", "", "|"]
    odd = [None, 0.5, 1e-07, 0.123457, 1.0, 3e20, float("nan"), float("inf")]
    for n in range(200):
        rec = ServedList(
            id=f"r{n}",
            user=rng.choice(names),
            surface=rng.choice(names),
            variant=rng.choice(names),
            t=1.0,
            cached=False,
            degraded=False,
            items=tuple(
                ServedItem(
                    f"i{k}{rng.choice(names)}",
                    tuple(rng.sample(names, rng.randrange(4))),
                    rng.randrange(1, 1000),
                    rng.random() < 0.5,
                    rng.choice(odd),
                )
                for k in range(rng.randrange(6))
            ),
        )
        expected = {
            it.item_id: Attribution(
                rec.user,
                it.sources,
                it.position,
                rec.surface,
                rec.variant,
                it.explored,
                it.propensity,
            ).to_json()
            for it in rec.items
        }
        assert rec.attributions() == expected


def test_the_attribution_script_reads_exactly_the_documented_fields() -> None:
    read = set(re.findall(r"\bd\.(\w+)", ATTRIBUTE_CLICK.source))
    assert read == set(ATTRIBUTION_FIELDS)
    decoded = json.loads(_served().attributions()["a"])
    # The types the script checks before it counts a click.
    assert isinstance(decoded["surface"], str) and isinstance(decoded["variant"], str)
    assert isinstance(decoded["user"], str) and isinstance(decoded["sources"], list)
    assert all(isinstance(s, str) for s in decoded["sources"])


def test_stats_names_split_back_into_four_parts() -> None:
    assert stats_name("home|page", "x") == "home_page"
    assert stats_name(None, "unknown") == "unknown" and stats_name("", "default") == "default"
    assert len(stats_name("s" * 500, "x")) == MAX_NAME
    assert stats_fields("click", "home", "B", ["cf", "content"]) == [
        "click|home|cf|B",
        "click|home|content|B",
        "click|home|*|B",
    ]


def test_a_response_becomes_its_served_list_record() -> None:
    response: dict[str, Any] = {
        "recommendation_id": "r9",
        "user_id": "u",
        "surface": "home|page",
        "items": [
            {"item_id": "a", "sources": ["cf", "cf", "con|tent"], "position": 0},
            {"item_id": "a", "sources": ["popular"]},  # a repeat is counted once
            {"item_id": "b", "propensity": 0.123456789, "explored": True},
            {"item_id": "c", "sources": [["not", "a", "name"], "cf"]},  # unhashable: still named
        ],
    }
    rec = to_record(response, at=10.0004)
    assert rec == ServedList(
        id="r9",
        user="u",
        surface="home_page",
        variant="default",
        t=10.0,
        cached=False,
        degraded=False,
        items=(
            ServedItem("a", ("cf", "con_tent"), 1, False, None),
            ServedItem("b", (), 3, True, 0.123457),
            ServedItem("c", ("['not', 'a', 'name']", "cf"), 4, False, None),
        ),
    )
    # An empty list is still a served list (the experiment guardrails count it), with its time.
    empty = to_record({"recommendation_id": "r", "items": [], "degraded": True}, ms=12.3456)
    assert empty is not None and empty.items == () and empty.degraded and empty.ms == 12.346
    assert to_record({"items": [{"item_id": "a"}]}) is None
    # The request is kept for replays (bounded, scalars only) and survives the stream record.
    asked = {"limit": 5, "item_id": "x" * 300, "category": None, "debug": True, "language": 3}
    kept = to_record(response, query=asked)
    assert kept is not None and kept.query == {"limit": 5, "item_id": "x" * 256}
    assert ServedList.from_json(kept.to_json()).query == kept.query
    assert ServedList.from_json(rec.to_json()).query is None and '"q"' not in rec.to_json()


def test_every_event_type_has_a_handler() -> None:
    assert set(HANDLERS) == set(ev.EVENT_TYPES)


def test_undecodable_payloads_are_poison_before_any_store_is_touched() -> None:
    nowhere = cast(Stores, None)  # a handler that reached a store would fail otherwise
    bad = ev.Event("1-0", ev.ITEM_DELETED, {"id": "x"}, 0.0)
    with pytest.raises(ev.PoisonEvent):
        _apply_run(nowhere, ev.ITEM_DELETED, [bad])
    with pytest.raises(ev.PoisonEvent):
        _apply_run(nowhere, ev.INTERACTION_LOGGED, [ev.Event("2-0", "x", {"user_id": 1}, 0.0)])
    with pytest.raises(ev.PoisonEvent, match="no handler"):
        _apply_run(nowhere, "no.such.type", [bad])


def test_user_sync_waits_for_its_interval_and_keeps_users_until_cleared() -> None:
    sync = UserSync(interval_s=60)
    assert sync.due(force=True) == []
    sync.add(["b", "a"])
    sync.add(["a"])
    assert sync.due(force=False) == []
    assert sync.due(force=True) == ["a", "b"]
    assert sync.due(force=True) == ["a", "b"]  # still pending: a failed write retries them
    sync.clear()
    assert sync.due(force=True) == [] and sync.since is None
    sync = UserSync(interval_s=0.01)
    sync.add(["c"])
    time.sleep(0.02)
    assert sync.due(force=False) == ["c"]


def test_unflushed_writes_are_due_after_their_interval() -> None:
    w = UnflushedWrites(interval_s=60)
    assert not w.due(force=True)  # nothing written
    w.mark()
    first = w.since
    w.mark()
    assert w.since == first  # the oldest write counts
    assert not w.due(force=False) and w.due(force=True)
    w.clear()
    assert not w.due(force=True) and w.since is None
    assert not UnflushedWrites(interval_s=0, since=1.0).due(force=True)  # flushing disabled
    assert UnflushedWrites(interval_s=0.01, since=time.monotonic() - 1).due(force=False)


def test_a_categorys_members_are_read_once_per_collection_within_their_ttl() -> None:
    reads: list[str] = []

    def read(name: str) -> list[str]:
        reads.append(name)
        return [f"{name}-1"]

    kept = CategoryMembers(ttl_s=60)
    assert kept.get("items_v1", "jazz", lambda: read("jazz")) == ["jazz-1"]
    assert kept.get("items_v1", "jazz", lambda: read("again")) == ["jazz-1"]  # kept
    assert kept.get("items_v2", "jazz", lambda: read("v2")) == ["v2-1"]  # another collection
    assert kept.get("items_v1", "rock", lambda: read("rock")) == ["rock-1"]
    assert reads == ["jazz", "v2", "rock"]
    expired = CategoryMembers(ttl_s=0)
    expired.get("items_v1", "jazz", lambda: read("a"))
    expired.get("items_v1", "jazz", lambda: read("b"))
    assert reads[-2:] == ["a", "b"]
