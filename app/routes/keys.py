"""API keys over HTTP: who am I (any key), and create, list, get, revoke (admin scope).

The same store as `vantage keys` (`app.auth.KeyStore`): secrets are kept hashed and shown once,
in the answer that creates them.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from app.auth import KEY_ID_PATTERN, SCOPES, ApiKey, any_key, require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from core.domain import NONBLANK_PATTERN
from core.errors import Conflict, NotFound

Scope = Literal["recommend", "events", "catalog", "admin"]
assert set(get_args(Scope)) == set(SCOPES)
KeyId = Annotated[str, Path(pattern=KEY_ID_PATTERN, description="key id (12 hex digits)")]

router = APIRouter(tags=["keys"], responses=error_responses(*AUTHED))
admin = [Depends(require("admin"))]


class KeyOut(BaseModel):
    key_id: str
    name: str
    scopes: list[Scope]
    rate_per_s: float = Field(description="sustained requests per second")
    burst: int = Field(description="requests at once")
    created_at: float
    revoked_at: float | None = None


class KeyCreated(KeyOut):
    key: str = Field(description="the key to send as `Authorization: Bearer <key>`: shown once")


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=NONBLANK_PATTERN)
    scopes: list[Scope] = Field(min_length=1, max_length=len(SCOPES))
    rate_per_s: float | None = Field(
        None, gt=0, le=100_000, description="default: VANTAGE_AUTH__DEFAULT_RATE_PER_S"
    )
    burst: int | None = Field(
        None, ge=1, le=1_000_000, description="default: VANTAGE_AUTH__DEFAULT_BURST"
    )


class KeyList(BaseModel):
    items: list[KeyOut]


class Me(BaseModel):
    auth_enabled: bool = Field(description="false: every endpoint is open (local experiments)")
    key: KeyOut | None = Field(description="the calling key (none while auth is off)")
    scopes: list[Scope] = Field(description="what the caller may do (admin implies every scope)")


def _out(rec: ApiKey) -> KeyOut:
    return KeyOut.model_validate(rec.public())


@router.get("/v1/auth/me", response_model=Me)
def me(key: Annotated[ApiKey | None, Depends(any_key)]) -> Me:
    """The calling key: its name, scopes and limits (any valid key may ask)."""
    if key is None:
        return Me(auth_enabled=False, key=None, scopes=list(SCOPES))  # type: ignore[arg-type]
    scopes = SCOPES if "admin" in key.scopes else key.scopes
    return Me(auth_enabled=True, key=_out(key), scopes=list(scopes))  # type: ignore[arg-type]


@router.post(
    "/v1/admin/keys",
    status_code=201,
    response_model=KeyCreated,
    dependencies=admin,
    responses=error_responses(413),
)
def create_key(body: KeyIn, state: StateDep, response: Response) -> KeyCreated:
    """Create a key. The answer holds the key itself, once: store it now (only its hash is kept)."""
    auth = state.settings.auth
    token, rec = state.auth.store.create(
        body.name,
        list(dict.fromkeys(body.scopes)),
        rate=body.rate_per_s or auth.default_rate_per_s,
        burst=body.burst or auth.default_burst,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Location"] = f"/v1/admin/keys/{rec.key_id}"
    return KeyCreated(key=token, **_out(rec).model_dump())


@router.get("/v1/admin/keys", response_model=KeyList, dependencies=admin)
def list_keys(
    state: StateDep,
    revoked: Annotated[bool, Query(description="include revoked keys")] = False,
) -> KeyList:
    """Every key by id (never a secret); revoked ones only with `revoked=true`."""
    recs = state.auth.store.list()
    return KeyList(items=[_out(k) for k in recs if revoked or k.revoked_at is None])


@router.get(
    "/v1/admin/keys/{key_id}",
    response_model=KeyOut,
    dependencies=admin,
    responses=error_responses(404),
)
def get_key(key_id: KeyId, state: StateDep) -> KeyOut:
    """One key (never its secret)."""
    rec = state.auth.store.get(key_id)
    if rec is None:
        raise NotFound(f"no key {key_id}")
    return _out(rec)


@router.post(
    "/v1/admin/keys/{key_id}/revoke",
    response_model=KeyOut,
    dependencies=admin,
    responses=error_responses(404, 409),
)
def revoke_key(key_id: KeyId, state: StateDep, request: Request) -> KeyOut:
    """Revoke a key: refused at once by this process, by the others within 5 seconds. Its
    record stays (listed with `revoked=true`) with the time it was revoked.

    Revoking the key that makes the request is refused (409): use another admin key, so
    nobody locks themselves out. Revoking a revoked key again changes nothing."""
    caller: ApiKey | None = getattr(request.state, "api_key", None)
    if caller is not None and caller.key_id == key_id:
        raise Conflict("this is the key you are using: revoke it with another admin key")
    rec = state.auth.store.get(key_id)
    if rec is None:
        raise NotFound(f"no key {key_id}")
    if rec.revoked_at is None:
        state.auth.store.revoke(key_id)
    state.auth.forget(key_id)
    done = state.auth.store.get(key_id)
    assert done is not None
    return _out(done)
