from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from app.auth import require
from app.deps import StateDep
from app.schemas import UserOut
from app.services import users
from indexing.models import ID_PATTERN, User, UserFields

router = APIRouter(prefix="/v1/users", tags=["users"], dependencies=[Depends(require("events"))])
UserId = Annotated[str, Path(pattern=ID_PATTERN, description="user id (1-128 chars)")]


@router.put("/{user_id}", response_model=UserOut)
def put_user(user_id: UserId, body: UserFields, state: StateDep) -> UserOut:
    """Create or replace a user's profile (language, region, birth year, preferences)."""
    users.put_user(state, user=User(user_id=user_id, **body.model_dump()))
    return users.get_user(state, user_id=user_id)


@router.get("/{user_id}", response_model=UserOut)
def get_user(user_id: UserId, state: StateDep) -> UserOut:
    """A user's profile and most recent interactions."""
    return users.get_user(state, user_id=user_id)
