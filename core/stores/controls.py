"""A user's own controls, set through the API by the app on the user's behalf (scope
`events`): what they are not interested in (items, categories, creators: kept, listed,
removable), whether their history is paused (events still count for popularity and trending,
not for their profile) and whether their lists may use personal data at all (`profiling`).

One hash per user (`keys.controls`, in the user's slot): the read path loads it with the rest
of the user's context in the same round trip, and the worker's interaction script reads
`paused` in the same atomic step that would change the profile.
"""

from __future__ import annotations

import time

import redis

from core.controls import PAUSED, PREFIX, PROFILING, Controls, Kind
from core.keys import Keys
from core.redis_typed import text

MAX_NOT_INTERESTED = 500  # entries per user, all kinds together


class ControlsStore:
    def __init__(self, r: redis.Redis, keys: Keys):
        self.r = r
        self.keys = keys

    def get(self, user_id: str) -> Controls:
        return Controls.parse(self.r.hgetall(self.keys.controls(user_id)))

    def set_flags(self, user_id: str, *, paused: bool | None, profiling: bool | None) -> Controls:
        key = self.keys.controls(user_id)
        pipe = self.r.pipeline(transaction=True)
        for name, value, default in ((PAUSED, paused, False), (PROFILING, profiling, True)):
            if value is None:
                continue
            if value == default:
                pipe.hdel(key, name)
            else:
                pipe.hset(key, name, "1" if value else "0")
        pipe.execute()
        return self.get(user_id)

    def add(self, user_id: str, kind: Kind, value: str) -> tuple[Controls, bool]:
        """Say the user is not interested in `value`; (controls, whether it is new).
        ValueError past MAX_NOT_INTERESTED."""
        key = self.keys.controls(user_id)
        name = f"{PREFIX}{kind}:{value}"
        if self.r.hexists(key, name):
            return self.get(user_id), False
        said = sum(1 for k in self.r.hkeys(key) if text(k).startswith(PREFIX))
        if said >= MAX_NOT_INTERESTED:
            raise ValueError(
                f"at most {MAX_NOT_INTERESTED} not-interested entries per user: remove some first"
            )
        self.r.hset(key, name, repr(time.time()))
        return self.get(user_id), True

    def remove(self, user_id: str, kind: Kind, value: str) -> bool:
        return bool(self.r.hdel(self.keys.controls(user_id), f"{PREFIX}{kind}:{value}"))
