"""Re-index: rebuild the items collection beside the live one, then swap the alias.

1. Create `<alias>_v<N+1>` and copy every item into it, re-embedding its text (with a new
   model if asked), keeping its collaborative vector. Serving keeps reading the old one.
2. Catch up: items written while copying are stamped in the change log (`itemchg`); copy
   them again from the live collection, a few rounds while writes keep flowing.
3. Freeze item writes (workers wait; typically under a second, as long as copying the items
   changed since the last catch-up takes), wait for writes in flight, copy the last changes,
   check the freeze still holds, swap the alias, unfreeze. No write can be lost between the
   two collections.
4. Drop the old collection after a grace period (requests in flight may still read it).

A failure before the swap drops the half-built collection and leaves serving untouched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

from core.redis_typed import members
from core.stores.items import ITEM_ROW_FIELDS
from core.stores.jobs import JobError
from core.stores.schema import create_items_version, current_items_collection, point_alias
from embeddings.text import TextEmbedder, compose_item_text
from indexing.apply import Stores, refresh_profiles

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
COPY_FIELDS = tuple(f for f in ITEM_ROW_FIELDS if f != "content_vec")
CATCH_UP_ROUNDS = 5
FREEZE_MS = 30_000
BUILDING = 1e15  # drop time of a collection being built: never due, dropped by the next job


@dataclass(frozen=True)
class ReindexParams:
    model: str | None = None
    batch_size: int = 256
    grace_s: float = 300.0
    text_dim: int = 384
    cf_dim: int = 64
    consistency: str = "Bounded"


def redis_ms(r: redis.Redis) -> int:
    """Redis's clock in ms: the same clock the change log is stamped with."""
    sec, usec = r.time()
    return int(sec) * 1000 + int(usec) // 1000


