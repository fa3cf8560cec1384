from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends

from app.auth import require
from app.deps import StateDep
from app.errors import InvalidRequest
from app.schemas import MAX_BATCH, Accepted, InteractionsIn
from app.services.queue import enqueue
from indexing import events as ev

router = APIRouter(prefix="/v1", tags=["events"], dependencies=[Depends(require("events"))])


@router.post("/interactions", status_code=202, response_model=Accepted)
def post_interactions(body: Annotated[InteractionsIn, Body()], state: StateDep) -> Accepted:
    """Log one interaction or a list of up to 1,000; 202 means stored and never lost."""
    batch = body if isinstance(body, list) else [body]
    if not batch:
        raise InvalidRequest("send one interaction object or a non-empty list of them")
    if len(batch) > MAX_BATCH:
        raise InvalidRequest(f"at most {MAX_BATCH} interactions per request, got {len(batch)}")
    return Accepted(event_ids=enqueue(state, [ev.interaction_event(i) for i in batch]))
