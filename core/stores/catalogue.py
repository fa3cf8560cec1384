"""Catalogue state in Redis: tombstones, the item change log and the popularity boards.

The writers are the indexing worker (Lua scripts) and the catalogue admin routes; this is the
read side every list is checked against, on a text (`decode_responses`) client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import redis

from core.keys import Keys
from core.redis_typed import text
from core.resilience import CircuitBreaker, guarded
from core.stores.protocols import POPULAR, ItemMarks


class RedisCatalogue:
    """`CatalogueState` on Redis (every failure leaves as `DependencyDown`)."""

    def __init__(self, r: redis.Redis, keys: Keys, breaker: CircuitBreaker | None = None):
        self.r = r
        self.keys = keys
        self._breaker = breaker or CircuitBreaker("redis", 3, 5.0)

    def _run(self, pipe: Any) -> list[Any]:
        return cast(list[Any], guarded(self._breaker, pipe.execute))

    def board_key(self, board: str) -> str:
        if board == POPULAR:
            return self.keys.popularity
        kind, _, scope = board.partition(":")
        if kind != "trending" or not scope:
            raise ValueError(f"unknown board {board!r}")
        return self.keys.trending(scope)

    def marks(self, item_ids: Sequence[str]) -> ItemMarks:
        ids = list(item_ids)
        if not ids:
            return ItemMarks()
        pipe = self.r.pipeline(transaction=False)
        pipe.zmscore(self.keys.tombstones, ids)
        pipe.zmscore(self.keys.item_changes, ids)
        tomb, stamps = self._run(pipe)
        return ItemMarks(
            frozenset(i for i, t in zip(ids, tomb, strict=True) if t is not None),
            # The change log is scored in milliseconds.
            {i: float(ms) / 1000 for i, ms in zip(ids, stamps, strict=True) if ms is not None},
        )

    def tombstoned(self, item_ids: Sequence[str]) -> set[str]:
        ids = list(item_ids)
        if not ids:
            return set()
        pipe = self.r.pipeline(transaction=False)
        pipe.zmscore(self.keys.tombstones, ids)
        (scores,) = self._run(pipe)
        return {i for i, s in zip(ids, scores, strict=True) if s is not None}

    def popularity(self, item_ids: Sequence[str]) -> list[float]:
        ids = list(item_ids)
        if not ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        pipe.zmscore(self.keys.popularity, ids)
        (scores,) = self._run(pipe)
        return [float(s) if s is not None else 0.0 for s in scores]

    def top(self, board: str, start: int, stop: int) -> list[tuple[str, float]]:
        pipe = self.r.pipeline(transaction=False)
        pipe.zrevrange(self.board_key(board), start, stop, withscores=True)
        (top,) = self._run(pipe)
        return [(text(i), float(s)) for i, s in top]