def _embed_rows(embedder: TextEmbedder, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    texts = [
        compose_item_text(
            title=r.get("title") or "",
            description=r.get("description") or "",
            categories=list(r.get("categories") or []),
            tags=list(r.get("tags") or []),
        )
        for r in rows
    ]
    vecs = embedder.embed(texts)
    out = []
    for row, vec in zip(rows, vecs, strict=True):
        new = {k: row[k] for k in ("item_id", *COPY_FIELDS)}
        new["content_vec"] = vec.astype(np.float32).tolist()
        new["cf_vec"] = np.asarray(row["cf_vec"], dtype=np.float32).tolist()
        new["categories"] = list(row["categories"] or [])
        new["tags"] = list(row["tags"] or [])
        new["regions"] = list(row["regions"] or [])
        out.append(new)
    return out


class Reindexer:
    def __init__(self, stores: Stores, params: ReindexParams, progress: Progress):
        self.s = stores
        self.p = params
        self.progress = progress
        self.client = stores.items.client
        self.names = stores.items.names

    def _embedder(self) -> TextEmbedder:
        if self.p.model is None:
            return self.s.live_embedder()
        if self.p.model == self.s.live_embedder().name:
            return self.s.embedder
        if self.s.embedder_loader is None:
            raise JobError("this worker cannot load other text models")
        try:
            emb = self.s.embedder_loader(self.p.model)
        except Exception as e:
            raise JobError(f"cannot load text model {self.p.model!r}: {e}") from e
        if emb.dim != self.p.text_dim:
            raise JobError(
                f"text model {self.p.model!r} has dimension {emb.dim}, the collections use "
                f"{self.p.text_dim}: change VANTAGE_MODELS__TEXT_DIM and start from a new store"
            )
        return emb

    def copy_ids(self, embedder: TextEmbedder, ids: Sequence[str], new: str) -> int:
        """Copy these items' current rows (from behind the alias) into `new`; delete the gone."""
        n = 0
        for i in range(0, len(ids), self.p.batch_size):
            chunk = list(ids[i : i + self.p.batch_size])
            rows = self.s.items.get(chunk, ("content_vec", *COPY_FIELDS), strong=True)
            gone = [x for x in chunk if x not in rows]
            if rows:
                self.s.items.upsert(_embed_rows(embedder, list(rows.values())), collection=new)
            if gone:
                self.s.items.delete(gone, collection=new)
            n += len(chunk)
        return n

    def run(self) -> dict[str, Any]:
        t0 = time.monotonic()
        embedder = self._embedder()
        old = current_items_collection(self.client, self.names)
        # Jobs never overlap: a collection still marked as being built is a crashed attempt's.
        r, k = self.s.redis, self.s.keys
        for leftover in members(r.zrangebyscore(k.collection_drops, BUILDING, "+inf")):
            if leftover != old and self.client.has_collection(leftover):
                self.client.drop_collection(leftover)
                log.info("dropped %s, left half-built by an earlier attempt", leftover)
            r.zrem(k.collection_drops, leftover)
        new = create_items_version(
            self.client,
            self.names,
            text_dim=self.p.text_dim,
            cf_dim=self.p.cf_dim,
            consistency=self.p.consistency,
        )
        log.info("re-index: %s -> %s (model %s)", old, new, embedder.name)
        # Marked as being built: if this process dies, the next re-index drops it.
        self.s.redis.zadd(self.s.keys.collection_drops, {new: BUILDING})
        try:
            result = self._build_and_swap(embedder, old, new)
        except BaseException:
            if current_items_collection(self.client, self.names) != new:
                self.client.drop_collection(new)
                self.s.redis.zrem(self.s.keys.collection_drops, new)
            raise
        self.s.redis.zrem(self.s.keys.collection_drops, new)
        result["seconds"] = round(time.monotonic() - t0, 2)
        return result

    def _build_and_swap(self, embedder: TextEmbedder, old: str | None, new: str) -> dict[str, Any]:
        r, k = self.s.redis, self.s.keys
        lease = self.s.item_lease_ms
        total = self.s.items.count()
        mark = redis_ms(r)
        copied = 0
        self.progress(0, total, "copying")
        for rows in self.s.items.iter_rows(
            ("content_vec", *COPY_FIELDS), batch=self.p.batch_size, collection=old
        ):
            self.s.items.upsert(_embed_rows(embedder, rows), collection=new)
            copied += len(rows)
            self.progress(copied, max(total, copied), "copying")
        # Writes that may have raced the copy: anything stamped since a lease before the mark.
        recopied = 0
        for _ in range(CATCH_UP_ROUNDS):
            now = redis_ms(r)
            changed = members(r.zrangebyscore(k.item_changes, mark - lease, "+inf"))
            mark = now
            recopied += self.copy_ids(embedder, changed, new)
            if len(changed) < 50:
                break
        self.progress(copied, max(total, copied), "swapping")
        frozen_ms = self._swap(embedder, new, mark, lease)
        if old is not None and old != new:
            r.zadd(k.collection_drops, {old: time.time() + self.p.grace_s})
        switched = self.p.model is not None
        if switched:
            self._refresh_users()
        final = self.s.items.count(collection=new)
        self.progress(final, final, "done")
        return {
            "collection": new,
            "previous": old,
            "items": final,
            "copied": copied,
            "recopied": recopied,
            "frozen_ms": frozen_ms,
            "model": embedder.name,
            "drop_previous_after_s": self.p.grace_s,
        }

    def _swap(self, embedder: TextEmbedder, new: str, mark: int, lease: int) -> float:
        r, k = self.s.redis, self.s.keys
        t = time.perf_counter()
        r.set(k.item_freeze, new, px=FREEZE_MS)
        try:
            # Writers holding a lease finish first (a dead one's lease expires).
            deadline = time.monotonic() + lease / 1000 + 1
            while r.zcount(k.item_writers, redis_ms(r), "+inf") > 0:
                if time.monotonic() > deadline:
                    raise JobError("item writers did not finish within their lease")
                time.sleep(0.01)
            # A fresh freeze window for the last copy and the swap (the wait may have used
            # most of the first one).
            r.set(k.item_freeze, new, px=FREEZE_MS)
            changed = members(r.zrangebyscore(k.item_changes, mark - lease, "+inf"))
            self.copy_ids(embedder, changed, new)
            self.s.items.flush(collection=new)
            # Never swap if the freeze lapsed meanwhile: writers may have written the old one.
            if r.get(k.item_freeze) != new.encode():
                raise JobError("the write freeze expired before the swap; retrying the job")
            point_alias(self.client, self.names, new)
            if self.p.model is not None:
                r.set(k.text_model, embedder.name)
        finally:
            r.delete(k.item_freeze)
        return round((time.perf_counter() - t) * 1000, 1)

    def _refresh_users(self) -> None:
        """Content profiles live in the text model's space: rebuild them after a switch."""
        users = members(self.s.redis.smembers(self.s.keys.users_index))
        for i in range(0, len(users), 500):
            refresh_profiles(self.s, users[i : i + 500])
            self.progress(i, len(users), "refreshing user profiles")
        self.s.sync_users_if_due(force=True)


def drop_due_collections(stores: Stores, now: float | None = None) -> list[str]:
    """Drop old physical collections whose grace period has passed (never the live one)."""
    r, k = stores.redis, stores.keys
    now = time.time() if now is None else now
    due = members(r.zrangebyscore(k.collection_drops, "-inf", now))
    live = current_items_collection(stores.items.client, stores.items.names)
    dropped = []
    for name in due:
        if name != live and stores.items.client.has_collection(name):
            stores.items.client.drop_collection(name)
            dropped.append(name)
            log.info("dropped old items collection %s", name)
        r.zrem(k.collection_drops, name)
    return dropped
