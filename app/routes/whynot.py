""" "Why not this item?": where an item left a user's list (scope admin: it reads the user's
context and the item whatever its status)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from app.params import CategoryQ, LanguageQ, LimitQ, ProfilingQ, SurfaceQ
from app.routes.recommendations import AskerDep, ContextDep, rec_request
from core.domain import ID_PATTERN
from serving.whynot import why_not

router = APIRouter(
    prefix="/v1/recommendations",
    tags=["recommendations"],
    dependencies=[Depends(require("admin"))],
    responses=error_responses(*AUTHED),
)

Stage = Literal[
    "served",
    "unknown_item",
    "hard_filter",
    "request_filter",
    "not_retrieved",
    "below_rank_depth",
    "below_policy_window",
    "category_cap",
    "creator_cap",
    "unproven_cap",
    "buried",
    "policy_cut",
    "mmr",
    "explored_out",
    "pinned_out",
]


class WhyNot(BaseModel):
    item_id: str
    user_id: str | None
    session_id: str | None = None
    surface: str
    variant: str
    profiling: bool = Field(
        description="false: the list asked about is built without personal data (the "
        "request's `profiling=false`, or the user's own switch)"
    )
    stage: Stage = Field(description="the first stage of the pipeline that lost the item")
    served: bool
    detail: str = Field(description="why, in words")
    numbers: dict[str, Any] = Field(
        description="what decided: positions, scores, quotas, the list length"
    )
    items: list[str] = Field(description="the list this run produced, in order")


@router.get("/why-not", response_model=WhyNot)
def get_why_not(
    state: StateDep,
    who: AskerDep,
    context: ContextDep,
    item_id: Annotated[str, Query(pattern=ID_PATTERN, description="the item asked about")],
    surface: SurfaceQ = "homepage",
    context_item_id: Annotated[
        str | None,
        Query(pattern=ID_PATTERN, description="the context item (`item_id` of a recommendation)"),
    ] = None,
    limit: LimitQ = None,
    category: CategoryQ = None,
    language: LanguageQ = None,
    recommendation_id: Annotated[
        str | None,
        Query(pattern=r"^[0-9a-f]{32}$", description="replay that list's exploration draws"),
    ] = None,
    profiling: ProfilingQ = True,
) -> WhyNot:
    """Run the pipeline for this request, traced and uncached, and say at which stage
    `item_id` left the list (or its position), with the numbers that decided."""
    req = rec_request(
        state,
        who.owner,
        surface,
        context_item_id,
        limit,
        category,
        language,
        item_param="context_item_id",
    )
    req = context.applied(req, profiling=profiling)
    return WhyNot.model_validate(who.answer(why_not(state, req, item_id, recommendation_id)))
