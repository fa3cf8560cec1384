from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from app.schemas import MAX_BATCH, Accepted, InteractionsIn
from app.services.queue import enqueue, enqueue_once
from app.services.sessions import touch_sessions
from core import events as ev
from core.domain import InteractionIn
from core.errors import InvalidRequest

router = APIRouter(
    prefix="/v1",
    tags=["events"],
    dependencies=[Depends(require("events"))],
    responses=error_responses(*AUTHED),
)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="any unique string (a UUID): a retry with the same key and body within "
        "the idempotency window is answered with the first attempt's event ids and logs "
        "nothing again",
    ),
]


@router.post(
    "/interactions",
    status_code=202,
    response_model=Accepted,
    responses=error_responses(409, 413),
)
async def post_interactions(
    body: Annotated[InteractionsIn, Body()],
    state: StateDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Accepted:
    """Log one interaction or a list of up to 1,000; 202 means stored and never lost. Each
    names a signed-in `user_id` or a guest's `session_id`."""
    # One hop to the thread pool for the (blocking) Redis writes; the rest on the event loop.
    return await run_in_threadpool(_accept, body, state, request, response, idempotency_key)


def _accept(
    body: InteractionsIn,
    state: StateDep,
    request: Request,
    response: Response,
    idempotency_key: str | None,
) -> Accepted:
    batch = body if isinstance(body, list) else [body]
    if not batch:
        raise InvalidRequest("send one interaction object or a non-empty list of them")
    if len(batch) > MAX_BATCH:
        raise InvalidRequest(f"at most {MAX_BATCH} interactions per request, got {len(batch)}")
    events = [ev.interaction_event(i.internal()) for i in batch]
    sessions = {i.session_id for i in batch if i.session_id is not None}
    if sessions:  # before the events: an expiry sweep must see the session as active
        touch_sessions(state, sessions)
    if idempotency_key is None:
        return Accepted(event_ids=enqueue(state, events))
    # The request as sent (before the server fills in missing timestamps) identifies it.
    sent = json.dumps([_identity(i) for i in batch], sort_keys=True)
    # Keys are scoped to the API key that sent them: another caller's identical key is a
    # different request, never a replay of someone else's ids.
    caller = getattr(getattr(request.state, "api_key", None), "key_id", "")
    done = enqueue_once(
        state,
        events,
        key=idempotency_key,
        caller=caller,
        fingerprint=hashlib.sha256(sent.encode()).hexdigest(),
    )
    if done.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return Accepted(event_ids=done.ids)


# Fields added after idempotency records existed: left out while unset, so a retry that spans
# the upgrade has the fingerprint its first attempt stored.
_ADDED_FIELDS = ("device",)


def _identity(event: InteractionIn) -> dict[str, Any]:
    body = event.model_dump(mode="json")
    for name in _ADDED_FIELDS:
        if body.get(name) is None:
            body.pop(name, None)
    return body
