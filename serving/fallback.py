"""What serving falls back on when a dependency is slow or down.

* `PopularSnapshot`: an in-process copy of the most popular items *with their serving
  metadata* (maturity, regions, status, ...) and their tombstone state, refreshed every few
  seconds while Redis and Milvus answer. It needs neither to serve, and its items still go
  through the full safety policy.
* The last good list per request shape (`stale` entries in Redis, kept longer than the result
  cache): when Milvus fails, a user gets their own recent list before generic popularity. It
  is reused only if it was filtered at least as strictly as the user needs now.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.stores.item_cache import ItemMetaCache
from core.stores.protocols import POPULAR, CatalogueState, ItemIndex
from serving.retrieval import Candidate


class SnapshotSource(Protocol):
    """What the snapshot reads (the serving state has it; the state holds the snapshot)."""

    @property
    def items(self) -> ItemIndex: ...

    @property
    def catalogue(self) -> CatalogueState: ...

    @property
    def item_cache(self) -> ItemMetaCache: ...


log = logging.getLogger(__name__)

SOURCE = "popular_snapshot"
STALE_SOURCE = "last_good_list"


@dataclass(frozen=True)
class Snapshot:
    items: tuple[tuple[str, dict[str, Any], float], ...] = ()
    taken_at: float = 0.0


@dataclass
class PopularSnapshot:
    size: int = 1000
    _snap: Snapshot = field(default_factory=Snapshot)

    @property
    def taken_at(self) -> float:
        return self._snap.taken_at

    def __len__(self) -> int:
        return len(self._snap.items)

    def refresh(self, state: SnapshotSource) -> int:
        """Replace the snapshot with the current top items (keeps the old one on failure)."""
        ranked = state.catalogue.top(POPULAR, 0, self.size - 1)
        if not ranked:
            self._snap = Snapshot((), time.time())
            return 0
        # Through the process item cache: once it is warm, no Milvus read (the change log
        # says which entries to read again).
        ids = [i for i, _ in ranked]
        marks = state.catalogue.marks(ids)
        cached = state.item_cache.get(state.items, ids, marks.changed_at)
        meta = {i: dict(m.fields) for i, m in cached.items()}
        best = ranked[0][1] or 1.0
        items = tuple(
            (i, meta[i], s / best)
            for i, s in ranked
            if i in meta and i not in marks.tombstoned and meta[i].get("status") == "active"
        )
        self._snap = Snapshot(items, time.time())
        return len(items)

    def ids(self) -> list[str]:
        return [i for i, _, _ in self._snap.items]

    def entries(
        self, *, category: str | None, language: str | None
    ) -> Iterator[tuple[str, Mapping[str, Any], float]]:
        """(item, serving metadata, score), most popular first, lazily: a caller that needs
        a few dozen of a thousand stops early (the metadata is shared: do not change it)."""
        for item_id, fields, score in self._snap.items:
            if category and fields.get("category") != category:
                continue
            if language and fields.get("language") != language:
                continue
            yield item_id, fields, score

    def candidates(self, *, category: str | None, language: str | None) -> list[Candidate]:
        return [
            Candidate(item_id, dict(fields), [SOURCE], {SOURCE: score}, ["popular right now"])
            for item_id, fields, score in self.entries(category=category, language=language)
        ]

    def run(self, state: SnapshotSource, stop: threading.Event, every_s: float) -> None:
        """Refresh until `stop`; failures keep the last good snapshot. Each round also pings
        Milvus: with the item cache warm, a refresh and most requests make no Milvus call,
        and a restarted Milvus, whose collections come back released, would go unnoticed
        until a miss failed on it; the ping loads them again (`ItemIndex.ping`)."""
        milvus_down = False
        while True:
            try:
                n = self.refresh(state)
                log.debug("popular snapshot refreshed: %d items", n)
            except Exception as e:
                log.warning("popular snapshot not refreshed (%s: %s)", type(e).__name__, e)
            milvus_down = _ping(state, milvus_down)
            if stop.wait(every_s):
                return


def _ping(state: SnapshotSource, was_down: bool) -> bool:
    """Whether Milvus is down now; one log line when that changes."""
    try:
        state.items.ping()
    except Exception as e:
        if not was_down:
            log.warning("milvus not answering (%s: %s)", type(e).__name__, e)
        return True
    if was_down:
        log.info("milvus answers again")
    return False
