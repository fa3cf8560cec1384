"""Per-surface impression and click counts (written by the API and the workers) as CTR rows."""

from __future__ import annotations

import time
from typing import Any

from app.state import AppState
from core.keys import RECS_SHARDS
from core.redis_typed import text
from core.served_list import hour_of

KINDS = ("imp", "click")


def surface_rows(
    state: AppState, *, surface: str | None = None, variant: str | None = None
) -> list[dict[str, Any]]:
    """One row per (surface, source, variant), sorted; source `*` counts each item once."""
    pipe = state.redis.pipeline(transaction=False)
    for shard in range(RECS_SHARDS):
        pipe.hgetall(state.keys.surface_stats(shard))
    return _rows(pipe.execute(), surface, variant)


def hourly_rows(
    state: AppState,
    *,
    hours: int,
    surface: str | None = None,
    variant: str | None = None,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """The same rows per hour (`hour`: unix time of its start) for the last `hours` hours,
    oldest first; hours with nothing served are left out."""
    now = hour_of(time.time())
    span = range(now - hours + 1, now + 1)
    pipe = state.redis.pipeline(transaction=False)
    for hour in span:
        for shard in range(RECS_SHARDS):
            pipe.hgetall(state.keys.surface_stats_hour(shard, hour))
    raw = pipe.execute()
    out = []
    for i, hour in enumerate(span):
        rows = _rows(raw[i * RECS_SHARDS : (i + 1) * RECS_SHARDS], surface, variant)
        out += [{"hour": hour * 3600, **r} for r in rows if source is None or r["source"] == source]
    return out


def _rows(
    shards: list[dict[Any, Any]], surface: str | None, variant: str | None
) -> list[dict[str, Any]]:
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    # Bounded: surfaces, sources and variants are all named by the server, not by clients.
    merged = [pair for shard_stats in shards for pair in shard_stats.items()]
    for raw, n in merged:
        parts = text(raw).split("|", 3)
        if len(parts) != 4 or parts[0] not in KINDS:
            continue
        kind, surf, source, var = parts
        if (surface is not None and surf != surface) or (variant is not None and var != variant):
            continue
        row = counts.setdefault((surf, source, var), {"imp": 0, "click": 0})
        row[kind] += int(n)
    return [
        {
            "surface": surf,
            "source": source,
            "variant": var,
            "impressions": c["imp"],
            "clicks": c["click"],
            "ctr": round(c["click"] / c["imp"], 4) if c["imp"] else 0.0,
        }
        for (surf, source, var), c in sorted(counts.items(), key=lambda kv: _order(kv[0]))
    ]


def _order(key: tuple[str, str, str]) -> tuple[str, str, bool, str]:
    """By surface, then variant, the all-sources row first, then sources by name."""
    surf, source, var = key
    return surf, var, source != "*", source
