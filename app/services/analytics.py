"""Per-surface impression and click counts (written by the API and the workers) as CTR rows."""

from __future__ import annotations

from typing import Any

from app.state import AppState
from core.keys import RECS_SHARDS
from core.redis_typed import text

KINDS = ("imp", "click")


def surface_rows(
    state: AppState, *, surface: str | None = None, variant: str | None = None
) -> list[dict[str, Any]]:
    """One row per (surface, source, variant), sorted; source `*` counts each item once."""
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    # Bounded: surfaces, sources and variants are all named by the server, not by clients.
    pipe = state.redis.pipeline(transaction=False)
    for shard in range(RECS_SHARDS):
        pipe.hgetall(state.keys.surface_stats(shard))
    merged = [pair for shard_stats in pipe.execute() for pair in shard_stats.items()]
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
