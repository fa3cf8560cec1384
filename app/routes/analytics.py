"""Operator analytics: impressions, clicks and CTR per surface, source and variant."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from app.services import analytics
from core.served_list import HOURLY_KEEP_S

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


class HourlyRow(SurfaceRow):
    hour: int = Field(description="start of the hour, unix seconds (UTC)")


class HourlyMetrics(BaseModel):
    hours: int = Field(description="the hours asked for, ending with the current one")
    rows: list[HourlyRow] = Field(description="oldest hour first; hours with nothing left out")


SurfaceQ = Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")]
VariantQ = Annotated[str | None, Query(min_length=1, max_length=64)]


@router.get("/surfaces", response_model=SurfaceMetrics)
def surfaces(
    state: StateDep,
    surface: SurfaceQ = None,
    variant: VariantQ = None,
) -> SurfaceMetrics:
    """Impressions, attributed clicks and CTR since counting began, by surface, source and
    variant (an item produced by two sources counts for both; `*` rows count it once)."""
    rows = analytics.surface_rows(state, surface=surface, variant=variant)
    return SurfaceMetrics(rows=[SurfaceRow(**r) for r in rows])


@router.get("/surfaces/hourly", response_model=HourlyMetrics)
def surfaces_hourly(
    state: StateDep,
    hours: Annotated[int, Query(ge=1, le=HOURLY_KEEP_S // 3600, description="hours back")] = 24,
    surface: SurfaceQ = None,
    variant: VariantQ = None,
    source: Annotated[
        str | None, Query(min_length=1, max_length=64, description="`*`: each item once")
    ] = None,
) -> HourlyMetrics:
    """The same figures per hour (kept 8 days): impressions count in the hour their list was
    served, clicks in the hour the worker attributed them (within a second of the event)."""
    rows = analytics.hourly_rows(
        state, hours=hours, surface=surface, variant=variant, source=source
    )
    return HourlyMetrics(hours=hours, rows=[HourlyRow(**r) for r in rows])
