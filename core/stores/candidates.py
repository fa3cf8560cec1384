"""Candidate sets in Redis: one compact JSON string per owner, and the refresh queue (zset).

A set of 300 candidates takes about 6 KB; sets expire (`candidates.ttl_s`) so that only
active users and asked-for items keep one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import redis

from core import jsontext
from core.keys import Keys
from core.redis_typed import text
from core.resilience import CircuitBreaker, guarded
from core.scripts import FINISH_STALE, MARK_STALE, TAKE_STALE
from core.stores.protocols import BULK_MARK, CandidateSet

SCORE_DIGITS = 5


def encode_set(s: CandidateSet) -> str:
    sources = {
        name: [[i, round(float(score), SCORE_DIGITS)] for i, score in hits]
        for name, hits in s.sources.items()
    }
    return json.dumps({"t": s.tag, "at": round(s.built_at, 3), "s": sources}, separators=(",", ":"))


def decode_set(owner: str, raw: str | bytes) -> CandidateSet:
    d: dict[str, Any] = jsontext.loads(raw)
    # `encode_set` writes ids as strings and scores as floats: the pairs need no conversion,
    # only to be tuples (in C: a request reads a few hundred of them per set).
    sources = {name: list(map(tuple, hits)) for name, hits in d["s"].items()}
    return CandidateSet(owner, str(d["t"]), float(d["at"]), sources)


class RedisCandidates:
    """`CandidateStore` on Redis (every failure leaves as `DependencyDown`)."""

    def __init__(self, r: redis.Redis, keys: Keys, breaker: CircuitBreaker | None = None):
        self.r = r
        self.keys = keys
        self._breaker = breaker or CircuitBreaker("redis", 3, 5.0)

    def get(self, owners: Sequence[str]) -> dict[str, CandidateSet]:
        owners = list(dict.fromkeys(owners))
        if not owners:
            return {}
        pipe = self.r.pipeline(transaction=False)  # not MGET: the sets live in many slots
        for o in owners:
            pipe.get(self.keys.candidates(o))
        raws = guarded(self._breaker, pipe.execute)
        return {o: decode_set(o, raw) for o, raw in zip(owners, raws, strict=True) if raw}

    def put(self, sets: Sequence[CandidateSet], ttl_s: float) -> None:
        if not sets:
            return
        pipe = self.r.pipeline(transaction=False)
        for s in sets:
            pipe.set(self.keys.candidates(s.owner), encode_set(s), px=max(int(ttl_s * 1000), 1))
        guarded(self._breaker, pipe.execute)

    def has(self, owners: Sequence[str]) -> set[str]:
        owners = list(dict.fromkeys(owners))
        if not owners:
            return set()
        pipe = self.r.pipeline(transaction=False)
        for o in owners:
            pipe.exists(self.keys.candidates(o))
        found = guarded(self._breaker, pipe.execute)
        return {o for o, n in zip(owners, found, strict=True) if n}

    def mark_stale(self, owners: Sequence[str], at: float) -> None:
        self.mark_each(dict.fromkeys(owners, at))

    def mark_each(self, marks: Mapping[str, float]) -> None:
        if not marks:
            return
        args = [v for owner, at in marks.items() for v in (owner, repr(float(at)))]
        guarded(self._breaker, MARK_STALE, self.r, keys=self._queue, args={"owner_marks": args})

    def stale(self, n: int, now: float | None = None) -> list[tuple[str, float]]:
        args = {"n": n, "now": repr(time.time() if now is None else now), "bulk_from": BULK_MARK}
        reply = guarded(
            self._breaker,
            TAKE_STALE,
            self.r,
            keys={"stale": self.keys.candidates_stale, "taken": self.keys.candidates_taken},
            args=args,
        )
        flat = list(reply)
        return [(text(flat[k]), float(flat[k + 1])) for k in range(0, len(flat), 2)]

    def finish(
        self,
        taken: Sequence[tuple[str, float]],
        interval_s: float = 0.0,
        now: float | None = None,
    ) -> int:
        if not taken:
            return 0
        # repr() round-trips a double exactly; the script compares the numbers.
        marks = [v for owner, at in taken for v in (owner, repr(float(at)))]
        args = {
            "now": repr(time.time() if now is None else now),
            "interval": repr(float(interval_s)),
            "owner_marks": marks,
        }
        n = guarded(self._breaker, FINISH_STALE, self.r, keys=self._queue, args=args)
        return int(n)

    def queued(self) -> int:
        return int(guarded(self._breaker, self.r.zcard, self.keys.candidates_stale))

    @property
    def _queue(self) -> dict[str, str]:
        return {
            "stale": self.keys.candidates_stale,
            "taken": self.keys.candidates_taken,
            "next": self.keys.candidates_next,
        }

    def held(self) -> Iterator[tuple[str, float]]:
        """Every owner holding a set, with the seconds its set has left (a SCAN: for bulk
        work in the background, never on the request path)."""
        for kind in ("u:", "i:"):
            match = self.keys.candidates(kind + "*")
            keys = [text(k) for k in self.r.scan_iter(match=match, count=1000)]
            for k in range(0, len(keys), 1000):
                chunk = keys[k : k + 1000]
                pipe = self.r.pipeline(transaction=False)
                for key in chunk:
                    pipe.pttl(key)
                for key, ms in zip(chunk, pipe.execute(), strict=True):
                    if int(ms) > 0:
                        yield self.keys.candidate_owner(key), int(ms) / 1000

    def built_for(self) -> str | None:
        raw = guarded(self._breaker, self.r.get, self.keys.candidates_built)
        return text(raw) if raw is not None else None

    def set_built_for(self, tag: str) -> None:
        guarded(self._breaker, self.r.set, self.keys.candidates_built, tag)
