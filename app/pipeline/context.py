"""Request context: who is asking and what we know about them, read in one Redis round trip."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import redis

from indexing.keys import Keys
from indexing.models import UserFields, age_max_maturity


@dataclass
class UserContext:
    user_id: str
    profile: UserFields | None
    content_vec: np.ndarray | None
    cf_vec: np.ndarray | None = None
    recent: list[str] = field(default_factory=list)  # most recent first
    version: int = 0

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
    pipe.hmget(keys.user(user_id), "profile", "cvec", "cfvec", "ver")
    pipe.zrevrange(keys.history(user_id), 0, max(recent_n - 1, 0))
    (profile_raw, cvec, cfvec, ver), recent = pipe.execute()
    profile = UserFields.model_validate(json.loads(profile_raw)) if profile_raw else None
    vec = np.frombuffer(cvec, dtype=np.float32) if cvec else None
    return UserContext(
        user_id=user_id,
        profile=profile,
        content_vec=vec,
        cf_vec=np.frombuffer(cfvec, dtype=np.float32) if cfvec else None,
        recent=[i.decode() for i in recent] if recent_n > 0 else [],
        version=int(ver or 0),
    )
