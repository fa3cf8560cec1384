"""Replaying a request through the pipeline: what a configuration serves a user now, traced
and never cached or logged (why-not, off-policy evaluation).

`as_of` rolls the user's history back to a moment (a logged list's time): items the user
interacted with afterwards are neither "seen" nor part of the recent history. Vectors, the
catalogue and the models are today's: a replay of an old list is as faithful as they have
stayed (the off-policy answer reports how many logged lists a replay reproduced).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from core.context import UserContext
from core.stores.registry import versions_pinned
from core.surfaces import SurfaceConfig
from serving.request import RecRequest
from serving.retrieval import Candidate
from serving.stages import Retrieved, policy_stage, rank_stage, retrieve
from serving.state import ServingState


@dataclass
class Replayed:
    got: Retrieved
    ranked: list[Candidate]
    final: list[Candidate]
    trace: dict[str, Any] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [c.item_id for c in self.final]


def context(state: ServingState, user_id: str) -> UserContext:
    return state.users.context(user_id, recent_n=state.settings.serving.history_exclude)


def as_of(ctx: UserContext, t: float) -> UserContext:
    """`ctx` asked at time `t`: without the history after it."""
    keep = [(i, ts) for i, ts in zip(ctx.recent, ctx.recent_ts, strict=True) if ts <= t]
    recent, recent_ts = [i for i, _ in keep], [ts for _, ts in keep]
    return dataclasses.replace(ctx, recent=recent, recent_ts=recent_ts, asked_at=t)


def replay(
    state: ServingState,
    req: RecRequest,
    cfg: SurfaceConfig,
    ctx: UserContext,
    *,
    rec_id: str | None = None,
) -> Replayed:
    """The list `cfg` gives `req` for a user in state `ctx` (exploration drawn as for
    `rec_id`, a random id if None); every stage kept."""
    seed_id = rec_id or uuid.uuid4().hex
    with versions_pinned():
        got = retrieve(state, req, ctx, cfg)
        ranked = rank_stage(state, req, ctx, cfg, got.candidates, [], {}, time.monotonic())
        trace: dict[str, Any] = {}
        rules = state.rules.snapshot()
        final = policy_stage(state, req, ctx, cfg, got, ranked, seed_id, rules, trace=trace)
    return Replayed(got, ranked, final, trace)
