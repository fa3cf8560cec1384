"""Applying events to the stores: the one core shared by the worker and `vantage import`.

Item and user writes are idempotent by nature (upserts). Interaction effects are counters, so
each one is applied in the same Redis transaction that records its event id: a redelivered
event finds its marker and changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import redis

from core.domain import Interaction, Item, User
from core.filters import Filter
from core.keys import Keys
from core.stores.eventlog import EventLog
from core.stores.items import ItemStore, UserStore, item_row
from core.stores.registry import ModelRegistry
from core.trending import CATEGORY_SEP, Trending, trending_scopes
from embeddings.confidence import confidence_weight
from embeddings.profile import content_profile
from embeddings.text import TextEmbedder, compose_item_text

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
    negatives_len: int = 1000  # most recent dislikes and skips kept per user
    profile_items: int = 50
    profile_half_life: float = 20.0
    dedup_ttl_s: int = 7 * 24 * 3600
    log: EventLog | None = None
    registry: ModelRegistry | None = None
    flush_interval_s: float = 2.0
    # Serving reads user vectors from Redis; the Milvus copy is for durability and may lag.
    user_sync_interval_s: float = 1.0
    trending_half_life_s: float = 24 * 3600.0
    # Loads another text model when a re-index switched the live one (None: never switch).
    embedder_loader: Callable[[str], TextEmbedder] | None = None
    # Item-write lease: how long one batch may take before a re-index stops waiting for it.
    item_lease_ms: int = 30_000
    writer_id: str = field(default_factory=lambda: f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
    _dirty_since: float | None = None
    _users_to_sync: set[str] = field(default_factory=set)
    _users_since: float | None = None

    def defer_user_sync(self, user_ids: Sequence[str]) -> None:
        """Mirror these users into Milvus soon (batched), or now if no interval is set."""
        if self.user_sync_interval_s <= 0:
            _persist_users(self, list(user_ids))
            return
        self._users_to_sync.update(user_ids)
        if self._users_since is None:
            self._users_since = time.monotonic()

    def sync_users_if_due(self, *, force: bool = False) -> int:
        """Write deferred users to Milvus if they waited long enough (or any, with `force`)."""
        if not self._users_to_sync or self._users_since is None:
            return 0
        if not force and time.monotonic() - self._users_since < self.user_sync_interval_s:
            return 0
        users = sorted(self._users_to_sync)
        for i in range(0, len(users), 1000):
            _persist_users(self, users[i : i + 1000])
        self._users_to_sync.clear()
        self._users_since = None
        return len(users)

    @cached_property
    def trending(self) -> Trending:
        return Trending(self.redis, self.keys, self.trending_half_life_s)

    def live_embedder(self) -> TextEmbedder:
        """The model the live items collection uses (a re-index may have switched it)."""
        raw = self.redis.get(self.keys.text_model)
        name = raw.decode() if raw else None
        if name and name != self.embedder.name and self.embedder_loader is not None:
            log.info("text model switched to %s by a re-index; loading it", name)
            self.embedder = self.embedder_loader(name)
        return self.embedder

    @contextmanager
    def item_writes(self, max_wait_s: float = 60.0) -> Iterator[None]:
        """Hold the item-write lease; waits while a re-index freezes item writes to swap.

        A re-index copies the catalogue beside live writes, then freezes them (typically under a
        second), waits for leases in flight, copies the last changes and swaps the alias: no
        write can land in the old collection after its final catch-up.
        """
        lease = self.redis.register_script(_TAKE_LEASE)
        deadline = time.monotonic() + max_wait_s
        while not lease(
            keys=[self.keys.item_freeze, self.keys.item_writers],
            args=[self.writer_id, self.item_lease_ms],
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("item writes frozen for too long (re-index swap stuck?)")
            time.sleep(0.02)
        try:
            yield
        finally:
            self.redis.zrem(self.keys.item_writers, self.writer_id)

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
        self.sync_users_if_due(force=True)
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


# KEYS: freeze flag, writers. ARGV: writer id, lease ms. 1 when the lease is held.
_TAKE_LEASE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[2]), ARGV[1])
return 1
"""

