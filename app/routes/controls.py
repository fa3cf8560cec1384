"""Users' own controls (scope `events`, so apps can offer them to their users): "not
interested" in an item, a category or a creator (kept, listed, removable), pause history,
reset history, and a list without profiling (core/controls.py, serving/nonprofiling.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from app.routes.users import UserId
from app.schemas import Accepted
from app.services.queue import enqueue
from core import events as ev
from core.errors import Conflict, NotFound
from core.stores.controls import ControlsStore

router = APIRouter(
    prefix="/v1/users",
    tags=["user controls"],
    dependencies=[Depends(require("events"))],
    responses=error_responses(*AUTHED),
)
Kind = Literal["item", "category", "creator"]
VALUE = r"^[^\x00-\x1f/]{1,128}$"


class NotInterested(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind = Field(description="item, category or creator")
    value: str = Field(pattern=VALUE, description="the item id, category or creator id")


class NotInterestedOut(NotInterested):
    at: float = Field(description="when the user said so")


class ControlsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paused: StrictBool | None = Field(
        None,
        description="true: the user's events still count for popularity and trending, not "
        "for their profile",
    )
    profiling: StrictBool | None = Field(
        None, description="false: every list of theirs is built without personal data"
    )


class UserControls(BaseModel):
    user_id: str
    paused: bool
    profiling: bool
    not_interested: list[NotInterestedOut]


def _out(user_id: str, controls: Any) -> UserControls:
    return UserControls.model_validate({"user_id": user_id, **controls.as_dict()})


def _store(state: StateDep) -> ControlsStore:
    return ControlsStore(state.redis, state.keys)


@router.get("/{user_id}/controls", response_model=UserControls)
def get_controls(user_id: UserId, state: StateDep) -> UserControls:
    """The user's controls: paused, profiling, and what they are not interested in."""
    return _out(user_id, _store(state).get(user_id))


@router.patch("/{user_id}/controls", response_model=UserControls, responses=error_responses(413))
def patch_controls(user_id: UserId, body: ControlsPatch, state: StateDep) -> UserControls:
    """Pause or resume the user's history, switch profiling off or on (fields left out are
    kept). Takes effect on their next list."""
    return _out(
        user_id, _store(state).set_flags(user_id, paused=body.paused, profiling=body.profiling)
    )


@router.post(
    "/{user_id}/not-interested",
    response_model=UserControls,
    status_code=201,
    responses={**error_responses(409, 413), 200: {"model": UserControls, "description": "known"}},
)
def add_not_interested(
    user_id: UserId, body: NotInterested, state: StateDep, response: Response
) -> UserControls:
    """The user is not interested in this item, category or creator: it leaves their lists
    from the next one on (every surface, pins included), until removed. 201 when new, 200
    when already said; at most 500 entries (409)."""
    value = body.value.strip().lower() if body.kind == "category" else body.value  # as stored
    try:
        got, new = _store(state).add(user_id, body.kind, value)
    except ValueError as e:
        raise Conflict(str(e)) from e
    if not new:
        response.status_code = 200
    return _out(user_id, got)


@router.delete(
    "/{user_id}/not-interested/{kind}/{value}", status_code=204, responses=error_responses(404)
)
def remove_not_interested(
    user_id: UserId,
    kind: Kind,
    value: Annotated[str, Path(pattern=VALUE)],
    state: StateDep,
) -> Response:
    """Take a "not interested" back."""
    value = value.strip().lower() if kind == "category" else value
    if not _store(state).remove(user_id, kind, value):
        raise NotFound(f"{user_id} has no 'not interested' in {kind} {value!r}")
    return Response(status_code=204)


@router.post("/{user_id}/history/reset", response_model=Accepted, status_code=202)
def reset_history(user_id: UserId, state: StateDep) -> Accepted:
    """Start the user's learned profile from scratch: history, affinities, dislikes, vectors
    and candidate set go (after their events already accepted); the profile's stated fields,
    their controls and the popularity they contributed to stay."""
    return Accepted(event_ids=enqueue(state, [ev.reset_event(user_id)]))
