"""Sequential A/B tests of surface variants: `GET /v1/admin/experiments` (admin scope)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from app.services import experiments
from core.served_list import HOURLY_KEEP_S

router = APIRouter(
    prefix="/v1/admin",
    tags=["experiments"],
    dependencies=[Depends(require("admin"))],
    responses=error_responses(*AUTHED),
)


class ArmOut(BaseModel):
    variant: str
    share: float = Field(description="share of the surface's users the variant is assigned")
    impressions: int
    clicks: int = Field(description="attributed to a list of this arm")
    ctr: float
    lists: int = Field(description="lists served (empty ones too)")
    degraded_share: float = Field(description="lists a fallback answered because of a failure")
    p95_ms: float | None = Field(
        description="upper bound of the latency bucket holding the 95th percentile (none: "
        "beyond 2,500 ms or nothing timed)"
    )
    distinct_items: int = Field(description="distinct items served (HyperLogLog, ~1% error)")
    safety_per_list: float = Field(
        description="candidates the safety rule dropped per list computed afresh"
    )


class GuardrailOut(BaseModel):
    name: Literal["p95_latency_ms", "degraded_share", "coverage", "safety_filter_hits"]
    value: float | None = Field(description="the variant's")
    default: float | None = Field(description="default's")
    limit: float | None = Field(description="the value that breaks it (none: not judged yet)")
    breached: bool | None = Field(description="none: too little traffic to judge")


class ComparisonOut(BaseModel):
    variant: str
    ctr_diff: float = Field(description="variant CTR minus default CTR")
    ctr_diff_low: float = Field(description="always-valid interval: valid at every look")
    ctr_diff_high: float
    p_value: float = Field(description="always-valid p-value of no difference")
    decision: Literal["continue", "ship", "stop"]
    reason: str
    guardrails: list[GuardrailOut]


class ExperimentOut(BaseModel):
    surface: str
    window_hours: int
    since: int = Field(description="start of the first hour counted, unix s")
    arms: list[ArmOut] = Field(description="default first, then the variants")
    comparisons: list[ComparisonOut] = Field(description="each variant against default")


class ExperimentList(BaseModel):
    items: list[ExperimentOut]


@router.get("/experiments", response_model=ExperimentList)
def list_experiments(
    state: StateDep,
    surface: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
    hours: Annotated[
        int | None,
        Query(ge=1, le=HOURLY_KEEP_S // 3600, description="hours back (default: the setting)"),
    ] = None,
) -> ExperimentList:
    """Each surface with variants: per arm its CTR, latency, degraded share and coverage; per
    variant the CTR difference against default with an always-valid confidence interval (look
    as often as you like), its guardrails and a decision (`continue`, `ship`, `stop`)."""
    found = experiments.experiments(state, surface=surface, hours=hours)
    return ExperimentList(items=[ExperimentOut.model_validate(e) for e in found])
