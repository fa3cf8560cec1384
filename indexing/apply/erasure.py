"""Erasing a user (GDPR Art. 17): every trace of them, step by step, with a receipt.

The erasure is an event in the user's partition, so it is applied after every event of
theirs accepted before it; events accepted after it (the user came back) are a new life and
stay. Each step removes one kind of trace and records its counts in the receipt
(`core.stores.erasures`); a worker that crashes midway leaves the event pending, and the
worker that takes it over skips the steps recorded and runs the rest (each step is
idempotent: what is gone stays gone). The erasure event itself is removed from the stream
last, once the receipt says complete.

Kept on purpose: popularity, trending and surface counters (per-item and per-surface totals,
no user id in them). The exactly-once markers of the user's events in the `boards` slot are
named by event id only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from core import events as ev
from core.domain import is_session
from core.keys import RECS_SHARDS
from core.redis_typed import StreamEntry, text
from core.stores.erasures import STEPS, ErasureRecords
from core.stores.eventlog import compact, request_erasure
from embeddings.ials import forget_user
from indexing.apply.stores import Stores

log = logging.getLogger(__name__)

CHUNK = 1000


def apply_erasures(s: Stores, run: Sequence[ev.Event]) -> None:
    """Erase the user of each event, in order."""
    for e in run:
        erase(s, str(e.data["user_id"]), str(e.data.get("erasure", "")), e)


def erase(s: Stores, user_id: str, token: str, event: ev.Event) -> None:
    records = ErasureRecords(s.redis, s.keys)
    done = records.done_steps(user_id, token)
    recording = done is not None  # None: a newer request replaced this one; still erase
    steps: dict[str, Callable[[], dict[str, int]]] = {
        "stream_events": lambda: _stream_events(s, user_id, event),
        "redis_keys": lambda: {"redis_keys": _delete_scan(s, s.keys.user_key_pattern(user_id))},
        "index_entries": lambda: _index_entries(s, user_id),
        "milvus_user_rows": lambda: _milvus_rows(s, user_id),
        "served_lists": lambda: _served_lists(s, user_id),
        "model_artefacts": lambda: _model_artefacts(s, user_id),
        "event_log": lambda: _event_log(s, user_id, event.enqueued_at or time.time()),
    }
    for name in STEPS:
        if recording and name in (done or ()):
            continue
        counts = steps[name]()
        if recording:
            records.record_step(user_id, name, counts)
    if recording:
        delay = s.settings.log_compaction_delay_s
        free = s.log is None or delay <= 0
        records.complete(user_id, log_free=free, log_free_by=time.time() + delay + 15)
    # Last: the erasure's own entry names the user (its acknowledgement follows).
    s.redis.xdel(s.keys.stream(event.partition), event.id)
    log.info("erased a user (receipt %s)", records.key(user_id))


def log_records(done: Sequence[ev.Event]) -> list[dict[str, Any]]:
    """The durable-log lines of applied events: not erasures, not the events of a user
    erased later in the same batch (applied, then erased; logging them would undo that), and
    not a guest session's (a merge logs its copies under the user)."""
    last_erased: dict[Any, int] = {}
    for i, e in enumerate(done):
        if e.type == ev.USER_ERASED:
            last_erased[e.data.get("user_id")] = i
    return [
        {"id": e.key, "type": e.type, "data": e.data, "t": e.enqueued_at}
        for i, e in enumerate(done)
        if e.type != ev.USER_ERASED
        and i > last_erased.get(e.data.get("user_id"), -1)
        and not is_session(str(e.data.get("user_id", "")))  # guests' events expire with them
    ]


def _names_user(fields: dict[Any, Any], user_id: str) -> bool:
    raw = text(fields.get(b"data", fields.get("data", b"")))
    try:
        data = json.loads(raw)
    except ValueError:
        return user_id in raw  # undecodable (a dead letter): any mention of the id
    return isinstance(data, dict) and data.get("user_id") == user_id


def _stream_events(s: Stores, user_id: str, event: ev.Event) -> dict[str, int]:
    """The user's entries in their partition's stream before the erasure, and dead letters."""
    stream, dead = s.keys.stream(event.partition), s.keys.dead_letters(event.partition)
    return {
        "stream_events": _xdel_matching(s, stream, f"({event.id}", user_id),
        "dead_letters": _xdel_matching(s, dead, "+", user_id),
    }


def _chunks(s: Stores, stream: str, last: str = "+") -> Iterator[list[StreamEntry]]:
    """A stream's entries up to `last`, CHUNK at a time."""
    start = "-"
    while True:
        rows = cast(list[StreamEntry], s.redis.xrange(stream, min=start, max=last, count=CHUNK))
        yield rows
        if len(rows) < CHUNK:
            return
        start = f"({text(rows[-1][0])}"


