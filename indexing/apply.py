"""Applying events to the stores: the one core shared by the worker and `vantage import`.

Item and user writes are idempotent by nature (upserts). Interaction effects are counters, so
each one is applied in the same Redis transaction that records its event id: a redelivered
event finds its marker and changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import redis

from embeddings.cf import confidence_weight
from embeddings.profile import content_profile
from embeddings.text import TextEmbedder, compose_item_text
from indexing.eventlog import EventLog
from indexing.keys import Keys
from indexing.models import Interaction, Item, User
from indexing.registry import ModelRegistry
from indexing.store import ItemStore, UserStore, item_row

log = logging.getLogger(__name__)


@dataclass
class Stores:
    """Everything an apply function may touch."""

    redis: redis.Redis
    keys: Keys
    items: ItemStore
    users: UserStore
    embedder: TextEmbedder
    cf_dim: int
    history_len: int = 500
    profile_items: int = 50
    profile_half_life: float = 20.0
    dedup_ttl_s: int = 7 * 24 * 3600
    log: EventLog | None = None
    registry: ModelRegistry | None = None
    flush_interval_s: float = 2.0
    _dirty_since: float | None = None

    def mark_written(self) -> None:
        """Note that Milvus has unflushed writes (see `flush_if_due`)."""
        if self._dirty_since is None:
            self._dirty_since = time.monotonic()

    def flush_if_due(self, *, force: bool = False) -> bool:
        """Flush Milvus writes older than `flush_interval_s` (or any, with `force`)."""
        if self._dirty_since is None or self.flush_interval_s <= 0:
            return False
        if not force and time.monotonic() - self._dirty_since < self.flush_interval_s:
            return False
        self.items.flush()
        self.users.flush()
        self._dirty_since = None
        return True


def embed_items(embedder: TextEmbedder, items: Sequence[Item]) -> np.ndarray:
    """Content vectors for items, one batched model call."""
    texts = [
        compose_item_text(
            title=i.title, description=i.description, categories=i.categories, tags=i.tags
        )
        for i in items
    ]
    return embedder.embed(texts)


def apply_item_upserts(
    s: Stores, items: Sequence[Item], *, enqueued_at: float | None = None
) -> None:
    """Embed and upsert items; a later upsert lifts an earlier tombstone, an older one does not."""
    if not items:
        return
    latest = {i.item_id: i for i in items}  # last write in the batch wins
    batch = list(latest.values())
    vecs = embed_items(s.embedder, batch)
    zero_cf = np.zeros(s.cf_dim, dtype=np.float32)
    s.items.upsert([item_row(it, v, zero_cf) for it, v in zip(batch, vecs, strict=True)])
    s.mark_written()
    t = time.time() if enqueued_at is None else enqueued_at
    hidden = [it.item_id for it in batch if it.status == "hidden"]
    if hidden:
        pipe = s.redis.pipeline(transaction=False)
        pipe.zadd(s.keys.tombstones, dict.fromkeys(hidden, t))
        pipe.zrem(s.keys.popularity, *hidden)
        pipe.execute()
    active = [it.item_id for it in batch if it.status == "active"]
    if active:
        # Only a tombstone set before this upsert was enqueued is lifted (DELETE then PUT).
        scores = s.redis.zmscore(s.keys.tombstones, active)
        lift = [i for i, sc in zip(active, scores, strict=True) if sc is not None and sc <= t]
        if lift:
            s.redis.zrem(s.keys.tombstones, *lift)


def apply_item_deletes(
    s: Stores, item_ids: Sequence[str], *, enqueued_at: float | None = None
) -> None:
    """Delete items from Milvus; their tombstones stay so caches and replicas cannot revive them."""
    if not item_ids:
        return
    t = time.time() if enqueued_at is None else enqueued_at
    s.items.delete(list(item_ids))
    s.mark_written()
    pipe = s.redis.pipeline(transaction=False)
    pipe.zadd(s.keys.tombstones, dict.fromkeys(item_ids, t))
    pipe.zrem(s.keys.popularity, *item_ids)
    pipe.execute()


def apply_user_updates(s: Stores, users: Sequence[User]) -> None:
    """Store profiles in Redis (hot copy) and Milvus (durable copy)."""
    if not users:
        return
    latest = {u.user_id: u for u in users}
    pipe = s.redis.pipeline(transaction=False)
    for u in latest.values():
        pipe.hset(s.keys.user(u.user_id), "profile", u.model_dump_json(exclude={"user_id"}))
        pipe.hincrby(s.keys.user(u.user_id), "ver", 1)
        pipe.sadd(s.keys.users_index, u.user_id)
    pipe.execute()
    _persist_users(s, list(latest))


def apply_interactions(
    s: Stores, events: Sequence[tuple[str | None, Interaction]], *, refresh: bool = True
) -> int:
    """Apply interactions exactly once in effect; returns how many were new.

    `events` pairs each interaction with its event id (None for bulk imports that have no
    stream id and are applied once by construction).
    """
    if not events:
        return 0
    ids = [eid for eid, _ in events if eid is not None]
    seen: set[str] = set()
    if ids:
        marks = s.redis.mget([s.keys.done(e) for e in ids])
        seen = {e for e, m in zip(ids, marks, strict=True) if m is not None}
    fresh = [(eid, ev) for eid, ev in events if eid is None or eid not in seen]
    if not fresh:
        return 0
    pipe = s.redis.pipeline(transaction=True)
    touched: dict[str, float] = defaultdict(float)
    for eid, ev in fresh:
        ts = float(ev.timestamp if ev.timestamp is not None else time.time())
        w = ev.weight
        # GT adds new members and never moves an item back in time (out-of-order events).
        pipe.zadd(s.keys.history(ev.user_id), {ev.item_id: ts}, gt=True)
        pipe.hincrbyfloat(s.keys.affinity(ev.user_id), ev.item_id, w)
        conf = confidence_weight(ev.type, ev.value)
        if conf > 0:
            pipe.hincrbyfloat(s.keys.confidence(ev.user_id), ev.item_id, conf)
        if w > 0:
            pipe.zincrby(s.keys.popularity, w, ev.item_id)
        if eid is not None:
            pipe.set(s.keys.done(eid), 1, ex=s.dedup_ttl_s)
        touched[ev.user_id] = max(touched[ev.user_id], ts)
    for uid in touched:
        pipe.zremrangebyrank(s.keys.history(uid), 0, -s.history_len - 1)
        pipe.sadd(s.keys.users_index, uid)
    pipe.execute()
    if refresh:
        refresh_profiles(s, list(touched))
    return len(fresh)


def refresh_profiles(s: Stores, user_ids: Sequence[str]) -> None:
    """Recompute content profiles from recent history (order-free, so retries are harmless)."""
    if not user_ids:
        return
    pipe = s.redis.pipeline(transaction=False)
    for uid in user_ids:
        pipe.zrevrange(s.keys.history(uid), 0, s.profile_items - 1)
        pipe.hgetall(s.keys.affinity(uid))
    raw = pipe.execute()
    recent: dict[str, list[tuple[str, float]]] = {}
    wanted: set[str] = set()
    for idx, uid in enumerate(user_ids):
        items = [i.decode() for i in raw[2 * idx]]
        aff = {k.decode(): float(v) for k, v in raw[2 * idx + 1].items()}
        recent[uid] = [(i, aff.get(i, 0.0)) for i in items]
        wanted.update(items)
    vecs = s.items.vectors(wanted)
    cf_vecs = _fold_in(s, user_ids)
    pipe = s.redis.pipeline(transaction=False)
    for uid, hist in recent.items():
        prof = content_profile(hist, vecs, half_life=s.profile_half_life)
        key = s.keys.user(uid)
        if prof is None:
            pipe.hdel(key, "cvec")
        else:
            pipe.hset(key, "cvec", prof.astype(np.float32).tobytes())
        if uid in cf_vecs:
            pipe.hset(key, "cfvec", cf_vecs[uid].astype(np.float32).tobytes())
        pipe.hincrby(key, "ver", 1)
    pipe.execute()
    _persist_users(s, list(user_ids))


def _fold_in(s: Stores, user_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Interaction-model vectors for users from their whole confidence history."""
    model = s.registry.cf() if s.registry is not None else None
    if model is None or model.als.dim != s.cf_dim:
        return {}
    pipe = s.redis.pipeline(transaction=False)
    for uid in user_ids:
        pipe.hgetall(s.keys.confidence(uid))
    out: dict[str, np.ndarray] = {}
    for uid, conf in zip(user_ids, pipe.execute(), strict=True):
        pairs = [(model.item_index.get(k.decode()), float(v)) for k, v in conf.items()]
        known = [(i, c) for i, c in pairs if i is not None and c > 0]
        if known:
            idx, w = zip(*known, strict=True)
            out[uid] = model.als.fold_in(np.asarray(idx), np.asarray(w))
    return out


def _persist_users(s: Stores, user_ids: Sequence[str]) -> None:
    """Mirror the Redis hot copy of users into Milvus (vectors + profile)."""
    pipe = s.redis.pipeline(transaction=False)
    for uid in user_ids:
        pipe.hmget(s.keys.user(uid), "profile", "cvec", "cfvec")
    now = int(time.time())
    rows = []
    for uid, (profile, cvec, cfvec) in zip(user_ids, pipe.execute(), strict=True):
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


def _vector(raw: bytes | None, dim: int) -> np.ndarray:
    """A stored float32 vector, or zeros when absent or of another model's dimension."""
    vec = np.frombuffer(raw, dtype=np.float32) if raw else None
    return vec if vec is not None and len(vec) == dim else np.zeros(dim, dtype=np.float32)
