"""What the apply functions write through: the clients, the write path's settings, and the
small state a long-running writer keeps between batches, one part each: Milvus writes not yet
flushed, users waiting to be mirrored into Milvus, the item-write lease, the live text model.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import redis

from core.domain import is_session
from core.keys import Keys
from core.scripts import TAKE_LEASE
from core.stores.catalogue import RedisCatalogue
from core.stores.erasures import ErasureRecords
from core.stores.eventlog import EventLog, compact, pending_erasures
from core.stores.item_cache import ItemMetaCache
from core.stores.items import ItemStore
from core.stores.protocols import CandidateStore
from core.stores.registry import ModelRegistry
from core.stores.user_rows import UserStore
from core.trending import Trending
from embeddings.text import TextEmbedder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplySettings:
    """Sizes and half-lives of what the write path keeps (from `settings.worker`)."""

    cf_dim: int
    history_len: int = 500
    negatives_len: int = 1000  # most recent dislikes and skips kept per user
    profile_items: int = 50
    profile_half_life: float = 20.0
    dedup_ttl_s: int = 7 * 24 * 3600
    trending_half_life_s: float = 24 * 3600.0
    # Erased users' lines leave the event log this long after the erasure (0: at once).
    log_compaction_delay_s: float = 60.0
    session_ttl_s: int = 24 * 3600
    session_journal_len: int = 500


@dataclass
class TextModel:
    """The text model items are embedded with; a re-index may switch the live one."""

    embedder: TextEmbedder
    # Loads another text model when a re-index switched the live one (None: never switch).
    loader: Callable[[str], TextEmbedder] | None = None

    def live(self, r: redis.Redis, keys: Keys) -> TextEmbedder:
        """The model the live items collection uses, loaded if a re-index switched it."""
        raw = r.get(keys.text_model)
        name = (raw.decode() if isinstance(raw, bytes) else raw) or None
        if name and name != self.embedder.name and self.loader is not None:
            log.info("text model switched to %s by a re-index; loading it", name)
            self.embedder = self.loader(name)
        return self.embedder


@dataclass
class ItemLease:
    """The lease an item writer holds per batch, so a re-index knows when to swap."""

    # How long one batch may take before a re-index stops waiting for it.
    lease_ms: int = 30_000
    writer_id: str = field(default_factory=lambda: f"{os.getpid()}-{uuid.uuid4().hex[:8]}")

    @contextmanager
    def held(self, r: redis.Redis, keys: Keys, max_wait_s: float = 60.0) -> Iterator[None]:
        """Hold the lease; waits while a re-index freezes item writes to swap.

        A re-index copies the catalogue beside live writes, then freezes them (typically under a
        second), waits for leases in flight, copies the last changes and swaps the alias: no
        write can land in the old collection after its final catch-up.
        """
        deadline = time.monotonic() + max_wait_s
        while not TAKE_LEASE(
            r,
            keys={"freeze": keys.item_freeze, "writers": keys.item_writers},
            args={"writer": self.writer_id, "lease_ms": self.lease_ms},
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("item writes frozen for too long (re-index swap stuck?)")
            time.sleep(0.02)
        try:
            yield
        finally:
            r.zrem(keys.item_writers, self.writer_id)


@dataclass
class UnflushedWrites:
    """Whether Milvus holds unflushed writes, and since when (Milvus Lite searches its
    memtable several times slower, so writers flush once writes are `interval_s` old)."""

    interval_s: float = 2.0
    since: float | None = None

    def mark(self) -> None:
        if self.since is None:
            self.since = time.monotonic()

    def due(self, *, force: bool) -> bool:
        if self.since is None or self.interval_s <= 0:
            return False
        return force or time.monotonic() - self.since >= self.interval_s

    def clear(self) -> None:
        self.since = None


@dataclass
class UserSync:
    """Users whose Redis hot copy waits to be mirrored into Milvus, batched every `interval_s`.

    Serving reads user vectors from Redis; the Milvus copy is for durability and may lag.
    """

    interval_s: float = 1.0
    pending: set[str] = field(default_factory=set)
    since: float | None = None

    def add(self, user_ids: Sequence[str]) -> None:
        # Guests' sessions live in Redis only (they expire; nothing searches them in Milvus).
        self.pending.update(u for u in user_ids if not is_session(u))
        if self.since is None:
            self.since = time.monotonic()

    def due(self, *, force: bool) -> list[str]:
        """The users to mirror now (sorted), if they waited long enough or `force`."""
        if not self.pending or self.since is None:
            return []
        if not force and time.monotonic() - self.since < self.interval_s:
            return []
        return sorted(self.pending)

    def clear(self) -> None:
        self.pending.clear()
        self.since = None


@dataclass
class CategoryMembers:
    """Items of a category read from Milvus (for a category with no trending top yet), kept
    `ttl_s` per collection: a filtered query scans every row on Milvus Lite, seconds per
    category at 1M items, and onboarding users name the same few categories again and again."""

    ttl_s: float = 300.0
    cached: dict[tuple[str, str], tuple[float, list[str]]] = field(default_factory=dict)

    def get(self, collection: str, category: str, read: Callable[[], list[str]]) -> list[str]:
        now = time.monotonic()
        hit = self.cached.get((collection, category))
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        ids = read()
        self.cached[(collection, category)] = (now, ids)
        return ids


@dataclass
class Stores:
    """Everything an apply function may touch: the clients, then the parts above."""

    redis: redis.Redis
    keys: Keys
    items: ItemStore
    users: UserStore
    settings: ApplySettings
    text: TextModel
    log: EventLog | None = None
    registry: ModelRegistry | None = None
    # Candidate sets to queue for a refresh as events are applied (None: sets are off).
    candidates: CandidateStore | None = None
    unflushed: UnflushedWrites = field(default_factory=UnflushedWrites)
    user_sync: UserSync = field(default_factory=UserSync)
    lease: ItemLease = field(default_factory=ItemLease)
    # Content vectors for profiles, kept in process (a Milvus read per batch cost 64 ms, the
    # largest part of applying 256 interactions); re-read when the change log says so.
    item_cache: ItemMetaCache = field(default_factory=ItemMetaCache)
    category_members: CategoryMembers = field(default_factory=CategoryMembers)

    @property
    def cf_dim(self) -> int:
        return self.settings.cf_dim

    @property
    def embedder(self) -> TextEmbedder:
        """The text model last used (see `live_embedder` for the live one)."""
        return self.text.embedder

    @property
    def embedder_loader(self) -> Callable[[str], TextEmbedder] | None:
        return self.text.loader

    @property
    def item_lease_ms(self) -> int:
        return self.lease.lease_ms

    @cached_property
    def catalogue(self) -> RedisCatalogue:
        """Tombstones and the item change log (what cached items are checked against)."""
        return RedisCatalogue(self.redis, self.keys)

    def content_vectors(self, item_ids: Iterable[str]) -> dict[str, npt.NDArray[np.float32]]:
        """Content vectors of the items that exist, from the process cache (one Redis round
        trip for the change log, a Milvus read only for items not cached or written since)."""
        meta = self.item_cache.current(self.items, self.catalogue, list(item_ids))
        return {i: m.vec for i, m in meta.items()}

    @cached_property
    def trending(self) -> Trending:
        return Trending(self.redis, self.keys, self.settings.trending_half_life_s)

    def live_embedder(self) -> TextEmbedder:
        """The model the live items collection uses (a re-index may have switched it)."""
        return self.text.live(self.redis, self.keys)

    def item_writes(self, max_wait_s: float = 60.0) -> AbstractContextManager[None]:
        """Hold the item-write lease for a batch (see `ItemLease.held`)."""
        return self.lease.held(self.redis, self.keys, max_wait_s)

    def mark_written(self) -> None:
        """Note that Milvus has unflushed writes (see `flush_if_due`)."""
        self.unflushed.mark()

    def flush_if_due(self, *, force: bool = False) -> bool:
        """Flush Milvus writes older than the flush interval (or any, with `force`)."""
        if not self.unflushed.due(force=force):
            return False
        self.sync_users_if_due(force=True)
        self.items.flush()
        self.users.flush()
        self.unflushed.clear()
        return True

    def compact_log_if_due(self) -> int:
        """Remove erased users' lines from the event log once the oldest erasure waited
        `log_compaction_delay_s`; records it in their receipts. Lines removed."""
        if self.log is None:
            return 0
        pending = pending_erasures(self.log.root)
        delay = self.settings.log_compaction_delay_s
        if not pending or min(p["at"] for p in pending.values()) + delay > time.time():
            return 0
        done = compact(self.log.root)
        ErasureRecords(self.redis, self.keys).log_compacted(done.users, time.time())
        log.info(
            "event log compacted: %d lines of %d erased users", done.lines_removed, len(done.users)
        )
        return done.lines_removed

    def defer_user_sync(self, user_ids: Sequence[str]) -> None:
        """Mirror these users into Milvus soon (batched), or now if no interval is set."""
        if self.user_sync.interval_s <= 0:
            persist_users(self, list(user_ids))
        else:
            self.user_sync.add(user_ids)

    def sync_users_if_due(self, *, force: bool = False) -> int:
        """Write deferred users to Milvus if they waited long enough (or any, with `force`)."""
        users = self.user_sync.due(force=force)
        for i in range(0, len(users), 1000):
            persist_users(self, users[i : i + 1000])
        if users:
            self.user_sync.clear()  # only once written: a failure keeps them pending
        return len(users)


def persist_users(s: Stores, user_ids: Sequence[str]) -> None:
    """Mirror the Redis hot copy of users into Milvus (vectors + profile)."""
    pipe = s.redis.pipeline(transaction=False)
    for uid in user_ids:
        pipe.hmget(s.keys.user(uid), "profile", "cvec", "cfvec")
    now = int(time.time())
    rows: list[dict[str, Any]] = []
    for uid, (profile, cvec, cfvec) in zip(user_ids, pipe.execute(), strict=True):
        if profile is None and cvec is None and cfvec is None:
            continue  # no hot copy (an erased user): nothing to mirror, no empty row
        content = _vector(cvec, s.embedder.dim)
        cf = _vector(cfvec, s.cf_dim)
        rows.append(
            {
                "user_id": uid,
                "content_vec": content.tolist(),
                "cf_vec": cf.tolist(),
                "profile": json.loads(profile) if profile else {},
                "updated_at": now,
            }
        )
    s.users.upsert(rows)
    s.mark_written()


def _vector(raw: bytes | None, dim: int) -> npt.NDArray[np.float32]:
    """A stored float32 vector, or zeros when absent or of another model's dimension."""
    vec = np.frombuffer(raw, dtype=np.float32) if raw else None
    return vec if vec is not None and len(vec) == dim else np.zeros(dim, dtype=np.float32)
