"""Items in process memory: (collection, item) -> content vector, title and serving metadata.

The read path (candidate sources, features, the policy) and the worker (content profiles) read
items here instead of from Milvus, whose Lite engine pays a scan per call (a `get` of ~200 ids
costs 13-30 ms on ML-100K). An entry is read again when the item change log says the item was
written since it was loaded (`CatalogueState.marks`), and at the latest after `ttl_s` (the
change log keeps an hour); misses are read from the item index in one call. `renew` keeps
unchanged entries current from the change log alone, so a warm cache does not expire at once,
and names those read longer than `reread_after_s` ago, which the caller reads again: the
change log is the only signal between those reads, never for longer.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from core.stores.items import SERVING_FIELDS
from core.stores.protocols import CHANGE_MARGIN_S, CatalogueState, ItemIndex

ITEM_CACHE_TTL_S = 1800.0  # entries are re-read on change; the change log keeps an hour
ITEM_CACHE_MAX = 200_000
RENEW_BATCH = 5_000  # entries whose marks are read in one call
# An entry renewed from the change log is read from the index again this long after its last
# read: a write the log missed (a clock skewed past CHANGE_MARGIN_S) is served at most this long.
ITEM_CACHE_REREAD_S = 4 * ITEM_CACHE_TTL_S
CACHED_FIELDS = ("content_vec", "title", *SERVING_FIELDS)
_F32 = npt.NDArray[np.float32]


class ItemMeta(NamedTuple):
    """What the read path keeps of an item in process: its content vector, primary category,
    title and serving metadata (status, maturity, regions, language, ...)."""

    vec: _F32
    category: str | None
    title: str
    fields: dict[str, Any]


def _shared(value: Any) -> Any:
    """A field value whose strings are shared between entries (categories, regions, status,
    languages, creators repeat across a catalogue: ~0.5 KB of an entry's ~3 KB)."""
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [sys.intern(v) for v in value]
    return value


class _Entry(NamedTuple):
    at: float  # current as of this time (read, or renewed from the change log)
    read_at: float  # last read from the index
    meta: ItemMeta


class ItemMetaCache:
    """Process-local (collection, item) -> ItemMeta.

    An entry is read again when the item change log says the item was written since the entry
    was loaded (`changed`, from `CatalogueState.marks`), and at the latest after `ttl_s` (the
    change log keeps an hour). Misses are read from the item index in one call.
    """

    def __init__(
        self,
        ttl_s: float = ITEM_CACHE_TTL_S,
        max_items: int = ITEM_CACHE_MAX,
        reread_after_s: float = ITEM_CACHE_REREAD_S,
    ):
        self.ttl_s = ttl_s
        self.max_items = max_items
        self.reread_after_s = reread_after_s
        self.warmed: str | None = None  # the collection a warm-up last read to the end
        self._data: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        """Forget every entry (what a restarted process starts from)."""
        with self._lock:
            self._data.clear()

    def retain(self, collection: str) -> int:
        """Forget the entries of every other collection (after a re-index swap: they are
        never read again, and a full cache would leave the new one no room); how many."""
        with self._lock:
            gone = [k for k in self._data if k[0] != collection]
            for k in gone:
                del self._data[k]
        return len(gone)

    def renew(
        self, catalogue: CatalogueState, collection: str, *, older_than_s: float
    ) -> list[str]:
        """Entries loaded more than `older_than_s` ago and still fresh, that the change log
        says were not written since they were loaded, are current now: their clock restarts,
        with no read of the index (a warm cache would otherwise expire all at once, `ttl_s`
        after the warm-up, and every request would read its candidates again). Entries
        written since or tombstoned are dropped (read on demand). Returns the unchanged ones
        last read from the index `reread_after_s` ago or more: the caller reads them again
        (`load`), in the background."""
        with self._lock:
            keys = list(self._data)  # a copy in C: the lock is held for one pass, not a scan
        reread: list[str] = []
        for start in range(0, len(keys), RENEW_BATCH):
            now = time.time()
            due = [
                (key[1], hit)
                for key in keys[start : start + RENEW_BATCH]
                if key[0] == collection
                and (hit := self._data.get(key)) is not None
                and older_than_s <= now - hit.at < self.ttl_s
            ]
            if not due:
                continue
            at = time.time()  # before the marks: a write after it is seen at the next read
            marks = catalogue.marks([i for i, _ in due])
            with self._lock:
                for i, seen in due:
                    key = (collection, i)
                    if self._data.get(key) is not seen:
                        continue  # read again meanwhile
                    changed = marks.changed_at.get(i)
                    if i in marks.tombstoned or (
                        changed is not None and changed >= seen.at - CHANGE_MARGIN_S
                    ):
                        del self._data[key]
                    elif at - seen.read_at >= self.reread_after_s:
                        reread.append(i)
                    else:  # keeps its place in the order
                        self._data[key] = seen._replace(at=at)
        return reread

    def current(
        self, items: ItemIndex, catalogue: CatalogueState, ids: Sequence[str]
    ) -> dict[str, ItemMeta]:
        """The items that exist and are not tombstoned, with their current metadata: one
        Redis round trip for the change log, a read of the index only for items not cached
        or written since."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        marks = catalogue.marks(ids)
        meta = self.get(items, ids, marks.changed_at)
        return {i: m for i, m in meta.items() if i not in marks.tombstoned}

    def get(
        self,
        items: ItemIndex,
        ids: Sequence[str],
        changed: Mapping[str, float] | None = None,
    ) -> dict[str, ItemMeta]:
        """Known items only (`changed`: item -> when it was last written, if known)."""
        now = time.time()
        coll = items.collection
        changed = changed or {}
        out: dict[str, ItemMeta] = {}
        missing = []
        data, ttl = self._data, self.ttl_s
        for i in dict.fromkeys(ids):  # `_fresh`, inlined: a request reads hundreds of ids
            hit = data.get((coll, i))
            if (
                hit is not None
                and now - hit.at < ttl
                and ((at := changed.get(i)) is None or at < hit.at - CHANGE_MARGIN_S)
            ):
                out[i] = hit.meta
            else:
                missing.append(i)
        if missing:
            self.load(items, missing, out)
        return out

    def load(
        self,
        items: ItemIndex,
        ids: Sequence[str],
        out: dict[str, ItemMeta] | None = None,
        *,
        background: bool = False,
    ) -> int:
        """Read these items into the cache (and `out`); how many exist (an entry of one
        that no longer does is dropped). `background`: outside the breaker and the serving
        timeout (`ItemIndex.read`)."""
        at = time.time()
        read = items.read if background else items.get
        rows = read(ids, CACHED_FIELDS)
        with self._lock:
            for i in ids:
                if i not in rows:
                    self._data.pop((items.collection, i), None)
        return self.fill(items.collection, rows.values(), out, at=at)

    def fill(
        self,
        collection: str,
        rows: Iterable[Mapping[str, Any]],
        out: dict[str, ItemMeta] | None = None,
        *,
        at: float,
        evict: bool = True,
    ) -> int:
        """Cache rows read with `CACHED_FIELDS` from `at` on (an item written since is read
        again); returns how many rows it took. A full cache drops its longest-loaded entries
        first (`evict`: a request's read; a catalogue larger than the cache keeps its most
        recently read items), or takes only what fits (a warm-up must not push out what
        requests read)."""
        rows = list(rows)
        with self._lock:
            new = sum((collection, str(r["item_id"])) not in self._data for r in rows)
            over = len(self._data) + new - self.max_items
            if over > 0 and not evict:
                rows = rows[: max(len(rows) - over, 0)]
            elif over > 0:
                # Dicts keep insertion order, and a read moves its entry last: the first
                # entries are the longest loaded. A percent more, so the next misses fit.
                for key in list(itertools.islice(self._data, over + self.max_items // 100)):
                    del self._data[key]
            for r in rows:
                fields = {f: _shared(r[f]) for f in SERVING_FIELDS if f in r}
                meta = ItemMeta(
                    np.asarray(r["content_vec"], dtype=np.float32),
                    fields.get("category"),
                    str(r.get("title") or ""),
                    fields,
                )
                key = (collection, str(r["item_id"]))
                self._data.pop(key, None)
                self._data[key] = _Entry(at, at, meta)
                if out is not None:
                    out[str(r["item_id"])] = meta
        return len(rows)
