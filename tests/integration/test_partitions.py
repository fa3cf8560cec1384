"""Partitioned event streams: routing, idempotent publishing across partitions, workers that
share the partitions (leases, take-over of a dead worker's), dead letters per partition."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

from app.main import create_app
from core import events as ev
from core.domain import EVENT_WEIGHTS, Interaction
from core.keys import Keys
from core.settings import Settings
from indexing.connect import build_stores
from indexing.partitions import Leases, holders
from indexing.worker import Worker
from tests.conftest import authed

PARTS = 8


@pytest.fixture
def psettings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"redis": settings.redis.model_copy(update={"partitions": PARTS})}
    )


@pytest.fixture
def pstores(psettings: Settings, embedder: Any) -> Any:
    s = build_stores(psettings, embedder=embedder)
    yield s
    s.redis.close()
    s.items.client.close()


def _view(user: str, item: str, t: int = 0) -> tuple[str, dict[str, Any]]:
    return ev.interaction_event(
        Interaction(user_id=user, item_id=item, type="view", timestamp=1_700_000_000 + t)
    )


def _pop(stores: Any) -> dict[str, float]:
    rows = stores.redis.zrange(stores.keys.popularity, 0, -1, withscores=True)
    return {i.decode(): s for i, s in rows}


def test_a_users_events_share_one_partition_in_order(pstores: Any) -> None:
    keys: Keys = pstores.keys
    events = [_view(f"u{n % 10}", f"i{n}", n) for n in range(200)]
    ids = ev.publish(pstores.redis, keys, events)
    assert len(set(ids)) == 200  # unique across partitions
    used = set()
    for (_, data), eid in zip(events, ids, strict=True):
        _, p = ev.split_id(eid)
        assert p == keys.partition_of(data["user_id"])
        used.add(p)
    assert len(used) > 1
    for user in (f"u{n}" for n in range(10)):
        p = keys.partition_of(user)
        rows = pstores.redis.xrange(keys.stream(p))
        mine = [ev.decode(i, f, p) for i, f in rows]
        items = [e.data["item_id"] for e in mine if e.data["user_id"] == user]
        assert items == [f"i{n}" for n in range(200) if n % 10 == int(user[1:])]


def test_idempotent_publish_spanning_partitions_stores_each_share_once(pstores: Any) -> None:
    keys: Keys = pstores.keys
    events = [_view(f"u{n}", "x") for n in range(20)]
    first = ev.publish_once(pstores.redis, keys, events, key="k1", fingerprint="f", ttl_s=60)
    assert not first.replayed and len({ev.split_id(i)[1] for i in first.ids}) > 1
    # A retry after a failure part-way through: one partition's share was never stored.
    p = ev.split_id(first.ids[0])[1]
    share = [i for i in first.ids if ev.split_id(i)[1] == p]
    pstores.redis.delete(keys.idempotency(p, _digest("k1")))
    pstores.redis.xdel(keys.stream(p), *(ev.split_id(i)[0] for i in share))
    again = ev.publish_once(pstores.redis, keys, events, key="k1", fingerprint="f", ttl_s=60)
    assert again.ids != first.ids and not again.replayed
    assert [i for i in again.ids if ev.split_id(i)[1] != p] == [
        i for i in first.ids if ev.split_id(i)[1] != p
    ]
    total = sum(pstores.redis.xlen(keys.stream(q)) for q in range(PARTS))
    assert total == 20
    third = ev.publish_once(pstores.redis, keys, events, key="k1", fingerprint="f", ttl_s=60)
    assert third.replayed and third.ids == again.ids
    with pytest.raises(ev.IdempotencyConflict):
        ev.publish_once(pstores.redis, keys, events[:3], key="k1", fingerprint="g", ttl_s=60)
    assert sum(pstores.redis.xlen(keys.stream(q)) for q in range(PARTS)) == 20


def _digest(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()


def test_leases_share_partitions_fairly_and_move_when_a_worker_leaves(pstores: Any) -> None:
    r, keys = pstores.redis, pstores.keys
    a, b, c = (Leases(r, keys, name, ttl_ms=60_000) for name in ("a", "b", "c"))
    assert a.balance() == (set(range(PARTS)), set())
    assert b.balance() == (set(), set())  # all held: b waits for a to give some back
    gained, lost = a.balance()
    assert not gained and len(lost) == PARTS // 2 and len(a.held) == PARTS // 2
    b.balance()
    assert a.held.isdisjoint(b.held) and len(a.held | b.held) == PARTS
    c.balance()
    for _ in range(2):  # c joins: each settles at <= ceil(8 / 3) = 3
        for w in (a, b, c):
            w.balance()
    assert max(len(w.held) for w in (a, b, c)) == 3
    assert sorted(a.held | b.held | c.held) == list(range(PARTS))
    assert sum(len(w.held) for w in (a, b, c)) == PARTS
    a.leave()
    for w in (b, c):
        w.balance()
    assert b.held.isdisjoint(c.held) and len(b.held | c.held) == PARTS
    assert set(holders(r, keys).values()) == {"b", "c"}


def test_a_lapsed_lease_is_taken_over_with_its_pending_entries(pstores: Any) -> None:
    r, keys = pstores.redis, pstores.keys
    events = [_view(f"u{n}", f"i{n % 7}") for n in range(300)]
    # A worker that took every partition, read everything, and died (its leases lapse).
    dead = Worker(pstores, consumer="dead", claim_idle_ms=60_000)
    dead.leases = Leases(r, keys, "dead", ttl_ms=300)
    dead.leases.balance()
    dead.ensure_group()
    ev.publish(r, keys, events)
    assert sum(len(rows) for _, rows in dead._read_new(None)) == 300
    time.sleep(0.4)
    live = Worker(pstores, consumer="live", claim_idle_ms=60_000, block_ms=20)
    stop = threading.Event()
    thread = threading.Thread(target=live.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while sum(_pop(pstores).values()) < 300 * EVENT_WEIGHTS["view"]:
            assert time.monotonic() < deadline, "the pending entries were not taken over"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)
    expected = Counter(d["item_id"] for _, d in events)
    assert _pop(pstores) == {i: n * EVENT_WEIGHTS["view"] for i, n in expected.items()}
    pending = sum(r.xpending(keys.stream(p), live.group)["pending"] for p in range(PARTS))
    assert pending == 0
    assert set(holders(r, keys).values()) == {None}  # a clean stop gives them back


def test_three_workers_share_eight_partitions_and_apply_each_event_once(
    psettings: Settings, pstores: Any, embedder: Any
) -> None:
    r, keys = pstores.redis, pstores.keys
    n_events, sent = 20_000, Counter[str]()
    workers = [
        Worker(build_stores(psettings, embedder=embedder), consumer=f"w{k}", block_ms=20)
        for k in range(3)
    ]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,)) for w in workers]
    for t in threads:
        t.start()
    try:
        for b in range(n_events // 500):
            batch = [_view(f"u{(b * 500 + k) % 300}", f"i{(b + k) % 50}", b) for k in range(500)]
            sent.update(d["item_id"] for _, d in batch)
            ev.publish(r, keys, batch)
        deadline = time.monotonic() + 120
        while sum(_pop(pstores).values()) < n_events * EVENT_WEIGHTS["view"]:
            assert time.monotonic() < deadline, "not every event was applied"
            time.sleep(0.1)
        held = [set(w.leases.held) for w in workers if w.leases]
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert _pop(pstores) == {i: n * EVENT_WEIGHTS["view"] for i, n in sent.items()}
    assert sum(len(h) for h in held) == PARTS and set().union(*held) == set(range(PARTS))
    assert sum(w.stats.applied for w in workers) >= n_events
    assert sum(1 for w in workers if w.stats.applied) >= 2  # the work was shared


def test_dead_letters_of_every_partition_are_paged_replayed_and_discarded(
    psettings: Settings, pstores: Any
) -> None:
    r, keys = pstores.redis, pstores.keys
    users = [f"d{n}" for n in range(50)]
    parts = sorted({keys.partition_of(u) for u in users})[:3]
    chosen = [next(u for u in users if keys.partition_of(u) == p) for p in parts]
    w = Worker(pstores, consumer="dl")
    w.ensure_group()
    for u in chosen:  # an interaction with a bad payload, in that user's partition
        p = keys.partition_of(u)
        r.xadd(keys.stream(p), {"type": ev.INTERACTION_LOGGED, "data": f'{{"user_id":"{u}"}}'})
    w.drain()
    with authed(create_app(psettings), psettings) as client:
        seen, after = [], None
        while True:
            page = client.get(
                "/v1/admin/dead-letters", params={"limit": 1, **({"after": after} if after else {})}
            ).json()
            assert page["total"] == 3
            seen += [d["id"] for d in page["items"]]
            after = page["next"]
            if after is None:
                break
        assert len(seen) == 3 and {ev.split_id(i)[1] for i in seen} == set(parts)
        assert client.delete(f"/v1/admin/dead-letters/1-1-{PARTS}").status_code == 404
        out = client.post("/v1/admin/dead-letters/replay", json={"ids": seen[:1]}).json()
        (done,) = out["replayed"]
        assert ev.split_id(done["event_id"])[1] == ev.split_id(seen[0])[1]
        assert client.delete(f"/v1/admin/dead-letters/{seen[1]}").status_code == 204
        assert client.get("/v1/admin/dead-letters").json()["total"] == 1
        q = client.get("/v1/admin/queue").json()
        assert q["partitions"] == PARTS and len(q["by_partition"]) == PARTS
        assert q["lag"] == 1  # the replayed letter, waiting for a worker


def test_a_worker_restarted_under_its_name_takes_its_partitions_back_at_once(
    pstores: Any,
) -> None:
    r, keys = pstores.redis, pstores.keys
    before = Leases(r, keys, "same-name", ttl_ms=60_000)
    before.balance()
    assert len(before.held) == PARTS  # then the process dies: its leases stay for 60 s
    again = Leases(r, keys, "same-name", ttl_ms=60_000)
    gained, _ = again.balance()
    assert gained == set(range(PARTS))
    other = Leases(r, keys, "other", ttl_ms=60_000)
    assert other.balance() == (set(), set())  # still held: not taken by another name
