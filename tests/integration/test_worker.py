"""The worker: batches, idempotency, poison messages, reclaiming a dead consumer's entries."""

from __future__ import annotations

import threading
import time
from typing import Any

from core import events as ev
from core.domain import Interaction, Item
from core.settings import Settings
from indexing.refresh import CandidateRefresher
from indexing.worker import Worker


def _pop(stores: Any, item: str) -> float:
    return float(stores.redis.zscore(stores.keys.popularity, item) or 0)


def test_redelivered_interactions_apply_once(stores: Any, worker: Worker) -> None:
    ids = ev.publish(
        stores.redis,
        stores.keys,
        [
            ev.item_event(Item(item_id="a", title="Jazz piano trio")),
            ev.interaction_event(Interaction(user_id="u", item_id="a", type="click")),
            ev.interaction_event(Interaction(user_id="u", item_id="a", type="click")),
        ],
    )
    assert worker.drain() == 3
    assert _pop(stores, "a") == 2.0
    # Simulate redelivery of the same entries (a worker that crashed before XACK).
    entries = stores.redis.xrange(stores.keys.stream(0), ids[1], ids[2])
    worker._process(worker.partition(0), entries)
    assert _pop(stores, "a") == 2.0
    assert stores.redis.hget(stores.keys.user("u"), "cvec") is not None


def test_poison_message_is_dead_lettered_and_later_events_apply(
    stores: Any, worker: Worker
) -> None:
    stores.redis.xadd(stores.keys.stream(0), {"type": "interaction.logged", "data": "{oops"})
    stores.redis.xadd(stores.keys.stream(0), {"type": "no.such.type", "data": "{}"})
    stores.redis.xadd(
        stores.keys.stream(0),
        {"type": "interaction.logged", "data": '{"user_id": "u", "type": "view"}'},
    )
    ev.publish(
        stores.redis,
        stores.keys,
        [ev.interaction_event(Interaction(user_id="u", item_id="b", type="like"))],
    )
    worker.drain()
    assert stores.redis.xlen(stores.keys.dead_letters(0)) == 3
    assert _pop(stores, "b") == 3.0
    dead = stores.redis.xrange(stores.keys.dead_letters(0))
    assert all(b"error" in fields and b"original_id" in fields for _, fields in dead)
    assert stores.redis.xpending(stores.keys.stream(0), worker.group)["pending"] == 0


def test_dead_consumers_entries_are_reclaimed(stores: Any) -> None:
    crashed = Worker(stores, consumer="crashed", claim_idle_ms=0)
    crashed.ensure_group()
    ev.publish(
        stores.redis,
        stores.keys,
        [ev.interaction_event(Interaction(user_id="v", item_id="c", type="watch"))],
    )
    # The crashed worker read the entry and died before applying it.
    assert sum(len(rows) for _, rows in crashed._read_new(None)) == 1
    assert _pop(stores, "c") == 0
    survivor = Worker(stores, consumer="survivor", claim_idle_ms=0)
    assert survivor.reclaim() == 1
    assert _pop(stores, "c") == 2.0
    assert stores.redis.xpending(stores.keys.stream(0), survivor.group)["pending"] == 0


def test_applied_events_reach_the_durable_log_once(stores: Any, tmp_path: Any) -> None:
    from dataclasses import replace

    from core.stores.eventlog import EventLog, iter_log

    logged = replace(stores, log=EventLog(tmp_path / "events", "w1"))
    w = Worker(logged, consumer="w1")
    ids = ev.publish(
        stores.redis,
        stores.keys,
        [
            ev.interaction_event(Interaction(user_id="u", item_id=f"i{n}", type="view"))
            for n in range(5)
        ],
    )
    assert w.drain() == 5
    # A redelivery (crash between log and ack) appends duplicates; readers drop them.
    w._process(w.partition(0), stores.redis.xrange(stores.keys.stream(0)))
    (tmp_path / "events" / "dt=2000-01-01").mkdir()
    (tmp_path / "events" / "dt=2000-01-01" / "w0.jsonl").write_text('{"id": "torn')
    got = list(iter_log(tmp_path / "events", types=["interaction.logged"]))
    assert [r["id"] for r in got] == ids
    assert got[0]["data"]["item_id"] == "i0"


def test_stale_item_write_cannot_undo_a_newer_one(stores: Any, worker: Worker) -> None:
    """A reclaimed old PUT (maturity 0) must not revert a newer one (maturity 18)."""
    old_id, new_id = ev.publish(
        stores.redis,
        stores.keys,
        [
            ev.item_event(Item(item_id="film", title="Night film", maturity=0)),
            ev.item_event(Item(item_id="film", title="Night film", maturity=18)),
        ],
    )
    new_entry = stores.redis.xrange(stores.keys.stream(0), new_id, new_id)
    old_entry = stores.redis.xrange(stores.keys.stream(0), old_id, old_id)
    worker.ensure_group()
    worker._process(worker.partition(0), new_entry)
    worker._flush_items(force=True)
    worker._process(
        worker.partition(0), old_entry
    )  # arrives late, e.g. reclaimed after failing for a while
    worker._flush_items(force=True)
    stores.items.flush()
    assert stores.items.get(["film"])["film"]["maturity"] == 18


