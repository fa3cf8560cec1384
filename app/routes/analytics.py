"""Operator analytics: impressions, clicks and CTR per surface, source and variant."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from app.services import analytics

router = APIRouter(
    prefix="/v1/admin/metrics",
    tags=["admin"],
    dependencies=[Depends(require("admin"))],
    responses=error_responses(*AUTHED),
)


class SurfaceRow(BaseModel):
    surface: str
    source: str = Field(description="retrieval source; `*` = every item of the surface once")
    variant: str
    impressions: int
    clicks: int = Field(description="positive interactions attributed to a served list")
    ctr: float = Field(description="clicks / impressions (0 without impressions), 4 decimals")


class SurfaceMetrics(BaseModel):
    rows: list[SurfaceRow]


@router.get("/surfaces", response_model=SurfaceMetrics)
def surfaces(
    state: StateDep,
    surface: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
    variant: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> SurfaceMetrics:
    """Impressions, attributed clicks and CTR since counting began, by surface, source and
    variant (an item produced by two sources counts for both; `*` rows count it once)."""
    rows = analytics.surface_rows(state, surface=surface, variant=variant)
    return SurfaceMetrics(rows=[SurfaceRow(**r) for r in rows])