# Item writes carry their stream id as a version. A write older than the last applied one for
# that item (a reclaimed, long-failed event) is stale and skipped, so it cannot undo a newer
# edit such as a maturity raise. Every write that goes ahead is stamped (Redis clock, ms) in
# the change log a running re-index catches up from.
# KEYS: the versions hash, the change log; ARGV: item, id ('' = unversioned), item, id, ...
_CLAIM_VERSIONS = """
local out = {}
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
for i = 1, #ARGV, 2 do
  local newer = true
  if ARGV[i + 1] ~= '' then
    local cur = redis.call('HGET', KEYS[1], ARGV[i])
    if cur then
      local cm, cs = string.match(cur, '^(%d+)-(%d+)$')
      local nm, ns = string.match(ARGV[i + 1], '^(%d+)-(%d+)$')
      cm, cs, nm, ns = tonumber(cm), tonumber(cs), tonumber(nm), tonumber(ns)
      newer = nm > cm or (nm == cm and ns >= cs)
    end
    if newer then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
  end
  if newer then redis.call('ZADD', KEYS[2], now, ARGV[i]) end
  out[#out + 1] = newer and 1 or 0
end
return out
"""


def _fresh_writes(s: Stores, ids: Sequence[str], versions: Sequence[str] | None) -> list[bool]:
    """Which of these item writes are not older than what was already applied."""
    vs = list(versions) if versions is not None else [""] * len(ids)
    args = [x for pair in zip(ids, vs, strict=True) for x in pair]
    flags = s.redis.register_script(_CLAIM_VERSIONS)(
        keys=[s.keys.item_versions, s.keys.item_changes], args=args
    )
    return [bool(f) for f in flags]


def apply_item_upserts(
    s: Stores,
    items: Sequence[Item],
    *,
    versions: Sequence[str] | None = None,
    times: Sequence[float] | None = None,
) -> None:
    """Embed and upsert items, keeping their collaborative vectors.

    `versions` (stream ids) make stale writes no-ops; `times` (enqueue times) decide which
    tombstones an upsert lifts: only one set before the upsert was enqueued (DELETE then PUT).
    """
    if not items:
        return
    with s.item_writes():
        _upsert_items(s, items, versions, times)


def _upsert_items(
    s: Stores,
    items: Sequence[Item],
    versions: Sequence[str] | None,
    times: Sequence[float] | None,
) -> None:
    now = time.time()
    fresh = _fresh_writes(s, [i.item_id for i in items], versions)
    latest: dict[str, tuple[Item, float]] = {}  # last write in the batch wins
    for n, (it, ok) in enumerate(zip(items, fresh, strict=True)):
        if ok:
            latest[it.item_id] = (it, times[n] if times else now)
    if not latest:
        return
    batch = [it for it, _ in latest.values()]
    t = time.perf_counter()
    vecs = embed_items(s.live_embedder(), batch)
    embed_s = time.perf_counter() - t
    # An edit must not cost the item its place in the collaborative space.
    known_cf = s.items.vectors([it.item_id for it in batch], field="cf_vec")
    zero_cf = np.zeros(s.cf_dim, dtype=np.float32)
    s.items.upsert(
        [
            item_row(it, v, known_cf.get(it.item_id, zero_cf))
            for it, v in zip(batch, vecs, strict=True)
        ]
    )
    s.mark_written()
    pipe = s.redis.pipeline(transaction=False)
    pipe.hincrby(s.keys.worker_stats, "embedded", len(batch))
    pipe.hincrbyfloat(s.keys.worker_stats, "embed_s", embed_s)
    pipe.hset(
        s.keys.item_categories,
        mapping={it.item_id: CATEGORY_SEP.join(it.categories) for it in batch},
    )
    hidden = {it.item_id: t for it, t in latest.values() if it.status == "hidden"}
    if hidden:
        pipe.zadd(s.keys.tombstones, hidden)
        pipe.zrem(s.keys.popularity, *hidden)
        pipe.zrem(s.keys.trending(), *hidden)
    pipe.execute()
    active = [(it.item_id, t) for it, t in latest.values() if it.status == "active"]
    if active:
        scores = s.redis.zmscore(s.keys.tombstones, [i for i, _ in active])
        lift = [i for (i, t), sc in zip(active, scores, strict=True) if sc is not None and sc <= t]
        if lift:
            s.redis.zrem(s.keys.tombstones, *lift)


