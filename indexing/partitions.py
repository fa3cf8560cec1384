"""Workers share the event partitions: each partition is consumed by one worker at a time.

Every worker heartbeats into a set of live workers and holds a lease per partition it
consumes (a key that expires unless renewed). On each `balance` a worker renews its leases,
gives back those above its fair share (ceil(partitions / live workers)) and takes free ones
up to it; a partition whose worker died becomes free when the lease expires, so it moves to
another worker within `ttl_ms` (the claim timeout), and the new holder claims the entries the
dead one left pending. A worker that stalls past its lease loses the partition at its next
balance; until then both may apply the same entries, which every apply tolerates (exactly-once
markers, item versions, profile versions).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from core.keys import Keys, crc16
from core.scripts import RELEASE_LEASE, RENEW_LEASE

log = logging.getLogger(__name__)


def live_workers(r: redis.Redis, keys: Keys, now_ms: int | None = None) -> dict[str, int]:
    """Worker name -> heartbeat expiry (ms) of every worker alive now."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    rows: list[tuple[Any, float]] = r.zrangebyscore(  # type: ignore[assignment]
        keys.live_workers, now_ms, "+inf", withscores=True
    )
    return {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in rows}


def holders(r: redis.Redis, keys: Keys) -> dict[int, str | None]:
    """Partition -> the worker holding it (None: free)."""
    got = [r.get(keys.partition_lease(p)) for p in range(keys.partitions)]
    return {p: (v.decode() if isinstance(v, bytes) else v) for p, v in enumerate(got)}


@dataclass
class Leases:
    r: redis.Redis
    keys: Keys
    worker: str
    ttl_ms: int
    held: set[int] = field(default_factory=set)

    def fair_share(self, workers: int) -> int:
        return math.ceil(self.keys.partitions / max(1, workers))

    def heartbeat(self) -> int:
        """Announce this worker; the number of live workers (itself included)."""
        now = int(time.time() * 1000)
        pipe = self.r.pipeline(transaction=False)
        pipe.zadd(self.keys.live_workers, {self.worker: now + self.ttl_ms})
        pipe.zremrangebyscore(self.keys.live_workers, "-inf", now)
        pipe.zcard(self.keys.live_workers)
        return int(pipe.execute()[-1])

    def balance(self) -> tuple[set[int], set[int]]:
        """Renew, give back above the fair share, take free partitions up to it: (gained,
        lost). A lost partition is one another worker took after this lease lapsed, or one
        given back (the caller stops reading it and has acknowledged what it applied)."""
        fair = self.fair_share(self.heartbeat())
        lost = {p for p in self.held if not self._renew(p)}
        self.held -= lost
        for p in sorted(self.held, reverse=True)[: max(0, len(self.held) - fair)]:
            RELEASE_LEASE(
                self.r, keys={"lease": self.keys.partition_lease(p)}, args={"holder": self.worker}
            )
            self.held.discard(p)
            lost.add(p)
        gained: set[int] = set()
        n = self.keys.partitions
        start = crc16(self.worker) % n  # workers start looking at different partitions
        for p in ((start + i) % n for i in range(n)):
            if len(self.held) >= fair:
                break
            # Free, or still held under this worker's name (it restarted): take it.
            if p not in self.held and self._renew(p):
                self.held.add(p)
                gained.add(p)
        if gained or lost:
            log.info(
                "partitions: took %s, gave up %s, hold %s",
                sorted(gained),
                sorted(lost),
                sorted(self.held),
            )
        return gained, lost

    def _renew(self, p: int) -> bool:
        return bool(
            RENEW_LEASE(
                self.r,
                keys={"lease": self.keys.partition_lease(p)},
                args={"holder": self.worker, "ttl_ms": self.ttl_ms},
            )
        )

    def _release(self, p: int) -> None:
        lease = self.keys.partition_lease(p)
        RELEASE_LEASE(self.r, keys={"lease": lease}, args={"holder": self.worker})
        self.held.discard(p)

    def leave(self) -> None:
        """Give every partition back and stop counting as live (a clean stop)."""
        for p in list(self.held):
            self._release(p)
        self.r.zrem(self.keys.live_workers, self.worker)
