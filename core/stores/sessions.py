"""Guests' sessions: the index of their last activity (what the expiry sweep reads) and the
record of each merge into a user (what makes a merge happen once).

A session's own state (history, affinities, journal, candidate set) is kept like a user's,
under the owner id `~s:<session id>` (core/domain.py), in that owner's slot. The index and
the merge records live in the `sessions` slot.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from core.keys import Keys
from core.redis_typed import scored, text

# Remove a session from the index only if it has had no event since `before` (a new event
# raised its score: the session lives on). KEYS: index. ARGV: session before.
_FORGET = """
local seen = redis.call('ZSCORE', KEYS[1], ARGV[1])
if seen and tonumber(seen) <= tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""


@dataclass
class Merge:
    """A session's merge into `user_id`; `applied` once the worker has folded it in."""

    user_id: str
    at: float
    event_ids: list[str] = field(default_factory=list)
    applied: bool = False
    copied: int = 0

    def as_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def parse(cls, raw: Any) -> Merge:
        return cls(**json.loads(text(raw)))


class SessionStore:
    def __init__(self, r: redis.Redis, keys: Keys, ttl_s: int):
        self.r = r
        self.keys = keys
        self.ttl_s = ttl_s

    def touch(self, session_ids: set[str], now: float | None = None) -> None:
        """Record activity (before the session's events are queued, so a sweep that read the
        old time cannot expire a session whose new event is on its way)."""
        if session_ids:
            at = time.time() if now is None else now
            self.r.zadd(self.keys.sessions, dict.fromkeys(session_ids, at))

    def last_seen(self, session_id: str) -> float | None:
        got = self.r.zscore(self.keys.sessions, session_id)
        return None if got is None else float(got)

    def idle(self, before: float, limit: int) -> list[tuple[str, float]]:
        """Sessions with no event since `before`, oldest first."""
        return scored(
            self.r.zrangebyscore(
                self.keys.sessions, "-inf", before, start=0, num=limit, withscores=True
            )
        )

    def unindex(self, session_id: str, before: float) -> bool:
        """Drop the session from the index unless it had an event after `before`."""
        return bool(self.r.eval(_FORGET, 1, self.keys.sessions, session_id, repr(before)))

    def claim_merge(self, session_id: str, user_id: str) -> tuple[Merge, bool]:
        """The merge of `session_id`: this one into `user_id` (True: new), or the one
        recorded before (possibly into another user)."""
        key = self.keys.session_merge(session_id)
        mine = Merge(user_id=user_id, at=time.time())
        if self.r.set(key, mine.as_json(), nx=True, ex=self.ttl_s):
            return mine, True
        raw = self.r.get(key)
        if raw is None:  # expired in between: claim again
            return self.claim_merge(session_id, user_id)
        return Merge.parse(raw), False

    def merge(self, session_id: str) -> Merge | None:
        raw = self.r.get(self.keys.session_merge(session_id))
        return None if raw is None else Merge.parse(raw)

    def update_merge(self, session_id: str, merge: Merge) -> None:
        """Rewrite the record, keeping its expiry (gone meanwhile: written again, full ttl)."""
        key = self.keys.session_merge(session_id)
        if not self.r.set(key, merge.as_json(), xx=True, keepttl=True):
            self.r.set(key, merge.as_json(), ex=self.ttl_s)

    def drop_merge(self, session_id: str) -> None:
        self.r.delete(self.keys.session_merge(session_id))
