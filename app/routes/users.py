from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from app.schemas import UserOut
from app.services import users
from core.domain import ID_PATTERN, User, UserFields

# Apps write profiles with their `events` key (often shipped in a client); reading a user's
# profile and history back is personal data, so it takes an `admin` key.
router = APIRouter(prefix="/v1/users", tags=["users"], responses=error_responses(*AUTHED))
UserId = Annotated[str, Path(pattern=ID_PATTERN, description="user id (1-128 chars)")]


@router.put(
    "/{user_id}",
    response_model=UserOut,
    dependencies=[Depends(require("events"))],
    responses=error_responses(413),
)
def put_user(user_id: UserId, body: UserFields, state: StateDep) -> UserOut:
    """Create or **replace** a user's whole profile (language, region, birth year,
    preferences).

    Replace means every field left out is cleared: a body without `birth_year` forgets the
    user's age, and the maturity ceiling falls back to the unknown-age default. To change
    some fields and keep the others, use PATCH. The answer echoes the stored profile; the
    user's history is not included (GET, with an admin key, reads it).
    """
    users.put_user(state, user=User(user_id=user_id, **body.model_dump()))
    return users.get_user(state, user_id=user_id, recent=0)


@router.patch(
    "/{user_id}",
    response_model=UserOut,
    dependencies=[Depends(require("events"))],
    responses=error_responses(413),
)
def patch_user(user_id: UserId, body: UserFields, state: StateDep) -> UserOut:
    """Change some fields of a user's profile and keep the others (creates the profile if
    there is none).

    Only the fields sent change; `null` clears one (`{"birth_year": null}` forgets the age).
    `preferences` is replaced as a whole when sent. The answer echoes the stored profile.
    """
    users.patch_user(state, user_id=user_id, changes=body.model_dump(exclude_unset=True))
    return users.get_user(state, user_id=user_id, recent=0)


@router.get(
    "/{user_id}",
    response_model=UserOut,
    dependencies=[Depends(require("admin"))],
    responses=error_responses(404),
)
def get_user(user_id: UserId, state: StateDep) -> UserOut:
    """A user's profile and most recent interactions."""
    return users.get_user(state, user_id=user_id)
