"""Candidate sets in Redis: one compact JSON string per owner, and the refresh queue (zset).

A set of 300 candidates takes about 6 KB; sets expire (`candidates.ttl_s`) so that only
active users and asked-for items keep one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis

from core.keys import Keys
from core.redis_typed import scored
from core.resilience import CircuitBreaker, guarded
from core.scripts import FINISH_STALE
from core.stores.protocols import CandidateSet

SCORE_DIGITS = 5


def encode_set(s: CandidateSet) -> str:
    sources = {
        name: [[i, round(float(score), SCORE_DIGITS)] for i, score in hits]
        for name, hits in s.sources.items()
    }
    return json.dumps({"t": s.tag, "at": round(s.built_at, 3), "s": sources}, separators=(",", ":"))


def decode_set(owner: str, raw: str | bytes) -> CandidateSet:
    d: dict[str, Any] = json.loads(raw)
    sources = {name: [(str(i), float(score)) for i, score in hits] for name, hits in d["s"].items()}
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
        raws = guarded(self._breaker, self.r.mget, [self.keys.candidates(o) for o in owners])
        return {o: decode_set(o, raw) for o, raw in zip(owners, raws, strict=True) if raw}

    def put(self, sets: Sequence[CandidateSet], ttl_s: float) -> None:
        if not sets:
            return
        pipe = self.r.pipeline(transaction=False)
        for s in sets:
            pipe.set(self.keys.candidates(s.owner), encode_set(s), px=max(int(ttl_s * 1000), 1))
        guarded(self._breaker, pipe.execute)

    def mark_stale(self, owners: Sequence[str], at: float) -> None:
        if owners:
            marks = dict.fromkeys(owners, at)
            guarded(self._breaker, self.r.zadd, self.keys.candidates_stale, marks, nx=True)

    def stale(self, n: int) -> list[tuple[str, float]]:
        reply = guarded(
            self._breaker, self.r.zrange, self.keys.candidates_stale, 0, n - 1, withscores=True
        )
        return scored(reply)

    def finish(self, taken: Sequence[tuple[str, float]]) -> int:
        if not taken:
            return 0
        # repr() round-trips a double exactly; the script compares the numbers.
        marks = [v for owner, at in taken for v in (owner, repr(float(at)))]
        n = guarded(
            self._breaker,
            FINISH_STALE,
            self.r,
            keys={"stale": self.keys.candidates_stale},
            args={"owner_marks": marks},
        )
        return int(n)

    def queued(self) -> int:
        return int(guarded(self._breaker, self.r.zcard, self.keys.candidates_stale))