def _xdel_matching(s: Stores, stream: str, last: str, user_id: str) -> int:
    removed = 0
    for rows in _chunks(s, stream, last):
        doomed = [eid for eid, fields in rows if _names_user(fields, user_id)]
        if doomed:
            removed += int(s.redis.xdel(stream, *doomed))
    return removed


def _delete_scan(s: Stores, pattern: str) -> int:
    """Delete every key matching `pattern` (all nodes of a cluster); how many."""
    keys = list(s.redis.scan_iter(match=pattern, count=CHUNK))
    for i in range(0, len(keys), 500):
        # One DEL per key: on a cluster a multi-key DEL must stay in one slot.
        pipe = s.redis.pipeline(transaction=False)
        for k in keys[i : i + 500]:
            pipe.delete(k)
        pipe.execute()
    return len(keys)


def _index_entries(s: Stores, user_id: str) -> dict[str, int]:
    owner = f"u:{user_id}"
    pipe = s.redis.pipeline(transaction=False)
    pipe.srem(s.keys.users_index, user_id)
    pipe.hdel(s.keys.history_resets, user_id)
    pipe.zrem(s.keys.candidates_stale, owner)
    pipe.zrem(s.keys.candidates_next, owner)
    pipe.hdel(s.keys.candidates_taken, owner)
    return {"index_entries": sum(int(n) for n in pipe.execute())}


def _milvus_rows(s: Stores, user_id: str) -> dict[str, int]:
    s.user_sync.pending.discard(user_id)  # not mirrored back from a (gone) hot copy
    n = s.users.delete([user_id])
    s.mark_written()
    return {"milvus_user_rows": n}


def _served_lists(s: Stores, user_id: str) -> dict[str, int]:
    """Impressions and attribution records of the user's lists, and their cached lists."""
    impressions = attribution = 0
    for shard in range(RECS_SHARDS):
        stream = s.keys.impressions(shard)
        for rows in _chunks(s, stream):
            mine = [(eid, _json(f)) for eid, f in rows]
            mine = [(eid, d) for eid, d in mine if d.get("user") == user_id]
            if mine:
                impressions += int(s.redis.xdel(stream, *[eid for eid, _ in mine]))
                pipe = s.redis.pipeline(transaction=False)
                for _, d in mine:
                    pipe.delete(s.keys.rec_info(str(d.get("id", ""))))
                    pipe.delete(s.keys.pages(str(d.get("id", ""))))  # a paged list's rest
                attribution += sum(int(n) for n in pipe.execute()[::2])  # rec_info deletes
    return {
        "impressions": impressions,
        "attribution_records": attribution,
        "cached_lists": cached_lists(s, user_id),
    }


def _json(fields: dict[Any, Any]) -> dict[str, Any]:
    try:
        d = json.loads(text(fields.get(b"data", fields.get("data", b"{}"))))
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def cached_lists(s: Stores, user_id: str) -> int:
    """Result-cache entries and last good lists of the user (both carry `user_id`)."""
    keys = list(s.redis.scan_iter(match=s.keys.result_cache("*"), count=CHUNK))
    removed = 0
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        pipe = s.redis.pipeline(transaction=False)
        for k in chunk:
            pipe.get(k)
        doomed = [k for k, v in zip(chunk, pipe.execute(), strict=True) if _owned(v, user_id)]
        pipe = s.redis.pipeline(transaction=False)
        for k in doomed:
            pipe.delete(k)
        removed += sum(int(n) for n in pipe.execute())
    return removed


def _owned(raw: bytes | None, user_id: str) -> bool:
    if not raw:
        return False
    try:
        d = json.loads(raw)
    except ValueError:
        return False
    return isinstance(d, dict) and d.get("user_id") == user_id


def _model_artefacts(s: Stores, user_id: str) -> dict[str, int]:
    """Interaction models written with per-user rows (before models stopped keeping them)."""
    root = s.registry.root / "cf" if s.registry is not None else None
    dirs: Iterable[Path] = sorted(root.iterdir()) if root is not None and root.is_dir() else ()
    return {"model_artefacts": sum(forget_user(d, user_id) for d in dirs if d.is_dir())}


def _event_log(s: Stores, user_id: str, before: float) -> dict[str, int]:
    """Put the user on the log's erasure list; compact now when no delay is set."""
    if s.log is None:
        return {}
    request_erasure(s.log.root, user_id, before=before)
    if s.settings.log_compaction_delay_s <= 0:
        done = compact(s.log.root)
        ErasureRecords(s.redis, s.keys).log_compacted(done.users, time.time())
    return {}
