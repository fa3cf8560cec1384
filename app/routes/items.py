from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from app.schemas import Accepted, ItemBatch, ItemOut
from app.services import catalog
from core.domain import ID_PATTERN, Item, ItemFields

router = APIRouter(
    prefix="/v1/items",
    tags=["catalogue"],
    dependencies=[Depends(require("catalog"))],
    responses=error_responses(*AUTHED),
)
ItemId = Annotated[str, Path(pattern=ID_PATTERN, description="item id (1-128 chars)")]


@router.put("/{item_id}", status_code=202, response_model=Accepted, responses=error_responses(413))
def put_item(item_id: ItemId, body: ItemFields, state: StateDep) -> Accepted:
    """Create or replace an item; it is embedded and indexed asynchronously."""
    item = Item(item_id=item_id, **body.model_dump())
    return Accepted(event_ids=catalog.upsert_items(state, items=[item]))


@router.post("/batch", status_code=202, response_model=Accepted, responses=error_responses(413))
def put_items(body: ItemBatch, state: StateDep) -> Accepted:
    """Create or replace up to 1,000 items in one call."""
    return Accepted(event_ids=catalog.upsert_items(state, items=body.items))


@router.delete("/{item_id}", status_code=202, response_model=Accepted)
def delete_item(item_id: ItemId, state: StateDep) -> Accepted:
    """Remove an item: never recommended again from now on, removed from the index shortly."""
    return Accepted(event_ids=catalog.delete_item(state, item_id=item_id))


@router.get("/{item_id}", response_model=ItemOut, responses=error_responses(404))
def get_item(item_id: ItemId, state: StateDep) -> ItemOut:
    return catalog.get_item(state, item_id=item_id)
