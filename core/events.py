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
from core.tracing import traceparent

ITEM_UPSERTED = "item.upserted"
ITEM_DELETED = "item.deleted"
USER_UPDATED = "user.updated"
INTERACTION_LOGGED = "interaction.logged"
# Erasing a user goes through the user's partition: it comes after every event of theirs
# accepted before it, so nothing applied later brings their data back.
USER_ERASED = "user.erased"
# Resetting a user's history (their own control) goes the same way, for the same reason.
USER_RESET = "user.reset"
# A guest's session folded into a user, and a session's expiry: in the session's partition
# (`user_id` is the session's owner id), after every event of the session accepted before.
SESSION_MERGED = "session.merged"
SESSION_EXPIRED = "session.expired"
EVENT_TYPES = (
    ITEM_UPSERTED,
    ITEM_DELETED,
    USER_UPDATED,
    INTERACTION_LOGGED,
    USER_ERASED,
    USER_RESET,
    SESSION_MERGED,
    SESSION_EXPIRED,
)


class PoisonEvent(ValueError):
    """A stream entry that can never be applied (unknown type, undecodable payload)."""


@dataclass(frozen=True)
class Event:
    id: str  # the entry's id in its partition's stream
    type: str
    data: dict[str, Any]
    enqueued_at: float
    # A replayed dead letter keeps the id it was first accepted under: exactly-once markers,
    # item versions and the log all use `key`, so a replay can never count twice.
    origin: str | None = None
    partition: int = 0
    # The W3C traceparent of the request that queued it (tracing on): the worker links to it.
    traceparent: str | None = None

    @property
    def key(self) -> str:
        """The event's identity in every store: unique across partitions."""
        return self.origin or event_id(self.id, self.partition)


def event_id(entry_id: str, partition: int) -> str:
    """The id an event is known by: its stream entry id, with `-<partition>` appended on
    partitions other than 0 (entry ids are unique only within one stream). It still starts
    with `<ms>-<seq>`, so ids of one partition compare by time."""
    return entry_id if partition == 0 else f"{entry_id}-{partition}"


def split_id(eid: str) -> tuple[str, int]:
    """(stream entry id, partition) of an event id; ValueError if it is not one."""
    parts = eid.split("-")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError(f"{eid!r} is not an event id (<ms>-<seq>[-<partition>])")
    return f"{parts[0]}-{parts[1]}", int(parts[2]) if len(parts) == 3 else 0


def routing_key(kind: str, data: dict[str, Any]) -> str:
    """What decides an event's partition: its user for interactions and profiles, its item
    for catalogue changes (so each one's events keep their order)."""
    key = data.get("item_id") if kind in (ITEM_UPSERTED, ITEM_DELETED) else data.get("user_id")
    return str(key)


def partition_of(keys: Keys, kind: str, data: dict[str, Any]) -> int:
    return keys.partition_of(routing_key(kind, data))


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
    tp = traceparent()
    if tp:
        out["tp"] = tp
    return out


def decode(entry_id: str | bytes, fields: dict[Any, Any], partition: int = 0) -> Event:
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
    return Event(eid, kind, data, enqueued, f.get("origin") or None, partition, f.get("tp") or None)


def interaction_owner(
    entry_id: str | bytes, fields: dict[Any, Any], partition: int = 0
) -> tuple[str, str] | None:
    """(user id, event key) of an interaction entry, whose exactly-once marker lives in that
    user's slot; None for other or undecodable entries."""
    try:
        event = decode(entry_id, fields, partition)
    except PoisonEvent:
        return None
    user = event.data.get("user_id")
    if event.type != INTERACTION_LOGGED or not isinstance(user, str):
        return None
    return user, event.key


def by_partition(keys: Keys, events: Sequence[tuple[str, dict[str, Any]]]) -> dict[int, list[int]]:
    """The positions of `events` per partition, in order (so each user's order holds)."""
    out: dict[int, list[int]] = {}
    for i, (kind, data) in enumerate(events):
        out.setdefault(partition_of(keys, kind, data), []).append(i)
    return out


def _ids(raw: Sequence[Any]) -> list[str]:
    return [i.decode() if isinstance(i, bytes) else str(i) for i in raw]


