from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from app.schemas import ErasureReceipt, UserOut
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


@router.delete(
    "/{user_id}",
    response_model=ErasureReceipt,
    dependencies=[Depends(require("admin"))],
    responses={
        202: {"model": ErasureReceipt, "description": "accepted; not applied within `wait_s`"},
        **error_responses(503),
    },
)
def erase_user(
    user_id: UserId,
    state: StateDep,
    response: Response,
    wait_s: Annotated[
        float, Query(ge=0, le=30, description="how long to wait for the erasure to complete")
    ] = 10.0,
) -> ErasureReceipt:
    """Erase every trace of a user (GDPR Art. 17), and answer with a receipt.

    Removed: the profile and its vectors, history, affinity, confidence and dislikes (Redis
    and the Milvus users collection), candidate sets, cached and last good lists,
    impressions and attribution records of their lists, their accepted events still in the
    stream and dead letters, and any interaction model still holding a row for them. Their
    lines in the durable event log are skipped by every reader at once and removed by the
    next compaction (`event_log.free_by`; `worker.log_compaction_delay_s`). Popularity,
    trending and surface counters keep the user's past contribution: they are per-item and
    per-surface totals without a user id.

    200 with the receipt once a worker has applied the erasure (it goes through the user's
    event partition, after every event of theirs accepted before it); 202 with the receipt
    so far if that took longer than `wait_s` (GET `/v1/users/{user_id}/erasure` follows it).
    Idempotent: a repeat erases again (events accepted since are a new life of the id) and
    its receipt counts what was left. A worker that crashes midway leaves it pending; the
    next one resumes where it stopped.
    """
    out = ErasureReceipt.model_validate(users.erase_user(state, user_id=user_id, wait_s=wait_s))
    if out.status != "completed":
        response.status_code = 202
    return out


@router.get(
    "/{user_id}/erasure",
    response_model=ErasureReceipt,
    dependencies=[Depends(require("admin"))],
    responses=error_responses(404),
)
def erasure_receipt(user_id: UserId, state: StateDep) -> ErasureReceipt:
    """The receipt of the user's latest erasure (kept under a digest of the id, not the id)."""
    return ErasureReceipt.model_validate(users.erasure_receipt(state, user_id=user_id))
