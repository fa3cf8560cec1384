"""Policy: the hard filters every result passes, whichever source or fallback produced it."""

from __future__ import annotations

from collections.abc import Sequence

from app.pipeline.retrieval import Candidate


def allowed(
    c: Candidate, *, max_maturity: int, region: str | None, tombstoned: set[str], exclude: set[str]
) -> bool:
    """Safety and availability rules; a candidate failing any of them is never returned."""
    f = c.fields
    if c.item_id in tombstoned or c.item_id in exclude:
        return False
    if f.get("status", "active") != "active":
        return False
    if int(f.get("maturity", 0)) > max_maturity:
        return False
    regions = f.get("regions") or []
    # Fail closed: a user whose region is unknown only sees items available everywhere.
    return not regions or region in regions


def apply_policy(
    candidates: Sequence[Candidate],
    *,
    limit: int,
    max_maturity: int,
    region: str | None,
    tombstoned: set[str],
    exclude: set[str],
) -> list[Candidate]:
    """Keep the allowed candidates in their given order, at most `limit` of them."""
    kept = [
        c
        for c in candidates
        if allowed(
            c, max_maturity=max_maturity, region=region, tombstoned=tombstoned, exclude=exclude
        )
    ]
    return kept[:limit]
