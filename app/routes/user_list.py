"""Known user ids, for operators (the console's playground suggests them): admin scope, as a
user id is personal data."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from core.errors import InvalidRequest
from core.redis_typed import text

router = APIRouter(
    prefix="/v1/admin",
    tags=["users"],
    dependencies=[Depends(require("admin"))],
    responses=error_responses(*AUTHED),
)
MAX_SCANS = 50  # SSCAN calls per page at most: a rare prefix answers a short page, not a hang


class UserPage(BaseModel):
    items: list[str] = Field(description="user ids of this page, sorted (about `limit`)")
    next_cursor: str | None = Field(description="pass back as `cursor`; null: the last page")


@router.get("/users", response_model=UserPage)
def list_users(
    state: StateDep,
    prefix: Annotated[
        str, Query(max_length=128, pattern=r"^[A-Za-z0-9._:@-]*$", description="id prefix")
    ] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str, Query(pattern=r"^[0-9]{1,20}$", description="from the last page")] = "0",
) -> UserPage:
    """Users with a profile or events (erased users are gone), optionally by id prefix, in
    pages that follow the set's own order (each page sorted)."""
    found: set[str] = set()
    at = int(cursor)
    if at >= 2**64:
        raise InvalidRequest("cursor: not one this endpoint gave (pass back next_cursor)")
    for _ in range(MAX_SCANS):
        at, batch = state.redis.sscan(
            state.keys.users_index, cursor=at, match=f"{prefix}*", count=max(limit, 100)
        )
        found.update(text(u) for u in batch)
        if at == 0 or len(found) >= limit:
            break
    return UserPage(items=sorted(found), next_cursor=None if at == 0 else str(at))
