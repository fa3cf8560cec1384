"""The ranker canary: a new version serving a share of users until it is promoted or rolled
back. One canary at a time, kept in Redis (`keys.canary`, in the models' slot) with a log of
decisions (`keys.canary_log`); promotion makes the version current in the same transaction
that ends the canary, so it happens once whichever API process decides.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis
from redis.typing import EncodableT, FieldT

from core.keys import Keys
from core.redis_typed import text, watch

RUNNING = "running"
LOG_KEEP = 100


@dataclass(frozen=True)
class Canary:
    version: str
    share: float
    margin: float
    baseline: str | None  # the version current when it started
    started_at: float
    state: str = RUNNING  # running, promoted, rolled_back
    decided_at: float | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CanaryStore:
    def __init__(self, r: redis.Redis, keys: Keys):
        self.r = r
        self.keys = keys

    def get(self) -> Canary | None:
        """The latest canary (running or decided), or None."""
        raw = self.r.hgetall(self.keys.canary)
        if not raw:
            return None
        f = {text(k): text(v) for k, v in raw.items()}
        return Canary(
            version=f["version"],
            share=float(f["share"]),
            margin=float(f["margin"]),
            baseline=f.get("baseline") or None,
            started_at=float(f["started_at"]),
            state=f.get("state", RUNNING),
            decided_at=float(f["decided_at"]) if f.get("decided_at") else None,
            reason=f.get("reason", ""),
        )

    def running(self) -> Canary | None:
        c = self.get()
        return c if c is not None and c.state == RUNNING else None

    def start(self, version: str, share: float, margin: float, baseline: str | None) -> Canary:
        """Start a canary; ValueError if one is running already."""
        c = Canary(version, share, margin, baseline, time.time())
        with self.r.pipeline(transaction=True) as pipe:
            watch(pipe, self.keys.canary)
            if pipe.hget(self.keys.canary, "state") == RUNNING.encode():
                raise ValueError("a canary is running already: wait for its decision or stop it")
            pipe.multi()
            pipe.delete(self.keys.canary)
            pipe.hset(self.keys.canary, mapping=_fields(c))
            pipe.lpush(self.keys.canary_log, json.dumps({**c.as_dict(), "event": "started"}))
            pipe.ltrim(self.keys.canary_log, 0, LOG_KEEP - 1)
            try:
                pipe.execute()
            except redis.WatchError as e:
                raise ValueError("another canary started meanwhile") from e
        return c

    def decide(
        self, version: str, state: str, reason: str, publish: dict[str, Any] | None = None
    ) -> bool:
        """End the running canary of `version` as `state` (with `publish`: its metadata, made
        current in the same transaction). False if it is no longer running (decided
        elsewhere)."""
        with self.r.pipeline(transaction=True) as pipe:
            watch(pipe, self.keys.canary)
            running = pipe.hmget(self.keys.canary, "state", "version")
            if running != [RUNNING.encode(), version.encode()]:
                pipe.reset()
                return False
            now = time.time()
            pipe.multi()
            ended: dict[FieldT, EncodableT] = {
                "state": state,
                "decided_at": repr(now),
                "reason": reason,
            }
            pipe.hset(self.keys.canary, mapping=ended)
            if publish is not None:
                pipe.set(self.keys.model("ranker"), version)
                pipe.hset(self.keys.model_versions("ranker"), version, json.dumps(publish))
            entry = {"event": state, "version": version, "reason": reason, "at": now}
            pipe.lpush(self.keys.canary_log, json.dumps(entry))
            pipe.ltrim(self.keys.canary_log, 0, LOG_KEEP - 1)
            try:
                pipe.execute()
            except redis.WatchError:
                return False
        return True

    def log(self, limit: int = 20) -> list[dict[str, Any]]:
        """The canary's events (started, promoted, rolled_back), newest first."""
        return [json.loads(x) for x in self.r.lrange(self.keys.canary_log, 0, limit - 1)]


def _fields(c: Canary) -> dict[FieldT, EncodableT]:
    return {
        "version": c.version,
        "share": repr(c.share),
        "margin": repr(c.margin),
        "baseline": c.baseline or "",
        "started_at": repr(c.started_at),
        "state": c.state,
    }
