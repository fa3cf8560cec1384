"""Time-decayed trending sets: global, per category and per region.

Forward decay: an interaction of weight w at time t adds w * 2^((t - epoch) / half_life) to
its item's score. Every score then decays by the same factor as time passes, so the order of a
set is its trending order without ever rewriting old entries; `decay()` turns a score into
today's weight. When the exponent grows large, `rebase()` moves the epoch forward and scales
every set down in one transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

from core.domain import Interaction
from core.keys import Keys
from core.redis_typed import members, scored, watch

CATEGORY_SEP = "\x1f"
REBASE_AT = 400.0  # half-lives since the epoch: 2^400 is far from float overflow
MAX_EXPONENT = 1000.0
KEEP_PER_SET = 5_000


@dataclass
class Trending:
    r: redis.Redis
    keys: Keys
    half_life_s: float = 24 * 3600.0
    _epoch: float | None = None

    def epoch(self) -> float:
        if self._epoch is None:
            self.refresh_epoch()
        assert self._epoch is not None
        return self._epoch

    def refresh_epoch(self) -> None:
        """Re-read the shared epoch (another process may have rebased it)."""
        self.r.set(self.keys.trending_epoch, repr(time.time()), nx=True)
        self._epoch = float(self.r.get(self.keys.trending_epoch) or time.time())

    def increment(self, weight: float, ts: float) -> float:
        """What one interaction adds to its item's trending scores (0 for negative ones)."""
        if weight <= 0:
            return 0.0
        # Clamped: never an overflow, even if no rebase ran for a very long time.
        exponent = min((ts - self.epoch()) / self.half_life_s, MAX_EXPONENT)
        return float(weight * 2.0**exponent)

    def decay(self, score: float, now: float | None = None) -> float:
        """A stored score as today's weight."""
        now = time.time() if now is None else now
        return float(score * 2.0 ** (-(now - self.epoch()) / self.half_life_s))

    def top(self, scope: str = "all", n: int = 100) -> list[tuple[str, float]]:
        now = time.time()
        top = self.r.zrevrange(self.keys.trending(scope), 0, n - 1, withscores=True)
        return [(i, self.decay(sc, now)) for i, sc in scored(top)]

    def maintain(self) -> None:
        """Trim every set to its top items; rebase the epoch when scores grow large."""
        scopes = members(self.r.smembers(self.keys.trending_scopes))
        pipe = self.r.pipeline(transaction=False)
        for sc in scopes:
            pipe.zremrangebyrank(self.keys.trending(sc), 0, -KEEP_PER_SET - 1)
        pipe.execute()
        if (time.time() - self.epoch()) / self.half_life_s > REBASE_AT:
            self.rebase(scopes)

    def rebase(self, scopes: Sequence[str]) -> None:
        """Move the epoch to now and scale every set down, once even if several processes try
        (the transaction only runs if nobody changed the epoch since it was read)."""
        key_epoch = self.keys.trending_epoch
        with self.r.pipeline(transaction=True) as pipe:
            try:
                watch(pipe, key_epoch)
                old = float(pipe.get(key_epoch) or time.time())
                new_epoch = time.time()
                factor = 2.0 ** (-(new_epoch - old) / self.half_life_s)
                pipe.multi()
                for sc in scopes:
                    key = self.keys.trending(sc)
                    pipe.zunionstore(key, {key: factor})
                pipe.set(key_epoch, repr(new_epoch))
                pipe.execute()
            except redis.WatchError:
                pass  # another process rebased first
        self.refresh_epoch()


def trending_scopes(
    r: redis.Redis, keys: Keys, events: Sequence[Interaction]
) -> Callable[[Interaction], list[str]]:
    """The trending sets each interaction counts in: all, its item's categories, user's region."""
    items = sorted({e.item_id for e in events})
    users = sorted({e.user_id for e in events})
    pipe = r.pipeline(transaction=False)
    pipe.hmget(keys.item_categories, items)
    for u in users:
        pipe.hget(keys.user(u), "profile")
    raw = pipe.execute()
    cats = {
        i: (c.decode().split(CATEGORY_SEP) if c else []) for i, c in zip(items, raw[0], strict=True)
    }
    regions: dict[str, str] = {}
    for u, prof in zip(users, raw[1:], strict=True):
        region = json.loads(prof).get("region") if prof else None
        if region:
            regions[u] = region
    scopes = {"all"}
    for cs in cats.values():
        scopes.update(f"cat:{c}" for c in cs if c)
    scopes.update(f"region:{g}" for g in regions.values())
    r.sadd(keys.trending_scopes, *scopes)

    def of(e: Interaction) -> list[str]:
        out = ["all", *(f"cat:{c}" for c in cats.get(e.item_id, []) if c)]
        if e.user_id in regions:
            out.append(f"region:{regions[e.user_id]}")
        return out

    return of