def apply_item_deletes(
    s: Stores,
    item_ids: Sequence[str],
    *,
    versions: Sequence[str] | None = None,
    times: Sequence[float] | None = None,
) -> None:
    """Delete items from Milvus; their tombstones stay so caches and replicas cannot revive them."""
    if not item_ids:
        return
    with s.item_writes():
        _delete_items(s, item_ids, versions, times)


def _delete_items(
    s: Stores,
    item_ids: Sequence[str],
    versions: Sequence[str] | None,
    times: Sequence[float] | None,
) -> None:
    now = time.time()
    fresh = _fresh_writes(s, item_ids, versions)
    gone = {
        i: (times[n] if times else now)
        for n, (i, ok) in enumerate(zip(item_ids, fresh, strict=True))
        if ok
    }
    if not gone:
        return
    s.items.delete(list(gone))
    s.mark_written()
    pipe = s.redis.pipeline(transaction=False)
    pipe.zadd(s.keys.tombstones, gone, gt=True)
    pipe.zrem(s.keys.popularity, *gone)
    pipe.hdel(s.keys.item_categories, *gone)
    pipe.zrem(s.keys.trending(), *gone)
    pipe.execute()


def apply_user_updates(s: Stores, users: Sequence[User]) -> None:
    """Store profiles in Redis (hot copy) and Milvus (durable copy), with onboarding vectors."""
    if not users:
        return
    latest = {u.user_id: u for u in users}
    prefs = preference_vectors(s, list(latest.values()))
    pipe = s.redis.pipeline(transaction=False)
    for u in latest.values():
        key = s.keys.user(u.user_id)
        pipe.hset(key, "profile", u.model_dump_json(exclude={"user_id"}))
        pvec = prefs.get(u.user_id)
        if pvec is None:
            pipe.hdel(key, "pvec")
        else:
            pipe.hset(key, "pvec", pvec.astype(np.float32).tobytes())
        pipe.hincrby(key, "ver", 1)
        pipe.sadd(s.keys.users_index, u.user_id)
    pipe.execute()
    _persist_users(s, list(latest))


PREFERENCE_ITEMS = 20  # items that stand for one preferred category


def preference_vectors(s: Stores, users: Sequence[User]) -> dict[str, np.ndarray]:
    """Cold-start content vectors from the categories users chose at onboarding.

    Each category is the normalised mean of up to `PREFERENCE_ITEMS` of its items (what
    trends in it, else any active items of that primary category); a user's vector is the
    normalised mean of their categories', so every chosen category weighs the same. Users
    without categories, or whose categories have no known items yet, get none.
    """
    cats = sorted({c for u in users for c in u.preferences.categories})
    if not cats:
        return {}
    members = _category_items(s, cats)
    vecs = s.items.vectors({i for ids in members.values() for i in ids})
    centroids: dict[str, np.ndarray] = {}
    for c, ids in members.items():
        known = [vecs[i] for i in ids if i in vecs]
        unit = _unit(np.mean(known, axis=0)) if known else None
        if unit is not None:
            centroids[c] = unit
    out: dict[str, np.ndarray] = {}
    for u in users:
        chosen = [centroids[c] for c in u.preferences.categories if c in centroids]
        unit = _unit(np.mean(chosen, axis=0)) if chosen else None
        if unit is not None:
            out[u.user_id] = unit
    return out


