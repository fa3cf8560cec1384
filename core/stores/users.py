"""User state in Redis, as the read path sees it: one pipeline per request.

A user's hash holds the profile (JSON text) and vectors (raw float32 bytes), so this store
reads through a bytes client and decodes here, in one place.
"""

from __future__ import annotations

import json
from typing import Any, cast

import numpy as np
import redis

from core.context import UserContext
from core.controls import Controls
from core.domain import UserFields
from core.keys import Keys
from core.redis_typed import text
from core.resilience import CircuitBreaker, guarded
from core.stores.protocols import HistorySummary

MAX_NEGATIVES = 1000  # most recent dislikes and skips a context carries


class RedisUserState:
    """`UserState` on Redis (every failure leaves as `DependencyDown`)."""

    def __init__(self, r: redis.Redis, keys: Keys, breaker: CircuitBreaker | None = None):
        self.r = r
        self.keys = keys
        self._breaker = breaker or CircuitBreaker("redis", 3, 5.0)

    def _run(self, pipe: Any) -> list[Any]:
        return cast(list[Any], guarded(self._breaker, pipe.execute))

    def context(self, user_id: str, *, recent_n: int) -> UserContext:
        keys = self.keys
        pipe = self.r.pipeline(transaction=False)
        pipe.hmget(keys.user(user_id), "profile", "cvec", "cfvec", "ver", "pvec")
        pipe.zrevrange(keys.negatives(user_id), 0, MAX_NEGATIVES - 1)
        pipe.hgetall(keys.controls(user_id))
        if recent_n > 0:  # the head alone (a result-cache probe) skips the history
            pipe.zrevrange(keys.history(user_id), 0, recent_n - 1, withscores=True)
            pipe.zcard(keys.history(user_id))
        (profile_raw, cvec, cfvec, ver, pvec), negatives, controls, *rest = self._run(pipe)
        recent, length = rest if rest else ([], None)
        profile = UserFields.model_validate(json.loads(profile_raw)) if profile_raw else None
        return UserContext(
            user_id=user_id,
            profile=profile,
            content_vec=_vec(cvec),
            cf_vec=_vec(cfvec),
            recent=[text(i) for i, _ in recent],
            recent_ts=[float(t) for _, t in recent],
            version=int(ver or 0),
            negatives=[text(i) for i in negatives],
            pref_vec=_vec(pvec),
            controls=Controls.parse(controls or {}),
            history_len=None if length is None else int(length),
        )

    def history(self, user_id: str, *, recent_n: int, devices: bool = False) -> HistorySummary:
        pipe = self.r.pipeline(transaction=False)
        pipe.zcard(self.keys.history(user_id))
        pipe.zrevrange(self.keys.history(user_id), 0, max(recent_n - 1, 0), withscores=True)
        length, recent = self._run(pipe)
        items = [(text(i), float(t)) for i, t in (recent if recent_n > 0 else [])]
        on: dict[str, str] = {}
        if devices and items:  # a second round trip, only for a request that names a device
            pipe = self.r.pipeline(transaction=False)
            pipe.hmget(self.keys.devices(user_id), [i for i, _ in items])
            (got,) = self._run(pipe)
            on = {i: text(d) for (i, _), d in zip(items, got, strict=True) if d}
        return HistorySummary(int(length or 0), items, on)


def _vec(raw: bytes | None) -> np.ndarray | None:
    return np.frombuffer(raw, dtype=np.float32) if raw else None
