"""Every surface's experiment: its variants against `default` over the last hours, read from
the hourly counters the impression log and the attribution script keep (core/served_list.py)
and the per-variant distinct-items sketches; judged by `core.experiments`."""

from __future__ import annotations

import time
from typing import Any

from app.state import AppState
from core.experiments import ArmStats, compare
from core.keys import RECS_SHARDS
from core.redis_typed import text
from core.served_list import hour_of


def count_arms(
    state: AppState, hours: range, arms: dict[tuple[str, str], ArmStats], *, distinct: bool = True
) -> None:
    """Add the window's counts to `arms` ((surface, variant) -> stats), and with `distinct`
    each arm's distinct items."""
    pipe = state.redis.pipeline(transaction=False)
    for hour in hours:
        for shard in range(RECS_SHARDS):
            pipe.hgetall(state.keys.surface_stats_hour(shard, hour))
    for stats in pipe.execute():
        for raw, n in stats.items():
            parts = text(raw).split("|", 3)
            if len(parts) != 4:
                continue
            kind, surface, source, variant = parts
            arm = arms.get((surface, variant))
            if arm is not None:
                arm.add(kind, source, int(n))
    if not distinct:
        return
    # One call per arm, not a pipeline: a Redis Cluster pipeline refuses PFCOUNT (the keys
    # share one slot, so the command itself is fine there).
    for (surface, variant), arm in arms.items():
        keys = [state.keys.served_items_hour(surface, h, variant) for h in hours]
        arm.distinct_items = int(state.redis.pfcount(*keys))


def experiments(
    state: AppState, *, surface: str | None = None, hours: int | None = None
) -> list[dict[str, Any]]:
    """One entry per surface with variants (or `surface`): arms, comparisons, decisions."""
    cfg = state.settings.experiments
    window = hours or cfg.window_hours
    now = hour_of(time.time())
    span = range(now - window + 1, now + 1)
    tested = {
        name: conf
        for name, conf in state.settings.surfaces.items()
        if conf.variants and (surface is None or name == surface)
    }
    arms = {
        (name, v): ArmStats(v) for name, conf in tested.items() for v in ["default", *conf.variants]
    }
    if arms:
        count_arms(state, span, arms)
    out = []
    for name, conf in tested.items():
        base = arms[(name, "default")]
        shares = {v: spec.share for v, spec in conf.variants.items()}
        shares["default"] = round(1.0 - sum(shares.values()), 6)
        variants = [arms[(name, v)] for v in conf.variants]
        out.append(
            {
                "surface": name,
                "window_hours": window,
                "since": span[0] * 3600,
                "arms": [{**a.as_dict(), "share": shares[a.variant]} for a in [base, *variants]],
                "comparisons": [compare(base, arm, cfg) for arm in variants],
            }
        )
    return out