def _category_items(s: Stores, cats: Sequence[str]) -> dict[str, list[str]]:
    """Up to `PREFERENCE_ITEMS` item ids per category: its trending top, else from Milvus."""
    pipe = s.redis.pipeline(transaction=False)
    for c in cats:
        pipe.zrevrange(s.keys.trending(f"cat:{c}"), 0, PREFERENCE_ITEMS - 1)
    out: dict[str, list[str]] = {}
    for c, top in zip(cats, pipe.execute(), strict=True):
        out[c] = [i.decode() for i in top] or s.items.ids_matching(
            Filter().eq("category", c).eq("status", "active"), limit=PREFERENCE_ITEMS
        )
    return out


def _unit(vec: np.ndarray) -> np.ndarray | None:
    norm = float(np.linalg.norm(vec))
    return (vec / norm).astype(np.float32) if norm > 0 else None


# One interaction, atomically: set its "done" marker and, only if it was not set before,
# apply its effects. Two workers holding the same event (a reclaim while the first is still
# busy) can both run this; exactly one of them changes anything.
# Explicit negatives (dislike, skip) go to the user's negatives set; an explicit positive
# (like, watch, purchase, a rating of 3.5+) after the last negative on that item takes it out
# again (the user changed their mind). A view or click does not: it may just be the page.
# An attributable event (positive, citing a served list) counts one click for that list's
# item, whatever the number of such events: the list's hash keeps a marker field per item.
# Only the user the list was served to can click it (a shared link citing someone else's
# list does not count).
# KEYS: done, history, affinity, confidence, popularity, users index, negatives, served list
#       (rec_info), surface stats, trending sets...
# ARGV: item, ts, weight, confidence, dedup ttl (0 = no marker), history length, user,
#       trending increment, negative (1/0), negatives kept, attributable (1/0), lifts (1/0)
_APPLY_ONE = """
if ARGV[5] ~= '0' then
  if not redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[5]) then return 0 end
end
redis.call('ZADD', KEYS[2], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[6]) - 1)
redis.call('HINCRBYFLOAT', KEYS[3], ARGV[1], ARGV[3])
if tonumber(ARGV[4]) > 0 then redis.call('HINCRBYFLOAT', KEYS[4], ARGV[1], ARGV[4]) end
if tonumber(ARGV[3]) > 0 then redis.call('ZINCRBY', KEYS[5], ARGV[3], ARGV[1]) end
redis.call('SADD', KEYS[6], ARGV[7])
if ARGV[9] == '1' then
  redis.call('ZADD', KEYS[7], 'GT', ARGV[2], ARGV[1])
  redis.call('ZREMRANGEBYRANK', KEYS[7], 0, -tonumber(ARGV[10]) - 1)
elseif ARGV[12] == '1' then
  local since = redis.call('ZSCORE', KEYS[7], ARGV[1])
  if since and tonumber(since) < tonumber(ARGV[2]) then redis.call('ZREM', KEYS[7], ARGV[1]) end
end
if ARGV[11] == '1' then
  local raw = redis.call('HGET', KEYS[8], ARGV[1])
  local ok, d = false, nil
  if raw then ok, d = pcall(cjson.decode, raw) end
  if ok and type(d) == 'table' and type(d.surface) == 'string' and type(d.variant) == 'string'
     and (d.user == nil or d.user == '' or d.user == ARGV[7])
     and redis.call('HSETNX', KEYS[8], '~clicked:' .. ARGV[1], ARGV[2]) == 1 then
    local tail = '|' .. d.variant
    redis.call('HINCRBY', KEYS[9], 'click|' .. d.surface .. '|*' .. tail, 1)
    if type(d.sources) == 'table' then
      for _, src in ipairs(d.sources) do
        redis.call('HINCRBY', KEYS[9], 'click|' .. d.surface .. '|' .. tostring(src) .. tail, 1)
      end
    end
  end
end
if tonumber(ARGV[8]) > 0 then
  for i = 10, #KEYS do redis.call('ZINCRBY', KEYS[i], ARGV[8], ARGV[1]) end
end
return 1
"""
NEGATIVE_TYPES = frozenset({"dislike", "skip"})
LIFTING_TYPES = frozenset({"like", "watch", "purchase"})
ATTRIBUTED_TYPES = frozenset({"click", "watch", "like", "purchase"})
ATTRIBUTED_MIN_RATING = 3.5


