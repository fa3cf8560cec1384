"""Off-policy evaluation over HTTP (admin scope): the CTR a candidate configuration of a
surface would have had on its logged traffic (app/services/ope.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from app.services import ope
from app.services import shadow as shadow_service
from core.domain import JSON_NUMBER, Int, Number

router = APIRouter(
    prefix="/v1/admin/ope",
    tags=["admin"],
    dependencies=[Depends(require("admin"))],
    responses=error_responses(*AUTHED),
)
NAME = r"^[A-Za-z0-9_.-]{1,64}$"
RewardKind = Literal["click", "watch", "like", "purchase", "rate"]  # the attributed types


class OpeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    surface: str = Field(
        pattern=r"^[a-z_]{1,32}$", description="the surface whose logged lists are replayed"
    )
    candidate: str | None = Field(
        None,
        pattern=NAME,
        description="the candidate: a registered one (PUT /v1/admin/ope/candidates/{name}), "
        "judged on the lists it shadowed (exact)",
    )
    variant: str | None = Field(
        None, pattern=NAME, description="or this configured variant of the surface (replayed)"
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="or the surface with these settings (replayed), as a variant's "
        'overrides, e.g. {"ranker": "20261206-1200"} or {"policy": {"mmr_lambda": 0.7}} '
        "({} = the surface as configured now); its exploration is off",
    )
    logged_variant: str = Field(
        "default", pattern=NAME, description="whose lists are the logs (the logging policy)"
    )
    reward: dict[RewardKind, Annotated[float, Field(ge=0, le=1000), JSON_NUMBER]] | None = Field(
        None,
        min_length=1,
        description='weights per event type, e.g. {"click": 1, "purchase": 5}: an item\'s '
        "reward is the sum of the weights of the event types its user had on it after seeing "
        "the list (null: 1 if it got any positive event, i.e. clicks)",
    )
    hours: Number = Field(24.0, gt=0, le=24, description="window: lists served this recently")
    since: Number | None = Field(
        None,
        ge=0,
        le=4_102_444_800,  # 2100-01-01: a unix time, not a typo
        allow_inf_nan=False,
        description="or the window starts at this unix time (at most 24 h ago; later wins)",
    )
    max_lists: Int = Field(2000, ge=1, le=20_000, description="the newest this many lists")
    min_support: Number = Field(
        0.9, ge=0, le=1, description="refuse below this share of the candidate's item-positions"
    )
    min_ess: Number = Field(30.0, ge=1, description="refuse below this effective sample size")
    alpha: Number = Field(0.05, gt=0, lt=0.5, description="1 - alpha intervals")
    boots: Int = Field(300, ge=50, le=2000, description="bootstrap resamples")
    seed: Int = Field(0, ge=0, le=2**31 - 1, description="bootstrap seed")


class OpeInterval(BaseModel):
    ctr: float = Field(description="reward per shown position (with clicks as the reward: CTR)")
    low: float
    high: float


class OpeEstimate(OpeInterval):
    estimator: str = Field(description="ips, snips or dr")
    ess: float = Field(description="effective number of logged item-positions it rests on")


class OpeOut(BaseModel):
    surface: str
    logged_variant: str
    method: Literal["shadow", "replay"] = Field(
        description="shadow: the candidate's lists computed beside the logged ones (exact); "
        "replay: logged requests replayed now (drifts as users' state changes)"
    )
    candidate: dict[str, Any]
    since: float
    until: float
    lists: int = Field(description="logged lists used")
    skipped: dict[str, int] = Field(
        description="lists left out and why: cached, degraded, empty, no_propensity, "
        "attribution_expired, not_shadowed, malformed"
    )
    reward: dict[str, float] | None = Field(description="the weights asked for (null: clicks)")
    positions: int | None = Field(None, description="list length the CTR is per")
    clicks: int | None = Field(None, description="logged item-positions with a reward")
    reward_total: float | None = Field(None, description="their rewards summed")
    matched: int | None = Field(
        None, description="logged item-positions where the candidate shows the same item"
    )
    support: float | None = Field(
        None, description="share of the candidate's item-positions the logging policy could show"
    )
    replay_consistent: float | None = Field(
        None,
        description="replay only: share of logged lists today's replay of the logging policy "
        "could have served (below 1: state changed since, and the estimate is less faithful)",
    )
    ess: float | None = None
    logged: OpeInterval | None = Field(None, description="the logging policy's own CTR")
    estimates: list[OpeEstimate] = Field(description="empty when refused")
    chosen: str = Field(description="the estimator to read first")
    refused: str | None = Field(description="why no estimate is given (null: given)")
    replays: int | None = Field(None, description="pipeline runs it took")
    elapsed_ms: float


@router.post("", response_model=OpeOut, responses=error_responses(404, 413))
def evaluate(body: OpeIn, state: StateDep) -> OpeOut:
    """Estimate the CTR a candidate configuration (a variant, a ranker version, policy
    settings) would have had on the surface's logged lists: each logged request is replayed
    through the pipeline with the user's history as it was, and the logged clicks are
    re-weighted by the logged per-position propensities (IPS, SNIPS, DR, each with a bootstrap
    interval). Refused when the logs explored too little for this candidate. Takes two
    pipeline runs per distinct user state in the window (seconds for a few thousand lists)."""
    q = ope.OpeQuery(**body.model_dump())
    return OpeOut.model_validate(ope.evaluate(state, q))


class OpeCandidateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    surface: str = Field(pattern=r"^[a-z_]{1,32}$", description="the surface it shadows")
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="the surface with these settings, as a variant's overrides (exploration off)",
    )
    share: Number = Field(
        0.1,
        gt=0,
        le=1,
        description="share of the surface's freshly computed lists it shadows (each costs one "
        "more pipeline run, in a background thread of the API process)",
    )


class OpeCandidateOut(BaseModel):
    name: str
    surface: str
    share: float
    overrides: dict[str, Any]
    created_at: float


class OpeCandidates(BaseModel):
    candidates: list[OpeCandidateOut]


NameP = Annotated[str, Path(pattern=NAME, description="the candidate's name")]


@router.get("/candidates", response_model=OpeCandidates)
def list_candidates(state: StateDep) -> OpeCandidates:
    """The registered candidates: configurations whose lists serving computes beside a share
    of a surface's lists, never shown, for exact off-policy evaluation."""
    got = shadow_service.store(state).all()
    return OpeCandidates(candidates=[OpeCandidateOut.model_validate(c.as_dict()) for c in got])


@router.put(
    "/candidates/{name}",
    response_model=OpeCandidateOut,
    responses={**error_responses(409, 413), 201: {"model": OpeCandidateOut, "description": "new"}},
)
def put_candidate(
    name: NameP, body: OpeCandidateIn, state: StateDep, response: Response
) -> OpeCandidateOut:
    """Register (200: replace) a candidate: from now on, `share` of the surface's freshly
    computed lists also get the candidate's list computed beside them (same request, same user
    state), so `POST /v1/admin/ope {"candidate": name}` judges it without replay drift. At most
    8 at once (409)."""
    cand, new = shadow_service.put(state, name, body.surface, body.overrides, body.share)
    if new:
        response.status_code = 201
    return OpeCandidateOut.model_validate(cand.as_dict())


@router.delete("/candidates/{name}", status_code=204, responses=error_responses(404))
def delete_candidate(name: NameP, state: StateDep) -> Response:
    """Stop shadowing a candidate (lists it already shadowed keep its lists until they
    expire)."""
    shadow_service.delete(state, name)
    return Response(status_code=204)
