"""Request context: who is asking and what we know about them, read in one Redis round trip."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import redis

from core.domain import UserFields, age_max_maturity
from core.keys import Keys


@dataclass
class UserContext:
    user_id: str
    profile: UserFields | None
    content_vec: np.ndarray | None
    cf_vec: np.ndarray | None = None
    recent: list[str] = field(default_factory=list)  # most recent first
    version: int = 0
    recent_ts: list[float] = field(default_factory=list)  # times of `recent`
    negatives: list[str] = field(default_factory=list)  # disliked or skipped, most recent first
    pref_vec: np.ndarray | None = None  # from onboarding preferences.categories

    def seen(self, window_s: float | None, now: float) -> list[str]:
        """Items interacted with (within the window, if one is set), most recent first."""
        if window_s is None:
            return list(self.recent)
        cutoff = now - window_s
        return [i for i, t in zip(self.recent, self.recent_ts, strict=True) if t >= cutoff]

    @property
    def language(self) -> str | None:
        """The user's language; None when unknown ('und' included): no language filter."""
        lang = self.profile.language if self.profile else None
        return None if lang in (None, "und") else lang

    @property
    def known(self) -> bool:
        return self.profile is not None or bool(self.recent)

    def max_maturity(self, unknown_age: int) -> int:
        return age_max_maturity(self.profile.birth_year if self.profile else None, unknown_age)

    @property
    def region(self) -> str | None:
        return self.profile.region if self.profile else None


def load_user_context(r: redis.Redis, keys: Keys, user_id: str, *, recent_n: int) -> UserContext:
    """Profile, content vector, cache version and the most recent items of one user."""
    pipe = r.pipeline(transaction=False)
    pipe.hmget(keys.user(user_id), "profile", "cvec", "cfvec", "ver", "pvec")
    pipe.zrevrange(keys.history(user_id), 0, max(recent_n - 1, 0), withscores=True)
    pipe.zrevrange(keys.negatives(user_id), 0, MAX_NEGATIVES - 1)
    (profile_raw, cvec, cfvec, ver, pvec), recent, negatives = pipe.execute()
    profile = UserFields.model_validate(json.loads(profile_raw)) if profile_raw else None
    recent = recent if recent_n > 0 else []
    return UserContext(
        user_id=user_id,
        profile=profile,
        content_vec=_vec(cvec),
        cf_vec=_vec(cfvec),
        recent=[i.decode() for i, _ in recent],
        recent_ts=[float(t) for _, t in recent],
        version=int(ver or 0),
        negatives=[i.decode() for i in negatives],
        pref_vec=_vec(pvec),
    )


MAX_NEGATIVES = 1000


def _vec(raw: bytes | None) -> np.ndarray | None:
    return np.frombuffer(raw, dtype=np.float32) if raw else None