def lifts_negative(ev: Interaction) -> bool:
    """An explicit positive: it takes an earlier dislike or skip of the item back."""
    if ev.type == "rate":
        return ev.value is not None and ev.value >= ATTRIBUTED_MIN_RATING
    return ev.type in LIFTING_TYPES


def attributable(ev: Interaction) -> bool:
    """Whether an event counts as a click on the served list it cites (positive types only)."""
    if ev.recommendation_id is None:
        return False
    if ev.type == "rate":
        return ev.value is not None and ev.value >= ATTRIBUTED_MIN_RATING
    return ev.type in ATTRIBUTED_TYPES


def apply_interactions(
    s: Stores, events: Sequence[tuple[str | None, Interaction]], *, refresh: bool = True
) -> int:
    """Apply interactions exactly once in effect; returns how many were new.

    `events` pairs each interaction with its event id (None for bulk imports that have no
    stream id and are applied once by construction). Profiles of every user in the batch are
    refreshed even when all events were duplicates: a redelivery after a failed refresh must
    finish the job.
    """
    if not events:
        return 0
    script = s.redis.register_script(_APPLY_ONE)
    scopes = trending_scopes(s.redis, s.keys, [ev for _, ev in events])
    pipe = s.redis.pipeline(transaction=False)
    users: list[str] = []
    now = time.time()
    for eid, ev in events:
        ts = float(ev.timestamp if ev.timestamp is not None else now)
        k = s.keys
        script(
            keys=[
                k.done(eid or "-"),
                k.history(ev.user_id),
                k.affinity(ev.user_id),
                k.confidence(ev.user_id),
                k.popularity,
                k.users_index,
                k.negatives(ev.user_id),
                k.rec_info(ev.recommendation_id or ""),  # not read unless attributable
                k.surface_stats,
                *(k.trending(sc) for sc in scopes(ev)),
            ],
            args=[
                ev.item_id,
                repr(ts),
                repr(ev.weight),
                repr(confidence_weight(ev.type, ev.value)),
                s.dedup_ttl_s if eid is not None else 0,
                s.history_len,
                ev.user_id,
                repr(s.trending.increment(ev.weight, min(ts, now))),
                int(ev.type in NEGATIVE_TYPES),
                s.negatives_len,
                int(attributable(ev)),
                int(lifts_negative(ev)),
            ],
            client=pipe,
        )
        users.append(ev.user_id)
    applied = sum(int(x) for x in pipe.execute())
    if refresh:
        refresh_profiles(s, list(dict.fromkeys(users)))
    return applied


def refresh_profiles(s: Stores, user_ids: Sequence[str]) -> None:
    """Recompute content profiles from recent history (order-free, so retries are harmless)."""
    if not user_ids:
        return
    pipe = s.redis.pipeline(transaction=False)
    for uid in user_ids:
        pipe.zrevrange(s.keys.history(uid), 0, s.profile_items - 1)
    histories = [[i.decode() for i in h] for h in pipe.execute()]
    # Only the affinities of those recent items (a heavy user's hash holds thousands).
    pipe = s.redis.pipeline(transaction=False)
    for uid, items in zip(user_ids, histories, strict=True):
        if items:
            pipe.hmget(s.keys.affinity(uid), items)
    affs = iter(pipe.execute())
    recent: dict[str, list[tuple[str, float]]] = {}
    wanted: set[str] = set()
    for uid, items in zip(user_ids, histories, strict=True):
        weights = next(affs) if items else []
        recent[uid] = [(i, float(w or 0.0)) for i, w in zip(items, weights, strict=True)]
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
    s.defer_user_sync(user_ids)


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
