"""Finished lists in Redis: the result cache and the last good lists (JSON text, with a TTL).

A bounded in-process copy sits in front (`serving.local_cache_entries`): a repeated request
is answered without the Redis round trip. Keys are content-addressed (the user's version,
the configuration and the rules are part of them), so a local copy is exactly as valid as
the Redis one until its TTL, which it keeps.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import redis

from core import jsontext
from core.redis_typed import text
from core.resilience import CircuitBreaker, guarded


class RedisResultCache:
    """`ResultCache` on Redis, on a text client (every failure leaves as `DependencyDown`)."""

    def __init__(
        self, r: redis.Redis, breaker: CircuitBreaker | None = None, *, local_entries: int = 0
    ):
        self.r = r
        self._breaker = breaker or CircuitBreaker("redis", 3, 5.0)
        self._local = LocalCopies(local_entries)

    def get(self, key: str) -> Any | None:
        raw = self._local.get(key)
        if raw is None and self._local.size:  # another process's entry: keep it with its TTL
            pipe = self.r.pipeline(transaction=False)
            pipe.get(key)
            pipe.pttl(key)
            found, ttl_ms = guarded(self._breaker, pipe.execute)
            if found:
                raw = text(found)
                self._local.put(key, raw, int(ttl_ms) / 1000)
        elif raw is None:
            found = guarded(self._breaker, self.r.get, key)
            raw = text(found) if found else None
        return jsontext.loads(raw) if raw else None

    def put(self, entries: Mapping[str, tuple[Any, float]]) -> None:
        pipe = self.r.pipeline(transaction=False)
        texts = {key: (json.dumps(value), ttl_s) for key, (value, ttl_s) in entries.items()}
        for key, (body, ttl_s) in texts.items():
            pipe.set(key, body, px=max(int(ttl_s * 1000), 1))
        if entries:
            guarded(self._breaker, pipe.execute)
        for key, (body, ttl_s) in texts.items():  # only once Redis has them
            self._local.put(key, body, ttl_s)


class LocalCopies:
    """At most `size` texts by key, each until its own expiry, least recently used out first."""

    def __init__(self, size: int):
        self.size = size
        self._data: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        if not self.size:
            return None
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                return None
            if hit[1] <= time.monotonic():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return hit[0]

    def put(self, key: str, text: str, ttl_s: float) -> None:
        if not self.size or ttl_s <= 0:
            return
        with self._lock:
            self._data[key] = (text, time.monotonic() + ttl_s)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
