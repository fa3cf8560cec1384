"""The indexing worker: consume the event stream with a consumer group and apply events.

Delivery is at-least-once: an entry is acknowledged only after its effects are stored, so a
crashed worker's entries stay pending and are reclaimed (XAUTOCLAIM) by any live worker once
idle for `claim_idle_ms`. Entries that keep failing, or can never be decoded, go to the
dead-letter stream instead of blocking the ones behind them.
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
from typing import Any

import redis
from pydantic import ValidationError
from pymilvus.exceptions import MilvusException

from core import events as ev
from core.domain import Interaction, Item
from core.stores.schema import load_all
from indexing.apply import (
    Stores,
    apply_interactions,
    apply_item_deletes,
    apply_item_upserts,
    apply_user_updates,
)
from indexing.refresh import queue_items, queue_users

log = logging.getLogger(__name__)


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
}


def _apply_run(s: Stores, kind: str, run: Sequence[ev.Event]) -> None:
    """Apply consecutive events of one type in one batch."""
    handler = HANDLERS.get(kind)
    if handler is None:
        raise ev.PoisonEvent(f"no handler for event type {kind!r}")
    try:
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
    stats: WorkerStats = field(default_factory=WorkerStats)
    # Set while reads come back full (the stream is ahead of this worker): background work in
    # its process (candidate-set refreshes) waits, so applying events keeps its latency.
    behind: threading.Event = field(default_factory=threading.Event)
    _items: list[ev.Event] = field(default_factory=list)
    _items_since: float = 0.0

    @property
    def r(self) -> redis.Redis:
        return self.stores.redis

    @property
    def stream(self) -> str:
        return self.stores.keys.events

    def ensure_group(self) -> None:
        """Create the consumer group (from the stream's start) if it does not exist."""
        try:
            self.r.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def run(self, stop: threading.Event | None = None) -> None:
        """Consume until `stop` is set (or forever); dependency failures back off and retry."""
        stop = stop or threading.Event()
        own_pending = True  # this consumer name may be a restarted worker: its entries first
        last_claim = 0.0
        backoff = 0.5
        while not stop.is_set():
            try:
                if own_pending:
                    self.ensure_group()
                    self._process(self._read("0"))
                    own_pending = False
                if time.monotonic() - last_claim > self.claim_idle_ms / 2000:
                    last_claim = time.monotonic()
                    self.reclaim()
                    self.trim()
                    self.stores.trending.refresh_epoch()
                n = self._process(self._read(">", block_ms=self._block_ms()))
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
        try:  # a clean stop applies what it buffered (a crash leaves it pending: reclaimed)
            self._flush_items(force=True)
            self.stores.flush_if_due(force=True)
        except (redis.RedisError, MilvusException, OSError) as e:
            log.warning("buffered items left pending at stop: %s", e)

    def _reload_collections(self) -> None:

        try:
            load_all(self.stores.items.client, self.stores.items.names)
        except MilvusException as e:
            log.warning("collections not loaded yet: %s", e)

    def trim(self) -> int:
        """Drop stream entries every consumer group has delivered and acknowledged.

        Those are in the durable log already (workers log before they acknowledge), so the
        stream stays bounded without losing anything. Dead letters keep the newest 100k.
        """
        floor: tuple[int, int] | None = None
        for g in self.r.xinfo_groups(self.stream):
            marks = [g["last-delivered-id"]]
            if g["pending"]:
                marks.append(self.r.xpending(self.stream, g["name"])["min"])
            for m in marks:
                ms, seq = (m.decode() if isinstance(m, bytes) else str(m)).split("-")
                floor = min(floor or (int(ms), int(seq)), (int(ms), int(seq)))
        removed = 0
        if floor is not None:
            removed = int(
                self.r.xtrim(self.stream, minid=f"{floor[0]}-{floor[1]}", approximate=False)
            )
        self.r.xtrim(self.stores.keys.dead_letters, maxlen=100_000, approximate=True)
        return removed

    def drain(self, timeout_s: float = 30.0) -> int:
        """Apply until the stream has nothing new for this group (or the timeout)."""
        self.ensure_group()
        total, deadline = 0, time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            n = self._process(self._read(">", block=False))
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

    def _read(
        self, start: str, *, block: bool = True, block_ms: int | None = None
    ) -> list[tuple[Any, dict[Any, Any]]]:
        resp: Any = self.r.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: start},
            count=self.read_count,
            block=(block_ms or self.block_ms) if (block and start == ">") else None,
        )
        entries = list(resp[0][1]) if resp else []
        if start == ">":
            (self.behind.set if len(entries) >= self.read_count else self.behind.clear)()
        return entries

    def reclaim(self) -> int:
        """Take over entries other workers left idle; dead-letter those tried too often."""
        self.ensure_group()
        claimed: list[tuple[Any, dict[Any, Any]]] = []
        cursor: Any = "0-0"
        while True:
            resp = self.r.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=self.claim_idle_ms,
                start_id=cursor,
                count=self.read_count,
            )
            cursor, entries = resp[0], [e for e in resp[1] if e and e[1] is not None]
            claimed.extend(entries)
            if cursor in (b"0-0", "0-0") or not resp[1]:
                break
        if not claimed:
            return 0
        self.stats.reclaimed += len(claimed)
        tries = self._delivery_counts([e[0] for e in claimed])
        keep = []
        for entry in claimed:
            eid = entry[0].decode() if isinstance(entry[0], bytes) else entry[0]
            if tries.get(eid, 0) > self.max_deliveries:
                self._dead_letter(entry, f"failed {tries[eid]} deliveries")
            else:
                keep.append(entry)
        log.info("reclaimed %d pending entries", len(claimed))
        return self._process(keep)

    def _delivery_counts(self, ids: Sequence[Any]) -> dict[str, int]:
        out: dict[str, int] = {}
        for eid in ids:
            rows = self.r.xpending_range(self.stream, self.group, min=eid, max=eid, count=1)
            if rows:
                out[eid.decode() if isinstance(eid, bytes) else eid] = int(
                    rows[0]["times_delivered"]
                )
        return out

    def _dead_letter(self, entry: tuple[Any, dict[Any, Any]], reason: str) -> None:
        eid, fields = entry
        body = {
            **{(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()},
            "original_id": eid,
            "error": reason[:2000],
        }
        # If its effects were stored before it failed, keep that marker for good: a replay,
        # however late, must not apply it a second time (first: it lives in the user's slot).
        if (owner := ev.interaction_owner(eid, fields)) is not None:
            self.r.persist(self.stores.keys.done(*owner))
            self.r.persist(self.stores.keys.counted(owner[1]))
        pipe = self.r.pipeline(transaction=True)
        pipe.xadd(self.stores.keys.dead_letters, body)
        pipe.xack(self.stream, self.group, eid)
        pipe.execute()
        self.stats.dead_lettered += 1
        log.warning("event %s dead-lettered: %s", eid, reason)

    def _process(self, entries: list[tuple[Any, dict[Any, Any]]]) -> int:
        if not entries:
            return 0
        decoded: list[ev.Event] = []
        for eid, fields in entries:
            try:
                decoded.append(ev.decode(eid, fields))
            except ev.PoisonEvent as e:
                self._dead_letter((eid, fields), str(e))
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
            # Log before ack: a crash in between duplicates a log line (readers dedupe by id)
            # but never loses an event.
            if self.stores.log is not None:
                self.stores.log.append(
                    {"id": e.key, "type": e.type, "data": e.data, "t": e.enqueued_at} for e in done
                )
            pipe = self.r.pipeline(transaction=False)
            pipe.xack(self.stream, self.group, *(e.id for e in done))
            for kind, n in Counter(e.type for e in done).items():
                pipe.hincrby(self.stores.keys.worker_stats, f"applied:{kind}", n)
            pipe.execute()
        self.stats.applied += len(done)

    def _apply_one_by_one(self, kind: str, run: Sequence[ev.Event]) -> list[ev.Event]:
        ok: list[ev.Event] = []
        for e in run:
            try:
                _apply_run(self.stores, kind, [e])
                ok.append(e)
            except ev.PoisonEvent as err:
                self._dead_letter(
                    (e.id, ev.encode(e.type, e.data, now=e.enqueued_at, origin=e.origin)), str(err)
                )
            except Exception:
                # Left pending: redelivered after claim_idle_ms, dead-lettered after N tries.
                self.stats.failed += 1
                log.exception("event %s (%s) failed; will retry", e.id, kind)
        return ok
