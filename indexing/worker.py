"""The indexing worker: consume its share of the event partitions and apply events.

Each partition is a stream with one consumer group, consumed by one worker at a time
(`indexing.partitions`). Delivery is at-least-once: an entry is acknowledged only after its
effects are stored, so a crashed worker's entries stay pending and are claimed by the worker
that takes its partition over (or reclaimed by this one once idle for `claim_idle_ms`).
Entries that keep failing, or can never be decoded, go to the partition's dead letters
instead of blocking the ones behind them.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby

import redis
from pydantic import ValidationError
from pymilvus.exceptions import MilvusException

from core import events as ev
from core.domain import Interaction, Item
from core.replication import wait_for_replicas
from core.stores.schema import RELOAD_TIMEOUT_S, load_all
from core.tracing import links, span
from indexing.apply import (
    Stores,
    apply_erasures,
    apply_interactions,
    apply_item_deletes,
    apply_item_upserts,
    apply_user_updates,
)
from indexing.apply.erasure import log_records
from indexing.apply.reset import apply_resets
from indexing.apply.sessions import apply_expiries, apply_merges, sweep_idle
from indexing.partitions import Leases
from indexing.refresh import queue_items, queue_users
from indexing.streams import Entry, Partition, ack, read_new

log = logging.getLogger(__name__)

# In the workers' stats hash: when any worker last acknowledged events (ms since the epoch).
LAST_ACK_FIELD = "last_ack_ms"


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _versions(run: Sequence[ev.Event]) -> list[str]:
    return [e.key for e in run]


def _times(run: Sequence[ev.Event]) -> list[float]:
    return [e.enqueued_at or time.time() for e in run]


def _on_item_upserted(s: Stores, run: Sequence[ev.Event]) -> None:
    items = [Item.model_validate(e.data) for e in run]
    apply_item_upserts(s, items, versions=_versions(run), times=_times(run))
    queue_items(s.candidates, [i.item_id for i in items])


def _on_item_deleted(s: Stores, run: Sequence[ev.Event]) -> None:
    ids = [str(e.data["item_id"]) for e in run]
    apply_item_deletes(s, ids, versions=_versions(run), times=_times(run))


def _on_user_updated(s: Stores, run: Sequence[ev.Event]) -> None:
    users, versions = zip(*(ev.user_of(e) for e in run), strict=True)
    apply_user_updates(s, users, versions)
    queue_users(s.candidates, [u.user_id for u in users])


def _on_interaction_logged(s: Stores, run: Sequence[ev.Event]) -> None:
    events = [(e.key, Interaction.model_validate(e.data)) for e in run]
    apply_interactions(s, events)
    queue_users(s.candidates, [i.user_id for _, i in events])


Handler = Callable[[Stores, Sequence[ev.Event]], None]

# Event name -> the handler that applies a run of such events in one batch.
HANDLERS: Mapping[str, Handler] = {
    ev.ITEM_UPSERTED: _on_item_upserted,
    ev.ITEM_DELETED: _on_item_deleted,
    ev.USER_UPDATED: _on_user_updated,
    ev.INTERACTION_LOGGED: _on_interaction_logged,
    ev.USER_ERASED: apply_erasures,
    ev.USER_RESET: apply_resets,
    ev.SESSION_MERGED: apply_merges,
    ev.SESSION_EXPIRED: apply_expiries,
}


def _apply_run(s: Stores, kind: str, run: Sequence[ev.Event]) -> None:
    """Apply consecutive events of one type in one batch."""
    handler = HANDLERS.get(kind)
    if handler is None:
        raise ev.PoisonEvent(f"no handler for event type {kind!r}")
    try:
        queued_by = links([e.traceparent for e in run])
        with span(f"apply {kind}", queued_by, **{"vantage.events": len(run)}):
            handler(s, run)
    except (ValidationError, KeyError) as e:
        raise ev.PoisonEvent(str(e)) from e


@dataclass
class WorkerStats:
    applied: int = 0
    failed: int = 0
    dead_lettered: int = 0
    reclaimed: int = 0


@dataclass
class Worker:
    stores: Stores
    group: str = "indexers"
    consumer: str = field(default_factory=default_consumer_name)
    read_count: int = 256
    block_ms: int = 200
    claim_idle_ms: int = 30_000
    max_deliveries: int = 5
    # Item upserts wait for company: embedded together once `item_batch` are buffered or the
    # oldest has waited `item_batch_ms` (a model call on 64 texts costs little more than on 1).
    item_batch: int = 64
    item_batch_ms: int = 100
    # Before acknowledging, wait until this many replicas hold the effects (0: do not wait).
    replicas: int = 0
    replica_timeout_ms: int = 100
    stats: WorkerStats = field(default_factory=WorkerStats)
    # Set while reads come back full (the stream is ahead of this worker): background work in
    # its process (candidate-set refreshes) waits, so applying events keeps its latency.
    behind: threading.Event = field(default_factory=threading.Event)
    # The partitions this worker holds while it runs; None (drain, tests): every partition.
    leases: Leases | None = None
    _items: list[ev.Event] = field(default_factory=list)
    _items_since: float = 0.0
    _parts: dict[int, Partition] = field(default_factory=dict)

    @property
    def r(self) -> redis.Redis:
        return self.stores.redis

    def partition(self, number: int) -> Partition:
        part = self._parts.get(number)
        if part is None:
            part = self._parts[number] = Partition(self.r, self.stores.keys, number, self.group)
        return part

    @property
    def held(self) -> list[Partition]:
        """The partitions this worker reads now."""
        numbers = range(self.stores.keys.partitions) if self.leases is None else self.leases.held
        return [self.partition(p) for p in sorted(numbers)]

    def ensure_group(self) -> None:
        """Create the consumer group of every held partition (from its start) if missing."""
        for part in self.held:
            part.ensure_group()

    def run(self, stop: threading.Event | None = None) -> None:
        """Consume the partitions this worker holds until `stop` is set (or forever), sharing
        them with the other live workers; dependency failures back off and retry."""
        stop = stop or threading.Event()
        self.leases = Leases(self.r, self.stores.keys, self.consumer, ttl_ms=self.claim_idle_ms)
        last_balance = last_claim = -1e9
        backoff = 0.5
        while not stop.is_set():
            try:
                # Often enough that a new worker gets its share within seconds; the lease
                # (the claim timeout) is what a dead worker's partitions wait for.
                if time.monotonic() - last_balance > min(self.claim_idle_ms / 3000, 1.0):
                    last_balance = time.monotonic()
                    self._rebalance()
                if time.monotonic() - last_claim > self.claim_idle_ms / 2000:
                    last_claim = time.monotonic()
                    self.reclaim()
                    self.trim()
                    self.stores.trending.refresh_epoch()
                    self.stores.compact_log_if_due()
                    sweep_idle(self.stores)
                if not self.held:  # more workers than partitions: stand by
                    n = self._flush_items(force=True)
                    stop.wait(self.block_ms / 1000)
                else:
                    n = self._process_reads(self._read_new(self._block_ms()))
                    n += self._flush_items(force=n == 0)
                # Mirror users and flush when the stream goes quiet, or at least every interval.
                self.stores.sync_users_if_due(force=n == 0)
                self.stores.flush_if_due(force=n == 0)
                backoff = 0.5
            except (redis.RedisError, MilvusException, OSError) as e:
                # Nothing was acknowledged: the entries stay pending and are retried.
                log.warning("%s: %s; retrying in %.1f s", type(e).__name__, e, backoff)
                if isinstance(e, MilvusException) and "released" in str(e):
                    self._reload_collections()
                stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        self._stop_cleanly()

    def _stop_cleanly(self) -> None:
        """Apply what is buffered, then give the partitions back (a crash leaves both to the
        lease expiry and the claim of pending entries)."""
        try:
            self._flush_items(force=True)
            self.stores.flush_if_due(force=True)
            if self.leases is not None:
                self.leases.leave()
        except (redis.RedisError, MilvusException, OSError) as e:
            log.warning("buffered items left pending at stop: %s", e)

    def _rebalance(self) -> None:
        """Take this worker's share of the partitions; on one newly held, first claim what
        its previous holder left pending (this very worker, if it restarted)."""
        assert self.leases is not None
        gained, _ = self.leases.balance()
        for number in sorted(gained):
            part = self.partition(number)
            part.ensure_group()
            self._reclaim(part, min_idle_ms=0)

    def _reload_collections(self) -> None:
        try:
            load_all(self.stores.items.client, self.stores.items.names, timeout_s=RELOAD_TIMEOUT_S)
        except MilvusException as e:
            log.warning("collections not loaded yet: %s", e)

    def trim(self) -> int:
        """Drop acknowledged entries of the held partitions (see `Partition.trim`)."""
        return sum(part.trim() for part in self.held)

    def drain(self, timeout_s: float = 30.0) -> int:
        """Apply until the partitions have nothing new for this group (or the timeout)."""
        self.ensure_group()
        total, deadline = 0, time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            n = self._process_reads(self._read_new(None))
            n += self._flush_items(force=n == 0)
            total += n
            if n == 0 and not self._items:
                break
        self.stores.sync_users_if_due(force=True)
        self.stores.flush_if_due(force=True)
        return total

    def _block_ms(self) -> int:
        """Block on the stream, but not past the deadline of buffered items."""
        if not self._items:
            return self.block_ms
        left = self.item_batch_ms - (time.monotonic() - self._items_since) * 1000
        return max(1, min(self.block_ms, int(left)))

    def _read_new(self, block_ms: int | None) -> list[tuple[Partition, list[Entry]]]:
        """New entries of the held partitions (None: do not wait for any)."""
        reads = read_new(self.held, self.consumer, self.read_count, block_ms)
        full = any(len(rows) >= self.read_count for _, rows in reads)
        (self.behind.set if full else self.behind.clear)()
        return reads

    def _process(self, part: Partition, entries: Sequence[Entry]) -> int:
        """Apply entries read from one partition; acknowledge those applied."""
        return self._process_reads([(part, entries)])

    def reclaim(self) -> int:
        """Take over entries of the held partitions left idle for the claim timeout (a crashed
        worker's, or this one's that failed); dead-letter those tried too often."""
        return sum(self._reclaim(part, self.claim_idle_ms) for part in self.held)

    def _reclaim(self, part: Partition, min_idle_ms: int) -> int:
        part.ensure_group()
        claimed = part.claim(self.consumer, min_idle_ms, self.read_count)
        if not claimed:
            return 0
        self.stats.reclaimed += len(claimed)
        tries = part.delivery_counts([e[0] for e in claimed])
        keep = []
        for entry in claimed:
            eid = entry[0].decode() if isinstance(entry[0], bytes) else entry[0]
            if tries.get(eid, 0) > self.max_deliveries:
                self._dead_letter(part, entry, f"failed {tries[eid]} deliveries")
            else:
                keep.append(entry)
        log.info("reclaimed %d pending entries of partition %d", len(claimed), part.number)
        return self._process(part, keep)

    def _dead_letter(self, part: Partition, entry: Entry, reason: str) -> None:
        # If its effects were stored before it failed, keep that marker for good: a replay,
        # however late, must not apply it a second time (first: it lives in the user's slot).
        if (owner := ev.interaction_owner(entry[0], entry[1], part.number)) is not None:
            self.r.persist(self.stores.keys.done(*owner))
            self.r.persist(self.stores.keys.counted(owner[1]))
        part.dead_letter(entry, reason)
        self.stats.dead_lettered += 1
        log.warning("event %s of partition %d dead-lettered: %s", entry[0], part.number, reason)

    def _process_reads(self, reads: Sequence[tuple[Partition, Sequence[Entry]]]) -> int:
        """Apply the entries of several partitions as one batch (a user's events are all in
        one partition, in order); acknowledge those applied, each in its partition."""
        decoded: list[ev.Event] = []
        for part, entries in reads:
            for eid, fields in entries:
                try:
                    decoded.append(ev.decode(eid, fields, part.number))
                except ev.PoisonEvent as e:
                    self._dead_letter(part, (eid, fields), str(e))
        if not decoded:
            return 0
        # Consecutive events of one type form a batch; order across types is preserved.
        others: list[tuple[str, list[ev.Event]]] = []
        for kind, group in groupby(decoded, key=lambda e: e.type):
            run = list(group)
            if kind == ev.ITEM_UPSERTED and self.item_batch > 1:
                # Applied by _flush_items; a later delete of the same item wins by version.
                if not self._items:
                    self._items_since = time.monotonic()
                self._items.extend(run)
            else:
                others.append((kind, run))
        done = self._apply_runs(others)
        self._finish(done)
        n = len(done)
        if len(self._items) >= self.item_batch:
            n += self._flush_items(force=True)
        return n

    def _apply_runs(self, runs: Sequence[tuple[str, list[ev.Event]]]) -> list[ev.Event]:
        done: list[ev.Event] = []
        for kind, run in runs:
            try:
                _apply_run(self.stores, kind, run)
                done.extend(run)
            except ev.PoisonEvent:
                done.extend(self._apply_one_by_one(kind, run))
            except redis.ConnectionError:
                raise
            except Exception:
                log.exception("batch of %d %s events failed; retrying one by one", len(run), kind)
                done.extend(self._apply_one_by_one(kind, run))
        return done

    def _flush_items(self, *, force: bool = False) -> int:
        """Apply buffered item upserts if the batch is full, old enough, or `force`."""
        if not self._items:
            return 0
        due = (time.monotonic() - self._items_since) * 1000 >= self.item_batch_ms
        if not (force or due or len(self._items) >= self.item_batch):
            return 0
        batch, self._items = self._items, []
        try:
            done = self._apply_runs([(ev.ITEM_UPSERTED, batch)])
        except BaseException:
            self._items = batch + self._items  # still pending in the stream: keep them queued
            raise
        self._finish(done)
        return len(done)

    def _finish(self, done: list[ev.Event]) -> None:
        if done:
            # The effects on a replica before the ack: a master lost now cannot take them
            # with it while the acknowledgement (on another master) survives.
            wait_for_replicas(self.r, self.stores.keys, self.replicas, self.replica_timeout_ms)
            # Log before ack: a crash in between duplicates a log line (readers dedupe by id)
            # but never loses an event.
            if self.stores.log is not None:
                self.stores.log.append(log_records(done))
            pipe = self.r.pipeline(transaction=False)
            ids: dict[int, list[str]] = {}
            for e in done:
                ids.setdefault(e.partition, []).append(e.id)
            ack(pipe, ((self.partition(p), got) for p, got in ids.items()))
            for kind, n in Counter(e.type for e in done).items():
                pipe.hincrby(self.stores.keys.worker_stats, f"applied:{kind}", n)
            pipe.hset(self.stores.keys.worker_stats, LAST_ACK_FIELD, int(time.time() * 1000))
            pipe.execute()
        self.stats.applied += len(done)

    def _apply_one_by_one(self, kind: str, run: Sequence[ev.Event]) -> list[ev.Event]:
        ok: list[ev.Event] = []
        for e in run:
            try:
                _apply_run(self.stores, kind, [e])
                ok.append(e)
            except ev.PoisonEvent as err:
                entry = (e.id, ev.encode(e.type, e.data, now=e.enqueued_at, origin=e.origin))
                self._dead_letter(self.partition(e.partition), entry, str(err))
            except Exception:
                # Left pending: redelivered after claim_idle_ms, dead-lettered after N tries.
                self.stats.failed += 1
                log.exception("event %s (%s) failed; will retry", e.id, kind)
        return ok
