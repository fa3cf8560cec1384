"""Events on the Redis stream: dotted names, a JSON payload, encode/decode in one place."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from core.domain import Interaction, Item, User
from core.keys import Keys
from core.redis_typed import Fields

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
) -> Fields:
    """The stream entry of one event: its type, JSON payload, enqueue time and origin."""
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown event type {kind}")
    out: Fields = {
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


def interaction_owner(entry_id: str | bytes, fields: dict[Any, Any]) -> tuple[str, str] | None:
    """(user id, event key) of an interaction entry, whose exactly-once marker lives in that
    user's slot; None for other or undecodable entries."""
    try:
        event = decode(entry_id, fields)
    except PoisonEvent:
        return None
    user = event.data.get("user_id")
    if event.type != INTERACTION_LOGGED or not isinstance(user, str):
        return None
    return user, event.key


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


# Append a batch unless its idempotency key was seen: one atomic script, so a retry either
# finds the first attempt's ids or the first attempt stored nothing.
# KEYS: idempotency key, stream. ARGV: ttl seconds, fingerprint, then type, data, t per event.
_PUBLISH_ONCE = """
local got = redis.call('GET', KEYS[1])
if got then return {0, got} end
local ids = {}
for i = 3, #ARGV, 3 do
  ids[#ids + 1] = redis.call('XADD', KEYS[2], '*', 'type', ARGV[i], 'data', ARGV[i + 1],
                             't', ARGV[i + 2])
end
local stored = ARGV[2] .. '|' .. table.concat(ids, ',')
redis.call('SET', KEYS[1], stored, 'EX', ARGV[1])
return {1, stored}
"""


@dataclass(frozen=True)
class Published:
    """The stream ids of a batch; `replayed` when an earlier request with its key stored them."""

    ids: list[str]
    replayed: bool = False


class IdempotencyConflict(ValueError):
    """An idempotency key reused for a different request."""


def publish_once(
    client: redis.Redis,
    keys: Keys,
    events: Sequence[tuple[str, dict[str, Any]]],
    *,
    key: str,
    fingerprint: str,
    ttl_s: int,
) -> Published:
    """Append events once per `key` within `ttl_s`: a repeat returns the first attempt's ids.

    `fingerprint` identifies the request's content; a repeat with another fingerprint raises
    IdempotencyConflict (the key was reused for a different request, nothing is stored).
    """
    digest = hashlib.sha256(key.encode()).hexdigest()
    args: list[Any] = [ttl_s, fingerprint]
    for kind, data in events:
        f = encode(kind, data)
        args += [f["type"], f["data"], f["t"]]
    created, stored = client.eval(_PUBLISH_ONCE, 2, keys.idempotency(digest), keys.events, *args)
    text = stored.decode() if isinstance(stored, bytes) else str(stored)
    first, _, ids = text.partition("|")
    if first != fingerprint:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used for a different request; "
            "use a new key for new events"
        )
    return Published(ids.split(",") if ids else [], replayed=not created)


def item_event(item: Item) -> tuple[str, dict[str, Any]]:
    return ITEM_UPSERTED, item.model_dump(mode="json")


def interaction_event(ev: Interaction, *, now: float | None = None) -> tuple[str, dict[str, Any]]:
    data = ev.model_dump(mode="json")
    if data["timestamp"] is None:
        data["timestamp"] = time.time() if now is None else now
    return INTERACTION_LOGGED, data


# A profile event from the API carries the profile version it wrote to the user's hash (in
# the user's slot, before publishing): the worker skips an event older than the hash, so two
# concurrent writes that reach the stream out of order still leave the newer profile.
PROFILE_VERSION = "_v"


def user_event(user: User, version: int | None = None) -> tuple[str, dict[str, Any]]:
    data = user.model_dump(mode="json")
    if version is not None:
        data[PROFILE_VERSION] = version
    return USER_UPDATED, data


def user_of(event: Event) -> tuple[User, int | None]:
    """The profile of a USER_UPDATED event and the version it was written with (if any)."""
    data = dict(event.data)
    version = data.pop(PROFILE_VERSION, None)
    return User.model_validate(data), int(version) if version is not None else None
