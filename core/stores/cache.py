"""Finished lists in Redis: the result cache and the last good lists (JSON text, with a TTL)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis

from core.resilience import CircuitBreaker, guarded


class RedisResultCache:
    """`ResultCache` on Redis, on a text client (every failure leaves as `DependencyDown`)."""

    def __init__(self, r: redis.Redis, breaker: CircuitBreaker | None = None):
        self.r = r
        self._breaker = breaker or CircuitBreaker("redis", 3, 5.0)

    def get(self, key: str) -> Any | None:
        raw = guarded(self._breaker, self.r.get, key)
        return json.loads(raw) if raw else None

    def put(self, entries: Mapping[str, tuple[Any, float]]) -> None:
        pipe = self.r.pipeline(transaction=False)
        for key, (value, ttl_s) in entries.items():
            pipe.set(key, json.dumps(value), px=max(int(ttl_s * 1000), 1))
        if entries:
            guarded(self._breaker, pipe.execute)
