from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from app.auth import require
from app.deps import StateDep
from app.schemas import UserOut
from app.services import users
from indexing.models import ID_PATTERN, User, UserFields

# Apps write profiles with their `events` key (often shipped in a client); reading a user's
# profile and history back is personal data, so it takes an `admin` key.
router = APIRouter(prefix="/v1/users", tags=["users"])
UserId = Annotated[str, Path(pattern=ID_PATTERN, description="user id (1-128 chars)")]


@router.put("/{user_id}", response_model=UserOut, dependencies=[Depends(require("events"))])
def put_user(user_id: UserId, body: UserFields, state: StateDep) -> UserOut:
    """Create or replace a user's profile (language, region, birth year, preferences).

    The answer echoes the stored profile; the user's history is not included (GET, with an
    admin key, reads it).
    """
    users.put_user(state, user=User(user_id=user_id, **body.model_dump()))
    return users.get_user(state, user_id=user_id, recent=0)


@router.get("/{user_id}", response_model=UserOut, dependencies=[Depends(require("admin"))])
def get_user(user_id: UserId, state: StateDep) -> UserOut:
    """A user's profile and most recent interactions."""
    return users.get_user(state, user_id=user_id)
