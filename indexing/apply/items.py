"""Item upserts and deletes: embedded in batches, versioned, under the item-write lease.

Item writes carry their stream id as a version; the version claim
(`core/scripts/claim_versions.lua`) skips a write older than the last one applied to its item,
and stamps every write that goes ahead in the change log a running re-index catches up from.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from core.domain import Item
from core.scripts import CLAIM_VERSIONS, STAMP_CHANGES, execute
from core.stores.catalogue import FEED_MAX, announce
from core.stores.item_rows import item_row
from core.tracing import span
from core.trending import CATEGORY_SEP
from embeddings.text import TextEmbedder, compose_item_text
from indexing.apply.stores import Stores


def embed_items(embedder: TextEmbedder, items: Sequence[Item]) -> npt.NDArray[np.float32]:
    """Content vectors for items, one batched model call."""
    texts = [
        compose_item_text(
            title=i.title, description=i.description, categories=i.categories, tags=i.tags
        )
        for i in items
    ]
    return embedder.embed(texts)


def _fresh_writes(s: Stores, ids: Sequence[str], versions: Sequence[str] | None) -> list[bool]:
    """Which of these item writes are not older than what was already applied."""
    vs = list(versions) if versions is not None else [""] * len(ids)
    flags = CLAIM_VERSIONS(
        s.redis,
        keys={
            "versions": s.keys.item_versions,
            "changes": s.keys.item_changes,
            "feed": s.keys.catalogue_feed,
        },
        args={
            "feed_max": FEED_MAX,
            "item_versions": [x for pair in zip(ids, vs, strict=True) for x in pair],
        },
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
    with span("embed items", **{"vantage.items": len(batch)}):
        vecs = embed_items(s.live_embedder(), batch)
    embed_s = time.perf_counter() - t
    # An edit must not cost the item its place in the collaborative space. A point read by
    # key, not a scan (Milvus Lite too). A partial upsert leaving cf_vec out would spare it only
    # for items known to exist: Milvus rejects a whole batch holding a new item's partial row,
    # and only this read says reliably which items exist.
    with span("milvus query", **{"db.system": "milvus"}):
        known_cf = s.items.vectors([it.item_id for it in batch], field="cf_vec")
    zero_cf = np.zeros(s.cf_dim, dtype=np.float32)
    pairs = zip(batch, vecs, strict=True)
    rows = [item_row(it, v, known_cf.get(it.item_id, zero_cf)) for it, v in pairs]
    with span("milvus upsert", **{"db.system": "milvus"}):
        s.items.upsert(rows)
    s.mark_written()
    pipe = s.redis.pipeline(transaction=False)
    STAMP_CHANGES(
        s.redis,
        keys={"changes": s.keys.item_changes, "feed": s.keys.catalogue_feed},
        args={"feed_max": FEED_MAX, "items": list(latest)},
        pipe=pipe,
    )
    pipe.hincrby(s.keys.worker_stats, "embedded", len(batch))
    pipe.hincrbyfloat(s.keys.worker_stats, "embed_s", embed_s)
    pipe.hset(
        s.keys.item_categories,
        mapping={it.item_id: CATEGORY_SEP.join(it.categories) for it in batch},
    )
    hidden = {it.item_id: t for it, t in latest.values() if it.status == "hidden"}
    if hidden:
        pipe.zadd(s.keys.tombstones, hidden)
        announce(pipe, s.keys, list(hidden))
        pipe.zrem(s.keys.popularity, *hidden)
        pipe.zrem(s.keys.trending(), *hidden)
    with span("redis execute", **{"db.system": "redis"}):
        execute(s.redis, pipe)
    active = [(it.item_id, t) for it, t in latest.values() if it.status == "active"]
    if active:
        _lift_tombstones(s, active)


def _lift_tombstones(s: Stores, active: Sequence[tuple[str, float]]) -> None:
    """Revive items whose tombstone is older than their upsert (a DELETE, then a PUT)."""
    scores = s.redis.zmscore(s.keys.tombstones, [i for i, _ in active])
    lift = [i for (i, t), sc in zip(active, scores, strict=True) if sc is not None and sc <= t]
    if lift:
        pipe = s.redis.pipeline(transaction=False)
        pipe.zrem(s.keys.tombstones, *lift)
        announce(pipe, s.keys, lift)
        pipe.execute()


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
    announce(pipe, s.keys, list(gone))
    pipe.zrem(s.keys.popularity, *gone)
    pipe.hdel(s.keys.item_categories, *gone)
    pipe.zrem(s.keys.trending(), *gone)
    pipe.execute()