def test_item_edit_keeps_its_collaborative_vector(stores: Any, worker: Worker) -> None:
    import numpy as np

    from core.stores.items import ITEM_ROW_FIELDS
    from indexing.apply import apply_item_upserts

    apply_item_upserts(stores, [Item(item_id="x", title="Jazz")])
    row = stores.items.get(["x"], ITEM_ROW_FIELDS)["x"]
    row["cf_vec"] = [0.5] * stores.cf_dim  # as written by training
    stores.items.upsert([{"item_id": "x", **row}])
    apply_item_upserts(stores, [Item(item_id="x", title="Jazz (remastered)")])
    got = stores.items.vectors(["x"], field="cf_vec")["x"]
    assert np.allclose(got, 0.5)


def test_an_item_write_is_stamped_again_once_it_reached_the_index(
    stores: Any, monkeypatch: Any
) -> None:
    """The claim stamps the change log before embedding; a reader that cached the old row
    in between must see a stamp later than its read, so the write itself stamps again."""
    from indexing.apply import apply_item_upserts
    from indexing.reindex import redis_ms

    apply_item_upserts(stores, [Item(item_id="x", title="Jazz")])
    upserted: list[int] = []
    upsert = stores.items.upsert

    def timed(rows: Any, **kw: Any) -> Any:
        time.sleep(0.01)  # an embedding and a write that take a while
        upserted.append(redis_ms(stores.redis))
        return upsert(rows, **kw)

    monkeypatch.setattr(stores.items, "upsert", timed)
    feed_before = stores.redis.xlen(stores.keys.catalogue_feed)
    apply_item_upserts(stores, [Item(item_id="x", title="Jazz (live)")])
    assert stores.redis.zscore(stores.keys.item_changes, "x") >= upserted[0]
    assert stores.redis.xlen(stores.keys.catalogue_feed) == feed_before + 2  # claim, write


def test_duplicate_event_in_two_workers_applies_once(stores: Any) -> None:
    from indexing.apply import apply_interactions

    ev_ = Interaction(user_id="u", item_id="z", type="purchase")
    # Both workers hold the same event (reclaimed while the first still ran).
    assert apply_interactions(stores, [("5-0", ev_)]) == 1
    assert apply_interactions(stores, [("5-0", ev_)]) == 0
    assert _pop(stores, "z") == 4.0


def test_trim_keeps_everything_not_yet_acknowledged(stores: Any, worker: Worker) -> None:
    ids = ev.publish(
        stores.redis,
        stores.keys,
        [
            ev.interaction_event(Interaction(user_id="u", item_id=f"t{n}", type="view"))
            for n in range(6)
        ],
    )
    assert worker.drain() == 6
    slow = Worker(stores, consumer="slow")
    later = ev.publish(
        stores.redis,
        stores.keys,
        [
            ev.interaction_event(Interaction(user_id="u", item_id=f"l{n}", type="view"))
            for n in range(3)
        ],
    )
    assert (
        sum(len(rows) for _, rows in slow._read_new(None)) == 3
    )  # delivered, not yet acknowledged
    assert worker.trim() == 6
    left = [e[0].decode() for e in stores.redis.xrange(stores.keys.stream(0))]
    assert left == later and not set(ids) & set(left)


def test_item_upserts_wait_for_a_micro_batch(stores: Any) -> None:
    """Items are embedded together: applied when the batch fills or its oldest waited T ms."""
    import time

    w = Worker(stores, consumer="mb", item_batch=4, item_batch_ms=300)
    w.ensure_group()
    publish = lambda n: ev.publish(  # noqa: E731
        stores.redis,
        stores.keys,
        [ev.item_event(Item(item_id=f"mb{n}-{k}", title=f"Item {k}")) for k in range(n)],
    )
    publish(2)
    assert w._process_reads(w._read_new(None)) == 0  # buffered, not acknowledged
    assert stores.redis.xpending(stores.keys.stream(0), w.group)["pending"] == 2
    assert w._flush_items() == 0  # neither full nor old
    time.sleep(0.35)
    assert w._flush_items() == 2  # the oldest waited long enough
    publish(5)
    assert w._process_reads(w._read_new(None)) == 5  # a full batch goes at once
    stores.items.flush()
    assert stores.items.count() == 7
    assert stores.redis.xpending(stores.keys.stream(0), w.group)["pending"] == 0


class _CountingRefresher(CandidateRefresher):
    rounds = 0

    def refresh_once(self, n: int | None = None) -> int:
        self.rounds += 1
        return 0


def test_a_worker_behind_its_stream_says_so_and_the_refresher_waits(stores: Any) -> None:
    """Full reads mean the stream is ahead: the candidate refresher of the same process
    defers to applying events until a read comes back short."""
    w = Worker(stores, consumer="busy", read_count=2)
    w.ensure_group()
    events = [Interaction(user_id=f"u{k}", item_id="a", type="view") for k in range(3)]
    ev.publish(stores.redis, stores.keys, [ev.interaction_event(e) for e in events])
    w._read_new(None)
    assert w.behind.is_set()
    refresher, stop = _CountingRefresher(stores, Settings()), threading.Event()
    thread = threading.Thread(target=refresher.run, args=(stop, w.behind))
    thread.start()
    time.sleep(0.3)
    assert refresher.rounds == 0  # deferred while the worker was behind
    w._read_new(None)  # the last entry: a short read
    assert not w.behind.is_set()
    time.sleep(0.5)
    stop.set()
    thread.join(5)
    assert refresher.rounds > 0  # refreshing resumed
