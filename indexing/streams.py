"""The event partitions as a worker sees them: read, acknowledge, reclaim, dead-letter, trim.

Each partition is a stream with one consumer group; its dead letters sit beside it (same
hash tag), so moving an entry to them is one transaction on one Redis Cluster slot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from core import events as ev
from core.keys import Keys
from core.redis_typed import Fields

Entry = tuple[Any, dict[Any, Any]]


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@dataclass(frozen=True)
class Partition:
    r: redis.Redis
    keys: Keys
    number: int
    group: str

    @property
    def stream(self) -> str:
        return self.keys.stream(self.number)

    @property
    def dead(self) -> str:
        return self.keys.dead_letters(self.number)

    def ensure_group(self) -> None:
        """Create the consumer group (from the stream's start) if it does not exist."""
        try:
            self.r.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def read(self, consumer: str, start: str, count: int, block_ms: int | None) -> list[Entry]:
        resp: Any = self.r.xreadgroup(
            self.group, consumer, {self.stream: start}, count=count, block=block_ms
        )
        return list(resp[0][1]) if resp else []

    def claim(self, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        """Take over this partition's entries pending for at least `min_idle_ms` (any consumer)."""
        claimed: list[Entry] = []
        cursor: Any = "0-0"
        while True:
            resp = self.r.xautoclaim(
                self.stream,
                self.group,
                consumer,
                min_idle_time=min_idle_ms,
                start_id=cursor,
                count=count,
            )
            cursor = resp[0]
            claimed.extend(e for e in resp[1] if e and e[1] is not None)
            if cursor in (b"0-0", "0-0") or not resp[1]:
                return claimed

    def delivery_counts(self, ids: Sequence[Any]) -> dict[str, int]:
        out: dict[str, int] = {}
        for eid in ids:
            rows = self.r.xpending_range(self.stream, self.group, min=eid, max=eid, count=1)
            if rows:
                out[_s(eid)] = int(rows[0]["times_delivered"])
        return out

    def dead_letter(self, entry: Entry, reason: str) -> None:
        """Move an entry to this partition's dead letters (kept with its event id as
        `original_id`, so a replay keeps its identity) and acknowledge it, atomically."""
        eid, fields = entry
        body: Fields = {
            **{_s(k): v for k, v in fields.items()},
            "original_id": ev.event_id(_s(eid), self.number),
            "error": reason[:2000],
        }
        pipe = self.r.pipeline(transaction=True)
        pipe.xadd(self.dead, body)
        pipe.xack(self.stream, self.group, eid)
        pipe.execute()

    def trim(self) -> int:
        """Drop entries every consumer group has delivered and acknowledged.

        Those are in the durable log already (workers log before they acknowledge), so the
        stream stays bounded without losing anything. Dead letters keep the newest 100k.
        """
        floor: tuple[int, int] | None = None
        for g in self.r.xinfo_groups(self.stream):
            marks = [g["last-delivered-id"]]
            if g["pending"]:
                marks.append(self.r.xpending(self.stream, g["name"])["min"])
            for m in marks:
                ms, seq = _s(m).split("-")
                floor = min(floor or (int(ms), int(seq)), (int(ms), int(seq)))
        removed = 0
        if floor is not None:
            removed = int(
                self.r.xtrim(self.stream, minid=f"{floor[0]}-{floor[1]}", approximate=False)
            )
        self.r.xtrim(self.dead, maxlen=100_000, approximate=True)
        return removed


def read_new(
    parts: Sequence[Partition], consumer: str, count: int, block_ms: int | None
) -> list[tuple[Partition, list[Entry]]]:
    """New entries of several partitions, blocking up to `block_ms` (None: not at all) until
    one has some.

    One XREADGROUP over every stream on a single Redis; on a cluster the streams live in
    different slots, so each is read alone: a pass that does not wait, then, if all were
    empty, a short wait on each in turn within `block_ms`.
    """
    if not parts:
        return []
    if not ev.is_cluster(parts[0].r) or len(parts) == 1:
        first = parts[0]
        by_stream = {p.stream: p for p in parts}
        resp: Any = first.r.xreadgroup(
            first.group, consumer, {p.stream: ">" for p in parts}, count=count, block=block_ms
        )
        return [(by_stream[_s(name)], list(rows)) for name, rows in resp or [] if rows]
    got = [(p, p.read(consumer, ">", count, None)) for p in parts]
    out = [(p, rows) for p, rows in got if rows]
    if out or block_ms is None:
        return out
    step = max(1, block_ms // len(parts))
    for p in parts:
        if rows := p.read(consumer, ">", count, step):
            return [(p, rows)]
    return []


def ack(pipe: Any, parts: Iterable[tuple[Partition, Sequence[str]]]) -> None:
    """Queue the acknowledgement of entries, per partition, on `pipe`."""
    for p, ids in parts:
        if ids:
            pipe.xack(p.stream, p.group, *ids)


def leave(r: Any, stream: str, group: str, consumer: str) -> bool:
    """Remove `consumer` from `group` once it holds nothing unacknowledged (a one-off consumer
    such as a command line's `cli-<pid>` would otherwise stay listed for good); a consumer
    with pending entries stays, so they are claimed by a worker, never dropped."""
    try:
        for c in r.xinfo_consumers(stream, group):
            if _s(c["name"]) == consumer:
                if int(c["pending"]):
                    return False
                r.xgroup_delconsumer(stream, group, consumer)
                return True
    except redis.ResponseError:  # no such stream or group
        pass
    return False
