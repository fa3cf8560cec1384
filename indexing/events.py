"""Events on the Redis stream: dotted names, a JSON payload, encode/decode in one place."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from indexing.keys import Keys
from indexing.models import Interaction, Item, User

ITEM_UPSERTED = "item.upserted"
ITEM_DELETED = "item.deleted"
USER_UPDATED = "user.updated"
INTERACTION_LOGGED = "interaction.logged"
EVENT_TYPES = (ITEM_UPSERTED, ITEM_DELETED, USER_UPDATED, INTERACTION_LOGGED)


class PoisonEvent(ValueError):
    """A stream entry that can never be applied (unknown type, undecodable payload)."""


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    data: dict[str, Any]
    enqueued_at: float
    # A replayed dead letter keeps the id it was first accepted under: exactly-once markers,
    # item versions and the log all use `key`, so a replay can never count twice.
    origin: str | None = None

    @property
    def key(self) -> str:
        return self.origin or self.id


def encode(
    kind: str, data: dict[str, Any], *, now: float | None = None, origin: str | None = None
) -> dict[str, str]:
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown event type {kind}")
    out = {
        "type": kind,
        "data": json.dumps(data, separators=(",", ":")),
        "t": f"{time.time() if now is None else now:.6f}",
    }
    if origin:
        out["origin"] = origin
    return out


def decode(entry_id: str | bytes, fields: dict[Any, Any]) -> Event:
    """Decode one stream entry; raises PoisonEvent when it can never be applied."""
    eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    f = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }
    kind = f.get("type")
    if kind not in EVENT_TYPES:
        raise PoisonEvent(f"event {eid}: unknown type {kind!r}")
    try:
        data = json.loads(f.get("data", ""))
        if not isinstance(data, dict):
            raise ValueError("payload is not an object")
        enqueued = float(f.get("t", "0"))
    except ValueError as e:
        raise PoisonEvent(f"event {eid}: bad payload ({e})") from e
    return Event(eid, kind, data, enqueued, f.get("origin") or None)


def publish(
    client: redis.Redis, keys: Keys, events: Sequence[tuple[str, dict[str, Any]]]
) -> list[str]:
    """Append events to the stream atomically, in one round trip; their ids in order.

    All or nothing: a failure never leaves half a batch stored behind a 503, which the
    client's retry would then duplicate.
    """
    pipe = client.pipeline(transaction=True)
    for kind, data in events:
        pipe.xadd(keys.events, encode(kind, data))
    return [i.decode() if isinstance(i, bytes) else str(i) for i in pipe.execute()]


def item_event(item: Item) -> tuple[str, dict[str, Any]]:
    return ITEM_UPSERTED, item.model_dump(mode="json")


def interaction_event(ev: Interaction, *, now: float | None = None) -> tuple[str, dict[str, Any]]:
    data = ev.model_dump(mode="json")
    if data["timestamp"] is None:
        data["timestamp"] = time.time() if now is None else now
    return INTERACTION_LOGGED, data


def user_event(user: User) -> tuple[str, dict[str, Any]]:
    return USER_UPDATED, user.model_dump(mode="json")
