"""Catalogue writes go through the event stream; reads come from Milvus."""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis

from app.schemas import ItemOut
from app.services.queue import enqueue, replicated
from app.state import AppState
from core import events as ev
from core.attributes import item_errors
from core.domain import Item
from core.errors import Conflict, DependencyUnavailable, InvalidRequest, NotFound
from core.stores.catalogue import announce


def upsert_items(state: AppState, *, items: Sequence[Item]) -> list[str]:
    """Queue item upserts; a worker embeds and indexes them. Custom attributes must be
    declared, with their type (422 otherwise), and stored by the live collection (409)."""
    declared = state.settings.catalog.attributes
    where = "items[{}].attributes" if len(items) > 1 else "attributes"
    problems = [
        {"field": where.format(n), "in": "body", "message": msg}
        for n, item in enumerate(items)
        for msg in item_errors(item.attributes, declared)
    ]
    if problems:
        raise InvalidRequest(problems[0]["message"], details=problems)
    if any(i.attributes for i in items) and not attributes_stored(state):
        raise Conflict(NO_ATTRIBUTES)
    return enqueue(state, [ev.item_event(i) for i in items])


def attributes_stored(state: AppState) -> bool:
    """Whether the live collection stores custom attributes; True when Milvus cannot say now
    (writes are queued without it, and a worker drops the field where there is none)."""
    try:
        return state.items.has_attributes()
    except Exception:  # Milvus down or slow: not this request's concern
        return True


NO_ATTRIBUTES = (
    "the live items collection was created before custom attributes: run a re-index "
    "(POST /v1/admin/reindex) to build one that stores them"
)


def delete_item(state: AppState, *, item_id: str) -> list[str]:
    """Tombstone the item for serving, then queue its removal from Milvus.

    The tombstone comes first (the catalogue's slot), the event second (the stream's): if the
    event cannot be stored the item stays hidden and the client gets a 503 to retry, which
    stores both again. The tombstone carries the event's own time, so a later PUT (with a
    later time) lifts it and an earlier one cannot.
    """
    now = time.time()
    try:
        pipe = state.redis.pipeline(transaction=False)
        pipe.zadd(state.keys.tombstones, {item_id: now})
        announce(pipe, state.keys, [item_id])
        pipe.execute()
        partition = state.keys.partition_of(item_id)
        entry_id = state.redis.xadd(
            state.keys.stream(partition),
            ev.encode(ev.ITEM_DELETED, {"item_id": item_id}, now=now),
        )
        entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        replicated(state, [ev.event_id(entry, partition)])
    except redis.RedisError as e:
        raise DependencyUnavailable(
            f"the event queue is unavailable ({type(e).__name__}); retry the delete"
        ) from e
    return [
        ev.event_id(entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id), partition)
    ]


def get_item(state: AppState, *, item_id: str) -> ItemOut:
    """The stored item; hidden items are returned (with their status), deleted ones are not."""
    row = state.items.get([item_id]).get(item_id)
    deleted = (
        row is not None
        and row.get("status") != "hidden"
        and bool(state.catalogue.tombstoned([item_id]))
    )
    if row is None or deleted:
        raise NotFound(
            f"item {item_id!r} does not exist (writes are applied asynchronously; "
            "a just-queued item appears within a second)"
        )
    return ItemOut.model_validate(row)
