"""Items as the read path sees them now: process cache, re-read when the change log says so.

Candidate sources, the context item and pins read item metadata here instead of from Milvus:
once the cache is warm a request reads only Redis (the tombstones and the change log, one
round trip), and an item written since it was cached is read again (a maturity raised, a
region restricted, a hide), so nothing is served on outdated metadata.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Sequence

from core.stores.item_cache import CACHED_FIELDS, ItemMeta
from serving.state import ServingState

log = logging.getLogger(__name__)

WARM_BATCH = 1000
WARM_POLL_S = 5.0
# After each batch the warm-up rests as long as the batch took: an embedded (single-process)
# Milvus then gives requests at least half of its time while the cache fills.
WARM_REST = 1.0


def current(state: ServingState, ids: Sequence[str]) -> dict[str, ItemMeta]:
    """The items that exist and are not tombstoned, with their current metadata."""
    return state.item_cache.current(state.items, state.catalogue, ids)


def fields(state: ServingState, ids: Sequence[str]) -> dict[str, dict[str, object]]:
    """`current`, as the serving fields the constraints and the policy read."""
    return {i: dict(m.fields) for i, m in current(state, ids).items()}


def warm(state: ServingState, stop: threading.Event, poll_s: float = WARM_POLL_S) -> None:
    """Read the whole catalogue into the process cache, in the background, at start and
    after each re-index swap (a new collection), up to the cache's size: then a request from
    a candidate set reads no item from Milvus. A failure is retried at the next poll."""
    warmed: str | None = None
    while not stop.is_set():
        coll = state.items.collection
        if coll != warmed:
            try:
                t0, n = time.perf_counter(), _warm_once(state, coll, stop)
                warmed = coll
                # DEBUG: `vantage_item_cache_items` (/metrics) shows it to operators.
                log.debug("item cache: %d items of %s in %.1f s", n, coll, time.perf_counter() - t0)
                # The cache is long-lived and holds no cycles: out of the collector's sight,
                # a full collection no longer walks it (tens of ms per pass at 100k items).
                gc.freeze()
            except Exception as e:  # the thread must outlive any failure
                log.warning("item cache warm-up failed (%s); retrying", e)
        if stop.wait(poll_s):
            return


def _warm_once(state: ServingState, collection: str, stop: threading.Event) -> int:
    cache, n = state.item_cache, 0
    at = time.time()
    for rows in state.items.iter_rows(CACHED_FIELDS, batch=WARM_BATCH):
        if stop.is_set() or state.items.collection != collection:
            break
        added = cache.fill(collection, rows, at=at, evict=False)
        if not added:
            break  # full: the rest is read on demand
        n += added
        if stop.wait(min(WARM_REST * (time.time() - at), 2.0)):
            break
        at = time.time()
    return n