def publish(
    client: redis.Redis, keys: Keys, events: Sequence[tuple[str, dict[str, Any]]]
) -> list[str]:
    """Append events to their partitions' streams; their event ids in order.

    All or nothing per partition (one transaction each), and for the whole batch on one Redis
    server (one transaction over every partition): a failure never leaves half of a partition's
    share stored behind a 503. On a cluster a batch spanning partitions can be stored in part:
    a retry with an Idempotency-Key (`publish_once`) completes it exactly once.
    """
    parts = by_partition(keys, events)
    groups = [list(parts.items())] if not is_cluster(client) else [[g] for g in parts.items()]
    out: list[str] = [""] * len(events)
    for group in groups:
        pipe = client.pipeline(transaction=True)
        for p, positions in group:
            for i in positions:
                pipe.xadd(keys.stream(p), encode(*events[i]))
        stored = iter(_ids(pipe.execute()))
        for p, positions in group:
            for i in positions:
                out[i] = event_id(next(stored), p)
    return out


def is_cluster(client: Any) -> bool:
    return isinstance(client, redis.RedisCluster)


# Append one partition's share of a batch unless its idempotency key was seen: one atomic
# script, so a retry either finds the first attempt's ids or the first attempt stored nothing
# there. KEYS: idempotency key, stream. ARGV: ttl seconds, fingerprint, then type, data, t per
# event. Returns {created, 'fingerprint|id,id,...'}; a different fingerprint stores nothing.
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

    Each partition's share is stored once under its own record of the key, so a retry after a
    failure part-way through a batch stores exactly the shares that are missing. `fingerprint`
    identifies the request's content; a repeat with another fingerprint raises
    IdempotencyConflict (the key was reused for a different request; nothing more is stored).
    """
    digest = hashlib.sha256(key.encode()).hexdigest()
    parts = by_partition(keys, events)
    if len(parts) > 1:  # a reused key must not store a share before its conflict shows
        seen = [client.get(keys.idempotency(p, digest)) for p in parts]
        if any(s is not None and _first(s) != fingerprint for s in seen):
            raise _conflict()
    out: list[str] = [""] * len(events)
    created = False
    for p, positions in parts.items():
        args: list[Any] = [ttl_s, fingerprint]
        for i in positions:
            f = encode(*events[i])
            args += [f["type"], f["data"], f["t"]]
        new, stored = client.eval(
            _PUBLISH_ONCE, 2, keys.idempotency(p, digest), keys.stream(p), *args
        )
        first, _, ids = _text(stored).partition("|")
        if first != fingerprint:
            raise _conflict()
        created = created or bool(new)
        for i, sid in zip(positions, ids.split(",") if ids else [], strict=True):
            out[i] = event_id(sid, p)
    return Published(out, replayed=not created)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _first(stored: Any) -> str:
    return _text(stored).partition("|")[0]


def _conflict() -> IdempotencyConflict:
    return IdempotencyConflict(
        "this Idempotency-Key was already used for a different request; "
        "use a new key for new events"
    )


def item_event(item: Item) -> tuple[str, dict[str, Any]]:
    return ITEM_UPSERTED, item.model_dump(mode="json")


def interaction_event(ev: Interaction, *, now: float | None = None) -> tuple[str, dict[str, Any]]:
    data = ev.model_dump(mode="json")
    if data["device"] is None:  # left out: a worker of the previous release reads the event
        del data["device"]
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


def erasure_event(user_id: str, token: str) -> tuple[str, dict[str, Any]]:
    """Erase a user (`token`: the request in the user's erasure receipt)."""
    return USER_ERASED, {"user_id": user_id, "erasure": token}


def merge_event(session_owner: str, user_id: str) -> tuple[str, dict[str, Any]]:
    return SESSION_MERGED, {"user_id": session_owner, "into": user_id, "at": time.time()}


def expiry_event(session_owner: str, last_seen: float) -> tuple[str, dict[str, Any]]:
    """`last_seen`: the session's last event time the sweep saw (a later one keeps it)."""
    return SESSION_EXPIRED, {"user_id": session_owner, "last_seen": last_seen}


def reset_event(user_id: str) -> tuple[str, dict[str, Any]]:
    """Reset a user's history: their learned profile starts from scratch."""
    return USER_RESET, {"user_id": user_id, "at": time.time()}


def user_of(event: Event) -> tuple[User, int | None]:
    """The profile of a USER_UPDATED event and the version it was written with (if any)."""
    data = dict(event.data)
    version = data.pop(PROFILE_VERSION, None)
    return User.model_validate(data), int(version) if version is not None else None
