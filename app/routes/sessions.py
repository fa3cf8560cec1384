"""Guests' sessions: a session's events personalise its own lists (`session_id` on
`POST /v1/interactions` and `GET /v1/recommendations`); once the guest signs in, the app
merges the session into the user, once."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from app.routes.users import UserId
from app.services.sessions import merge_session
from core.domain import Id

router = APIRouter(
    prefix="/v1/users",
    tags=["sessions"],
    dependencies=[Depends(require("events"))],
    responses=error_responses(*AUTHED),
)


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: Id = Field(description="the guest session to fold into the user")


class SessionMerge(BaseModel):
    session_id: str
    user_id: str
    status: str = Field(description="queued (the worker folds it in) or merged (done)")
    event_ids: list[str] = Field(description="the merge's event on the stream")
    merged_events: int | None = Field(
        None, description="once merged: how many of the session's events the latest merge folded in"
    )


@router.post(
    "/{user_id}/merge",
    response_model=SessionMerge,
    status_code=202,
    responses={
        **error_responses(409, 413),
        200: {"model": SessionMerge, "description": "merged before: nothing more happens"},
    },
)
def merge(user_id: UserId, body: MergeIn, state: StateDep, response: Response) -> SessionMerge:
    """Fold a guest session's events (its newest sessions.journal_len) into the user: their
    history, affinities and profile take them in as if the user had sent them (popularity,
    trending and clicks counted them already); then the session is deleted. Exactly once: a
    repeat answers the same merge (200 once it is done); a session merged into another user
    is a 409."""
    got, _ = merge_session(state, user_id, body.session_id)
    if got.applied:
        response.status_code = 200
    return SessionMerge(
        session_id=body.session_id,
        user_id=user_id,
        status="merged" if got.applied else "queued",
        event_ids=got.event_ids,
        merged_events=got.copied if got.applied else None,
    )
