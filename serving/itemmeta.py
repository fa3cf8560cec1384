"""Items as the read path sees them now: process cache, re-read when the change log says so.

Candidate sources, the context item and pins read item metadata here instead of from Milvus:
once the cache is warm a request reads only Redis (the tombstones and the change log, one
round trip), and an item written since it was cached is read again (a maturity raised, a
region restricted, a hide), so nothing is served on outdated metadata.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar

from core.stores.item_cache import CACHED_FIELDS, ItemMeta
from core.stores.items import READ_PAGE
from core.stores.protocols import ItemMarks
from serving.state import ServingState

log = logging.getLogger(__name__)

WARM_BATCH = 1000
WARM_POLL_S = 5.0
# After each batch the warm-up rests as long as the batch took: an embedded (single-process)
# Milvus then gives requests at least half of its time while the cache fills.
WARM_REST = 1.0
# Every RENEW_EVERY_S the entries loaded more than half the cache's TTL ago are renewed from
# the change log (`ItemMetaCache.renew`: no Milvus read), so they do not expire together.
RENEW_EVERY_S = 60.0


class _Memo:
    """The marks of the items this request read (`marks_once`): which it read, which of them
    are tombstoned and when each was last written, and whether the request has read the
    catalogue's current state yet (and since when it began: a read of the catalogue begun
    since then is current for it). Sets and a dict, so a lookup of hundreds of ids is a set
    operation, not a loop."""

    def __init__(self) -> None:
        self.read: set[str] = set()
        self.tombstoned: set[str] = set()
        self.changed_at: dict[str, float] = {}
        self.current = False
        self.began = time.monotonic()


_MARKS: ContextVar[_Memo | None] = ContextVar("request_marks", default=None)


@contextlib.contextmanager
def marks_once() -> Iterator[None]:
    """Within it, each item's marks are read once, and the catalogue's current state once:
    the candidate sources (each on its own thread, sharing the memo), the fused list's
    tombstone check and the item reads of one request ask for overlapping ids (a read per
    source cost a round trip each, and the fused check read them all again); a store that
    follows the catalogue in memory answers the later reads without a round trip. One
    request's reads are milliseconds apart, as before."""
    memo = _Memo()
    token = _MARKS.set(memo)
    try:
        yield
    finally:
        _MARKS.reset(token)


def marks(state: ServingState, ids: Sequence[str]) -> ItemMarks:
    """The catalogue's marks of these items: from this request's memo where read already."""
    memo = _MARKS.get()
    if memo is None:
        return state.catalogue.marks(ids)
    wanted = set(ids)
    missing = wanted - memo.read
    if missing:
        got = state.catalogue.marks(list(missing), current=not memo.current, since=memo.began)
        memo.current = True
        # The marks before the ids: a source on another thread that sees an id as read
        # sees its marks too.
        memo.tombstoned |= got.tombstoned
        memo.changed_at.update(got.changed_at)
        memo.read |= missing
    changed = memo.changed_at
    return ItemMarks(
        frozenset(memo.tombstoned & wanted),
        {i: changed[i] for i in changed.keys() & wanted},
    )


def tombstoned(state: ServingState, ids: Sequence[str]) -> set[str]:
    return set(marks(state, ids).tombstoned)


def current(state: ServingState, ids: Sequence[str]) -> dict[str, ItemMeta]:
    """The items that exist and are not tombstoned, with their current metadata: the marks
    (one Redis round trip, or none within `marks_once` for items read already), then a read
    of the index only for items not cached or written since."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        return {}
    m = marks(state, ids)
    meta = state.item_cache.get(state.items, ids, m.changed_at)
    return {i: v for i, v in meta.items() if i not in m.tombstoned}


def fields(state: ServingState, ids: Sequence[str]) -> dict[str, dict[str, object]]:
    """`current`, as the serving fields the constraints and the policy read."""
    return {i: dict(m.fields) for i, m in current(state, ids).items()}


def warm(state: ServingState, stop: threading.Event, poll_s: float = WARM_POLL_S) -> None:
    """Read the whole catalogue into the process cache, in the background, at start and
    after each re-index swap (a new collection, which replaces the old one's entries), up to
    the cache's size: then a request from a candidate set reads no item from Milvus. Every
    `RENEW_EVERY_S`, during a warm-up too, the entries the change log says are unchanged
    are kept current (`renew`). A failure is retried at the next poll."""
    warmed: str | None = None
    renewal = _Renewal(state, stop)
    while not stop.is_set():
        coll = state.items.collection
        renewal.when_due()
        if coll != warmed:
            try:
                state.item_cache.retain(coll)
                t0, n = time.perf_counter(), _warm_once(state, coll, stop, renewal)
                warmed = state.item_cache.warmed = coll
                # DEBUG: `vantage_item_cache_items` (/metrics) shows it to operators.
                log.debug("item cache: %d items of %s in %.1f s", n, coll, time.perf_counter() - t0)
                # The cache is long-lived and holds no cycles: out of the collector's sight,
                # a full collection no longer walks it (tens of ms per pass at 100k items).
                gc.freeze()
            except Exception as e:  # the thread must outlive any failure
                log.warning("item cache warm-up failed (%s); retrying", e)
        if stop.wait(poll_s):
            return


class _Renewal:
    """Every `RENEW_EVERY_S`, renews the current collection's unchanged entries loaded more
    than half the cache's TTL ago (a warm-up longer than the TTL, 1M items on Milvus Lite,
    would otherwise lose its first pages before it ends), and reads again, a page at a time
    with the warm-up's rests, those last read `reread_after_s` ago."""

    def __init__(self, state: ServingState, stop: threading.Event):
        self.state, self.stop = state, stop
        self.last = time.monotonic()

    def when_due(self) -> None:
        if time.monotonic() - self.last < RENEW_EVERY_S:
            return
        self.last = time.monotonic()
        cache, items = self.state.item_cache, self.state.items
        try:
            stale = cache.renew(
                self.state.catalogue, items.collection, older_than_s=cache.ttl_s / 2
            )
            for start in range(0, len(stale), READ_PAGE):
                t = time.monotonic()
                cache.load(items, stale[start : start + READ_PAGE], background=True)
                if self.stop.wait(min(WARM_REST * (time.monotonic() - t), 2.0)):
                    return
        except Exception as e:  # the warm-up thread must outlive any failure
            log.warning("item cache renewal failed (%s); retrying", e)


def _warm_once(
    state: ServingState, collection: str, stop: threading.Event, renewal: _Renewal | None = None
) -> int:
    cache, n = state.item_cache, 0
    at = time.time()
    for rows in state.items.iter_rows(CACHED_FIELDS, batch=WARM_BATCH):
        if stop.is_set() or state.items.collection != collection:
            break
        added = cache.fill(collection, rows, at=at, evict=False)
        n += added
        if added < len(rows):
            break  # full: the rest is read on demand
        if stop.wait(min(WARM_REST * (time.time() - at), 2.0)):
            break
        if renewal is not None:
            renewal.when_due()
        at = time.time()
    return n
