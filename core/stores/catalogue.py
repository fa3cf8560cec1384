"""Catalogue state in Redis: tombstones, the item change log and the popularity boards.

The writers are the indexing worker (Lua scripts) and the catalogue admin routes; this is the
read side every list is checked against, on a text (`decode_responses`) client.

A serving process keeps both sorted sets in memory (`CatalogueFollower`): every writer puts
the ids it wrote on the catalogue feed (a stream) after the write, and each `marks` call reads
the feed past the last entry it saw, with the current scores of the ids named there, in one
atomic script. A request then sends three arguments instead of every candidate's id twice
(ZMSCORE of a few hundred ids on two keys was the request path's largest Redis cost), and
sees every write made before it, as before.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any, cast

import redis

from core.keys import Keys
from core.redis_typed import text
from core.resilience import CircuitBreaker, guarded
from core.scripts import FOLLOW_CATALOGUE
from core.stores.protocols import POPULAR, ItemMarks

CHANGE_LOG_KEEP_S = 3600.0  # the item change log's window (pruned by the job runner)
FEED_MAX = 10_000  # feed entries kept (about): a follower further behind reads all again
FOLLOW_COUNT = 256  # feed entries per read
# Marks (tombstones + change-log entries) a follower keeps in memory at most. Above it (1M
# items imported within the hour: reading them all blocked Redis 1.5 s, past the serving
# timeout, on every request) the follower reads each request's ids directly, and looks again
# every FOLLOW_RECHECK_S.
FOLLOW_MAX = 50_000
FOLLOW_RECHECK_S = 60.0


def announce(pipe: Any, keys: Keys, item_ids: Sequence[str]) -> None:
    """Queue, after a tombstone write on `pipe`, the feed entry that tells followers."""
    if item_ids:
        pipe.xadd(
            keys.catalogue_feed,
            {"ids": json.dumps(list(item_ids))},
            maxlen=FEED_MAX,
            approximate=True,
        )


class CatalogueFollower:
    """Tombstones and the change log (seconds) in process memory, brought up to date from
    the catalogue feed on every `sync` (one round trip; a few bytes when nothing changed). It
    reads everything again at start, and when it fell further behind than the feed keeps."""

    def __init__(self, r: redis.Redis, keys: Keys, breaker: CircuitBreaker):
        self.r, self.keys, self._breaker = r, keys, breaker
        self.tombstoned: set[str] = set()
        self.changed_at: dict[str, float] = {}
        self._last = ""  # the last feed entry applied ('' : read everything)
        self._lock = threading.Lock()
        self._pruned = time.monotonic()
        self.reloads = 0
        self._big_until = 0.0  # too many marks to keep: read directly until then
        self._synced_from = -1.0  # when the last sync that completed began (monotonic)

    @property
    def following(self) -> bool:
        """Whether the marks are held in memory (False: too many; read them directly)."""
        return bool(self._last)

    def sync(self, since: float | None = None) -> None:
        """Read the feed up to its end; with `since` (monotonic seconds), not when a sync that
        began at or after `since` has completed: its reads are as new as this one's would be.
        Requests in flight together then share one round trip, and none misses a change the
        catalogue had when it began."""
        if self._fresh(since):
            return
        with self._lock:
            if self._fresh(since):  # another thread's sync, begun while this one waited
                return
            if not self._last and time.monotonic() < self._big_until:
                return
            began = time.monotonic()
            more = True
            while more:
                more = self._step()
            self._synced_from = began
            if time.monotonic() - self._pruned > 60:  # the change log's own window
                self._prune(time.time() - CHANGE_LOG_KEEP_S)

    def _fresh(self, since: float | None) -> bool:
        return since is not None and bool(self._last) and self._synced_from >= since

    def _step(self) -> bool:
        k = self.keys
        reply = guarded(
            self._breaker,
            FOLLOW_CATALOGUE,
            self.r,
            keys={"feed": k.catalogue_feed, "tomb": k.tombstones, "changes": k.item_changes},
            args={"last": self._last, "count": FOLLOW_COUNT, "max_all": FOLLOW_MAX},
        )
        kind = text(reply[0])
        if kind == "none":
            return False
        if kind == "big":
            self.tombstoned, self.changed_at = set(), {}
            self._big_until = time.monotonic() + FOLLOW_RECHECK_S
            return False
        if kind == "gap":
            self._last = ""
            return True
        if kind == "all":
            self.reloads += 1
            tomb, changes = reply[2], reply[3]
            self.tombstoned = {text(m) for m in tomb[::2]}
            self.changed_at = {
                text(m): float(ms) / 1000 for m, ms in zip(changes[::2], changes[1::2], strict=True)
            }
            self._last = text(reply[1])
            return False
        _, last, more, ids, tomb_scores, change_scores = reply
        for item, gone, ms in zip(ids, tomb_scores, change_scores, strict=True):
            item = text(item)
            if gone is None:
                self.tombstoned.discard(item)
            else:
                self.tombstoned.add(item)
            if ms is None:
                self.changed_at.pop(item, None)
            else:
                self.changed_at[item] = float(ms) / 1000
        self._last = text(last)
        return bool(int(more))

    def _prune(self, before: float) -> None:
        self.changed_at = {i: at for i, at in self.changed_at.items() if at >= before}
        self._pruned = time.monotonic()

    def marks(
        self, item_ids: Sequence[str], *, current: bool = True, since: float | None = None
    ) -> ItemMarks | None:
        """The marks as of now (`current`: read the feed first, or as of `since`: see `sync`),
        or as last read; None while there are too many to follow (the caller reads them
        directly)."""
        if current or not self._last:
            self.sync(since)
        if not self._last:
            return None
        changed = self.changed_at
        return ItemMarks(  # set operations in C: a request asks for hundreds of ids
            frozenset(self.tombstoned.intersection(item_ids)),
            {i: changed[i] for i in changed.keys() & item_ids},
        )


class RedisCatalogue:
    """`CatalogueState` on Redis (every failure leaves as `DependencyDown`)."""

    def __init__(
        self,
        r: redis.Redis,
        keys: Keys,
        breaker: CircuitBreaker | None = None,
        *,
        follow: bool = False,
    ):
        """`follow`: keep the tombstones and the change log in memory (a long-lived serving
        process); else every `marks` call reads the ids' scores (ZMSCORE)."""
        self.r = r
        self.keys = keys
        self._breaker = breaker or CircuitBreaker("redis", 3, 5.0)
        self.follower = CatalogueFollower(r, keys, self._breaker) if follow else None

    def _run(self, pipe: Any) -> list[Any]:
        return cast(list[Any], guarded(self._breaker, pipe.execute))

    def board_key(self, board: str) -> str:
        if board == POPULAR:
            return self.keys.popularity
        kind, _, scope = board.partition(":")
        if kind != "trending" or not scope:
            raise ValueError(f"unknown board {board!r}")
        return self.keys.trending(scope)

    def marks(
        self, item_ids: Sequence[str], *, current: bool = True, since: float | None = None
    ) -> ItemMarks:
        ids = list(item_ids)
        if not ids:
            return ItemMarks()
        if self.follower is not None:
            followed = self.follower.marks(ids, current=current, since=since)
            if followed is not None:
                return followed
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
        if self.follower is not None and (followed := self.follower.marks(ids)) is not None:
            return set(followed.tombstoned)
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
