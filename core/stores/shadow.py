"""Registered off-policy candidates: configurations of a surface whose list serving computes
beside a share of the lists it serves ("shadow" lists, never shown), so that off-policy
evaluation later compares the logged clicks with what the candidate would have shown *on the
same request and the same user state*. Kept in Redis (`keys.shadow_candidates`)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from core.keys import Keys
from core.redis_typed import text

MAX_CANDIDATES = 8


@dataclass(frozen=True)
class ShadowCandidate:
    name: str
    surface: str
    share: float  # of the surface's lists computed afresh
    overrides: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, name: str, raw: str | bytes) -> ShadowCandidate:
        d = json.loads(raw)
        return cls(
            name=name,
            surface=str(d["surface"]),
            share=float(d["share"]),
            overrides=dict(d.get("overrides") or {}),
            created_at=float(d.get("created_at") or 0.0),
        )


class ShadowStore:
    def __init__(self, r: redis.Redis, keys: Keys):
        self.r = r
        self.keys = keys

    def all(self) -> list[ShadowCandidate]:
        raw = self.r.hgetall(self.keys.shadow_candidates)
        out = [ShadowCandidate.from_json(text(k), v) for k, v in raw.items()]
        return sorted(out, key=lambda c: c.name)

    def get(self, name: str) -> ShadowCandidate | None:
        raw = self.r.hget(self.keys.shadow_candidates, name)
        return ShadowCandidate.from_json(name, raw) if raw is not None else None

    def put(self, cand: ShadowCandidate) -> tuple[ShadowCandidate, bool]:
        """Register or replace; (the candidate, whether it is new). ValueError past
        MAX_CANDIDATES."""
        old = self.get(cand.name)
        if old is None and self.r.hlen(self.keys.shadow_candidates) >= MAX_CANDIDATES:
            raise ValueError(
                f"at most {MAX_CANDIDATES} candidates are shadowed at once: delete one first"
            )
        created = old.created_at if old is not None else time.time()
        body = {**cand.as_dict(), "created_at": created}
        body.pop("name")
        self.r.hset(self.keys.shadow_candidates, cand.name, json.dumps(body))
        return ShadowCandidate(cand.name, cand.surface, cand.share, cand.overrides, created), (
            old is None
        )

    def delete(self, name: str) -> bool:
        return bool(self.r.hdel(self.keys.shadow_candidates, name))
