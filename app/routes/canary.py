"""The ranker canary: start one, follow it, stop it (admin scope)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from app.services import canary

router = APIRouter(
    prefix="/v1/admin/models/ranker/canary",
    tags=["admin"],
    dependencies=[Depends(require("admin"))],
    responses=error_responses(*AUTHED),
)


class CanaryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=r"^[0-9A-Za-z_.:-]{1,64}$", description="a saved re-ranker")
    share: float | None = Field(
        None, gt=0, lt=1, description="share of users (default the setting, else 0.1)"
    )
    margin: float | None = Field(
        None, ge=0, le=0.1, description="non-inferiority margin on CTR (default the setting)"
    )


class StopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("stopped by an operator", min_length=1, max_length=200)


class CanaryOut(BaseModel):
    version: str
    share: float
    margin: float
    baseline: str | None = Field(description="the version current when it started")
    started_at: float
    state: str = Field(description="running, promoted or rolled_back")
    decided_at: float | None = None
    reason: str = ""


class CanaryStatus(BaseModel):
    canary: CanaryOut | None = Field(description="the latest canary (none ever: null)")
    log: list[dict[str, Any]] = Field(description="started / promoted / rolled_back, newest first")
    now: dict[str, Any] | None = Field(
        None,
        description="while running: the decision the evidence gives now, its reason, the "
        "always-valid interval, the guardrails and both arms' counts",
    )


@router.get("", response_model=CanaryStatus)
def get_canary(state: StateDep) -> CanaryStatus:
    """The latest canary, its decisions, and (while it runs) what the evidence says now."""
    return CanaryStatus.model_validate(canary.status(state))


@router.post(
    "", status_code=201, response_model=CanaryOut, responses=error_responses(404, 409, 413)
)
def start_canary(body: CanaryIn, state: StateDep, response: Response) -> CanaryOut:
    """Serve a saved re-ranker to a share of the users of every surface ranked by the current
    one (variant `canary-<version>`). The API judges it every minute: promoted (made current)
    once its CTR is shown no worse than `margin` below the current one's with no guardrail
    broken, rolled back when shown worse, when a guardrail breaks, or when undecided too
    long."""
    cfg = state.settings.canary
    share = body.share or cfg.share or 0.1
    margin = body.margin if body.margin is not None else cfg.margin
    started = canary.start(state, body.version, share, margin)
    response.headers["Location"] = router.prefix
    return CanaryOut.model_validate(started.as_dict())


@router.post("/stop", response_model=CanaryOut, responses=error_responses(404, 413))
def stop_canary(state: StateDep, body: StopIn | None = None) -> CanaryOut:
    """Roll the running canary back now: its users get the current ranker again."""
    reason = body.reason if body else StopIn().reason
    return CanaryOut.model_validate(canary.stop(state, reason).as_dict())
