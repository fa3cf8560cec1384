"""Business rules without servers: validation, the pure policy functions, the snapshot cache."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import redis
from pydantic import ValidationError

from core.keys import Keys
from core.rules import Rule, RuleIn, RuleSnapshot, pin_positions, place_pins, score_deltas
from core.stores.rules import RuleLimitReached, RuleStore

KEYS = Keys("t")


class FakeRedis:
    """Just enough of `redis.Redis` for RuleStore (bytes out, like the real client).

    Counts every command by name and raises ConnectionError for all of them while `down`."""

    def __init__(self) -> None:
        self.strings: dict[str, bytes] = {}
        self.hashes: dict[str, dict[bytes, bytes]] = {}
        self.calls: Counter[str] = Counter()
        self.down = False

    def _call(self, name: str) -> None:
        self.calls[name] += 1
        if self.down:
            raise redis.ConnectionError("fake redis is down")

    @staticmethod
    def _b(v: Any) -> bytes:
        return v if isinstance(v, bytes) else str(v).encode()

    def get(self, key: str) -> bytes | None:
        self._call("get")
        return self.strings.get(key)

    def incr(self, key: str) -> int:
        self._call("incr")
        n = int(self.strings.get(key, b"0")) + 1
        self.strings[key] = str(n).encode()
        return n

    def hget(self, key: str, field: str) -> bytes | None:
        self._call("hget")
        return self.hashes.get(key, {}).get(self._b(field))

    def hmget(self, key: str, fields: list[str]) -> list[bytes | None]:
        self._call("hmget")
        return [self.hashes.get(key, {}).get(self._b(f)) for f in fields]

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        self._call("hgetall")
        return dict(self.hashes.get(key, {}))

    def hlen(self, key: str) -> int:
        self._call("hlen")
        return len(self.hashes.get(key, {}))

    def hexists(self, key: str, field: str) -> bool:
        self._call("hexists")
        return self._b(field) in self.hashes.get(key, {})

    def hset(self, key: str, field: str, value: Any) -> int:
        self._call("hset")
        h = self.hashes.setdefault(key, {})
        new = self._b(field) not in h
        h[self._b(field)] = self._b(value)
        return int(new)

    def hdel(self, key: str, *fields: str) -> int:
        self._call("hdel")
        h = self.hashes.get(key, {})
        return sum(h.pop(self._b(f), None) is not None for f in fields)

    def pipeline(self, transaction: bool = True) -> FakePipe:
        return FakePipe(self, queued=True)

    def transaction(
        self, func: Callable[[Any], Any], *watches: str, value_from_callable: bool = False
    ) -> Any:
        # Single-threaded fake: WATCH can never fail, so the callable runs exactly once.
        pipe = FakePipe(self, queued=False)
        value = func(pipe)
        result = pipe.execute()
        return value if value_from_callable else result


class FakePipe:
    """Runs commands at once until `multi()` (like a watching pipeline), then queues them."""

    def __init__(self, r: FakeRedis, *, queued: bool) -> None:
        self.r = r
        self.queue: list[tuple[str, tuple[Any, ...]]] | None = [] if queued else None

    def multi(self) -> None:
        self.queue = []

    def execute(self) -> list[Any]:
        queue, self.queue = self.queue or [], []
        return [getattr(self.r, name)(*args) for name, args in queue]

    def __getattr__(self, name: str) -> Any:
        cmd = getattr(self.r, name)
        if self.queue is None:
            return cmd

        def queued(*args: Any) -> FakePipe:
            assert self.queue is not None
            self.queue.append((name, args))
            return self

        return queued


def _rule(rule_id: str = "r", *, updated_at: float = 1.0, **fields: Any) -> Rule:
    return Rule(rule_id=rule_id, created_at=1.0, updated_at=updated_at, **fields)


def _errors(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as e:
        RuleIn.model_validate(body)
    return str(e.value)


# --- validation ---


def test_invalid_rules_are_rejected_with_a_reason() -> None:
    assert "pin needs item_id" in _errors({"action": "pin", "category": "news", "position": 1})
    assert "exactly one target" in _errors(
        {"action": "pin", "item_id": "a", "category": "news", "position": 1}
    )
    assert "exactly one target" in _errors({"action": "boost"})
    assert "pin needs position" in _errors({"action": "pin", "item_id": "a"})
    assert "position applies to pin only" in _errors(
        {"action": "boost", "item_id": "a", "position": 2}
    )
    assert "weight applies to boost and bury only" in _errors(
        {"action": "pin", "item_id": "a", "position": 1, "weight": 1}
    )
    assert "in the past" in _errors(
        {"action": "bury", "item_id": "a", "expires_at": time.time() - 1}
    )
    assert "extra_forbidden" in _errors({"action": "bury", "item_id": "a", "colour": "red"})
    for bad in (
        {"action": "pin", "item_id": "a", "position": 0},
        {"action": "pin", "item_id": "a", "position": 101},
        {"action": "boost", "item_id": "a", "weight": 0},
        {"action": "boost", "item_id": "a", "weight": 10.5},
        {"action": "boost", "item_id": "a", "weight": float("inf")},
        {"action": "boost", "item_id": "../etc"},
        {"action": "boost", "category": ""},
        {"action": "boost", "item_id": "a", "surfaces": ["Home Page"]},
        {"action": "boost", "item_id": "a", "note": "x" * 501},
        {"action": "promote", "item_id": "a"},
    ):
        _errors(bad)


def test_valid_rules_are_normalised() -> None:
    boost = RuleIn.model_validate(
        {"action": "boost", "category": "  News ", "surfaces": ["homepage", "homepage"]}
    )
    assert boost.weight == 0.5 and boost.category == "news" and boost.surfaces == ["homepage"]
    pin = RuleIn.model_validate({"action": "pin", "item_id": "a", "position": 100})
    assert pin.weight is None and pin.surfaces == []
    # A stored rule that has expired since still decodes (only input is checked).
    old = _rule(action="bury", item_id="a", weight=1, expires_at=1000.0)
    assert Rule.model_validate_json(old.model_dump_json()).is_expired(time.time())
    assert old.delta == -1.0 and _rule(action="boost", item_id="a", weight=2).delta == 2.0


# --- pure functions ---


def test_score_deltas_sum_item_and_category_rules() -> None:
    rules = [
        _rule("b1", action="boost", item_id="a", weight=0.5),
        _rule("b2", action="boost", category="news", weight=0.25),
        _rule("d1", action="bury", category="news", weight=1.0),
        _rule("d2", action="bury", item_id="c", weight=0.75),
        _rule("p", action="pin", item_id="b", position=1),
    ]
    items = [("a", "news"), ("a", None), ("b", "sport"), ("c", "news"), ("z", "")]
    assert score_deltas(rules, items) == pytest.approx([-0.25, 0.5, 0.0, -1.5, 0.0])
    assert score_deltas([], items) == [0.0] * 5
    assert score_deltas(rules, []) == []


def test_pin_collisions_go_to_the_most_recently_updated_rule() -> None:
    rules = [
        _rule("old", action="pin", item_id="a", position=1, updated_at=10),
        _rule("new", action="pin", item_id="b", position=1, updated_at=20),
        _rule("moved", action="pin", item_id="b", position=3, updated_at=15),
        _rule("c", action="pin", item_id="c", position=2, updated_at=5),
        _rule("tie-b", action="pin", item_id="e", position=5, updated_at=7),
        _rule("tie-a", action="pin", item_id="d", position=5, updated_at=7),
        _rule("boost", action="boost", item_id="x"),
    ]
    # b keeps position 1 (newest); a loses it and is dropped; b's older pin at 3 is dropped;
    # on equal times the smaller rule id wins.
    assert pin_positions(rules) == {"b": 0, "c": 1, "d": 4}
    assert pin_positions([]) == {}
    # When b may not be shown to this user, its pins claim nothing: a gets position 1 back.
    assert pin_positions(rules, allowed={"a", "c", "d", "e"}) == {"a": 0, "c": 1, "d": 4}


def test_place_pins_holds_positions_clamps_and_truncates() -> None:
    ids = ["a", "b", "c", "d", "e"]
    # Moved from anywhere, inserted when absent, the others keep their order.
    assert place_pins(ids, {"e": 0, "x": 2}, 10) == ["e", "a", "x", "b", "c", "d"]
    assert place_pins(ids, {"a": 1, "b": 0}, 10) == ["b", "a", "c", "d", "e"]
    assert place_pins(ids, {}, 3) == ["a", "b", "c"]
    # Past the end: clamped to it, in position order.
    assert place_pins(["a", "b"], {"y": 50, "x": 9}, 10) == ["a", "b", "x", "y"]
    # Truncated after placing: a pin beyond the limit is not shown.
    assert place_pins(ids, {"e": 0, "a": 4}, 3) == ["e", "b", "c"]
    assert place_pins(ids, {"x": 1}, 0) == []
    assert place_pins([], {"x": 3}, 5) == ["x"]


# --- the store and its snapshot ---


def _store(**kw: Any) -> tuple[RuleStore, FakeRedis]:
    r = FakeRedis()
    return RuleStore(r, KEYS, **kw), r  # type: ignore[arg-type]


def _ids(rules: Any) -> list[str]:
    return [x.rule_id for x in rules]


def _put(store: RuleStore, rule_id: str, **body: Any) -> tuple[Rule, bool]:
    return store.put(rule_id, RuleIn.model_validate(body))


def test_put_replaces_keeps_created_at_and_bumps_the_version() -> None:
    store, _ = _store()
    first, created = store.put("r1", RuleIn(action="boost", item_id="a"), now=100.0)
    assert created and first.created_at == first.updated_at == 100.0
    again, created = store.put("r1", RuleIn(action="bury", item_id="a", weight=2), now=200.0)
    assert not created and again.created_at == 100.0 and again.updated_at == 200.0
    assert store.get("r1") == again and store.version() == 2
    assert store.list() == (2, [again])
    assert store.delete("r1") and not store.delete("r1")
    assert store.version() == 3 and store.get("r1") is None


def test_rule_count_is_capped_but_expired_rules_make_room() -> None:
    store, _ = _store(max_rules=2)
    now = time.time()
    _put(store, "a", action="boost", item_id="a")
    _put(store, "b", action="boost", item_id="b", expires_at=now + 60)
    with pytest.raises(RuleLimitReached, match="already 2 rules"):
        store.put("c", RuleIn(action="boost", item_id="c"), now=now)
    _, created = store.put("a", RuleIn(action="bury", item_id="a"), now=now)  # replace: fine
    assert not created
    _, created = store.put("c", RuleIn(action="boost", item_id="c"), now=now + 61)
    assert created and store.get("b") is None


def test_snapshot_is_cached_and_rereads_rules_only_when_the_version_changed() -> None:
    store, r = _store()
    _put(store, "r1", action="boost", item_id="a")
    r.calls.clear()
    t = 1000.0
    s1 = store.snapshot(now=t)
    assert s1.version == 1 and _ids(s1.rules) == ["r1"]
    assert r.calls == {"get": 1, "hgetall": 1}  # version and rules, in one MULTI
    r.calls.clear()
    for dt in (0.1, 0.5, 0.99):
        assert store.snapshot(now=t + dt) is s1
    assert not r.calls  # no Redis at all within a second
    assert store.snapshot(now=t + 1.0) is s1
    assert r.calls == {"get": 1}  # version unchanged: the hash is not read
    _put(store, "r2", action="bury", category="news")
    r.calls.clear()
    assert store.snapshot(now=t + 1.5) is s1  # changes show within a second, not at once
    s2 = store.snapshot(now=t + 2.0)
    assert s2.version == 2 and _ids(s2.rules) == ["r1", "r2"]
    assert r.calls["hgetall"] == 1
    r.calls.clear()
    assert store.snapshot(now=t) is s2 and r.calls == {"get": 1}  # clock went back: re-check


def test_snapshot_survives_a_redis_outage_and_logs_it_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, r = _store()
    _put(store, "r1", action="boost", item_id="a")
    t = 1000.0
    good = store.snapshot(now=t)
    r.down = True
    r.calls.clear()
    with caplog.at_level(logging.INFO, logger="core.stores.rules"):
        for n in range(1, 6):
            assert store.snapshot(now=t + n) is good
            assert store.snapshot(now=t + n + 0.5) is good
        assert r.calls == {"get": 5}  # tried once per second, not once per request
        assert [m for m in caplog.messages if "cannot refresh" in m] == [caplog.messages[0]]
        assert "ConnectionError" in caplog.messages[0]
        r.down = False
        _put(store, "r2", action="pin", item_id="b", position=1)
        back = store.snapshot(now=t + 10)
    assert back.version == 2 and len(back.rules) == 2
    assert any("refreshed again" in m for m in caplog.messages)


def test_snapshot_without_any_previous_one_and_redis_down_is_empty() -> None:
    store, r = _store()
    r.down = True
    empty = store.snapshot(now=1000.0)
    assert empty == RuleSnapshot(version=-1) and empty.for_surface("homepage", 1000.0) == []
    r.down = False
    _put(store, "r1", action="boost", item_id="a")
    assert store.snapshot(now=1000.5).version == -1  # still within the second
    assert store.snapshot(now=1001.0).version == 1


def test_a_refresh_in_progress_does_not_block_other_callers() -> None:
    store, r = _store()
    first = store.snapshot(now=1000.0)
    with store._lock:  # as if another thread were waiting on Redis right now
        r.calls.clear()
        assert store.snapshot(now=1005.0) is first
        assert not r.calls


def test_expired_rules_are_ignored_then_pruned_with_a_version_bump() -> None:
    store, _ = _store()
    now = time.time()
    _put(store, "soon", action="bury", item_id="a", expires_at=now + 30)
    _put(store, "later", action="bury", item_id="b", expires_at=now + 300)
    _put(store, "home", action="boost", item_id="c", surfaces=["homepage"])
    _put(store, "all", action="boost", category="news")
    snap = store.snapshot(now=now)
    assert snap.version == 4
    assert _ids(snap.for_surface("homepage", now)) == ["all", "home", "later", "soon"]
    assert _ids(snap.for_surface("related", now)) == ["all", "later", "soon"]
    assert _ids(snap.for_surface("related", now + 30)) == ["all", "later"]
    assert _ids(snap.active(now + 300)) == ["all", "home"]
    # The next check after the expiry deletes it and bumps the version (result caches keyed
    # by the version must not keep serving its effect).
    after = store.snapshot(now=now + 31)
    assert after.version == 5 and _ids(after.rules) == ["all", "home", "later"]
    assert store.get("soon") is None
    # A rule replaced meanwhile with a later expiry is not pruned on the old one's account.
    _put(store, "later", action="bury", item_id="b", expires_at=now + 900)
    assert store.prune(now + 301, ["later"]) == 0 and store.get("later") is not None
    assert store.prune(now + 901) == 1 and store.get("later") is None


def test_unreadable_stored_rules_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    store, r = _store()
    _put(store, "ok", action="boost", item_id="a")
    r.hset(KEYS.rules, "bad", b"{not json")
    r.hset(KEYS.rules, "future", b'{"rule_id": "future", "action": "teleport"}')
    with caplog.at_level(logging.WARNING, logger="core.stores.rules"):
        assert _ids(store.snapshot(now=1.0).rules) == ["ok"]
    assert sum("skipping unreadable rule" in m for m in caplog.messages) == 2


def test_an_unforeseen_refresh_error_keeps_the_last_snapshot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, r = _store()
    _put(store, "r1", action="boost", item_id="a")
    good = store.snapshot(now=1000.0)
    r.strings[KEYS.rules_version] = b"not a number"
    with caplog.at_level(logging.WARNING, logger="core.stores.rules"):
        assert store.snapshot(now=1001.0) is good
    assert "ValueError" in caplog.text and "Traceback" in caplog.text
