"""Erasure receipts: what erasing a user removed, where, and when, kept in Redis.

A receipt is a hash under the SHA-256 of the user id (`Keys.erasure`): the id itself is what
was erased, so nothing here names the user. `DELETE /v1/users/{id}` starts a request (a new
token, counts cleared), the worker that applies the erasure event records each step as it
finishes it (a worker that crashes midway leaves the event pending; the next one skips the
steps already recorded and does the rest), then marks the erasure complete. The event log is
free of the user once a compaction has run (`core.stores.eventlog`), which the worker that
ran it records here too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from core.keys import Keys
from core.redis_typed import Fields, text
from core.stores.eventlog import user_digest

# Steps of an erasure, in the order the worker runs them; each records its counts.
STEPS = (
    "stream_events",  # the user's accepted events still in the stream, and dead letters
    "redis_keys",  # the user's slot: profile, vectors, history, affinity, confidence, ...
    "index_entries",  # the users index and the candidate refresh queue
    "milvus_user_rows",  # the durable copy of the user's vectors and profile
    "served_lists",  # impressions, attribution records, cached and last good lists
    "model_artefacts",  # interaction models that still hold a row for the user
    "event_log",  # the erasure list (lines are removed by the next compaction)
)

# Kept on purpose, and said so in every receipt.
KEPT = (
    "popularity and trending counters: per-item totals (aggregates) still include the user's "
    "past interactions; they hold no user id",
    "surface counters (impressions and clicks per surface, source and variant): aggregates",
    "trained ranker weights: fitted over every user, they hold no per-user row or id",
)


class ErasureRecords:
    """Erasure receipts on Redis (bytes client)."""

    def __init__(self, r: redis.Redis, keys: Keys):
        self.r = r
        self.keys = keys

    def key(self, user_id: str) -> str:
        return self.keys.erasure(user_digest(user_id))

    def begin(self, user_id: str) -> str:
        """Start a new erasure of a user (a repeat starts over: every step runs again, and
        finds nothing left to remove); its token."""
        token = uuid.uuid4().hex
        key = self.key(user_id)
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(key)
        now = time.time()
        pipe.hset(key, mapping={"status": "pending", "token": token, "requested_at": now})
        pipe.set(self.keys.erasure_latest, now)  # same slot: one transaction on a cluster too
        pipe.execute()
        return token

    def raw(self, user_id: str) -> dict[str, str]:
        return {text(k): text(v) for k, v in self.r.hgetall(self.key(user_id)).items()}

    def done_steps(self, user_id: str, token: str) -> set[str] | None:
        """Steps of this erasure already recorded; None when a newer request replaced it."""
        rec = self.raw(user_id)
        if rec.get("token") != token:
            return None
        return {f[len("step:") :] for f in rec if f.startswith("step:")}

    def record_step(self, user_id: str, step: str, counts: Mapping[str, int]) -> None:
        pipe = self.r.pipeline(transaction=True)
        key = self.key(user_id)
        for name, n in counts.items():
            pipe.hincrby(key, f"n:{name}", int(n))
        pipe.hset(key, f"step:{step}", 1)
        pipe.execute()

    def complete(self, user_id: str, *, log_free: bool, log_free_by: float) -> None:
        now = time.time()
        fields: Fields = {"status": "completed", "completed_at": now}
        fields |= {"log_free_at": now} if log_free else {"log_free_by": log_free_by}
        self.r.hset(self.key(user_id), mapping=fields)

    def log_compacted(self, lines: Mapping[str, int], at: float) -> None:
        """A compaction removed these users' lines (by digest): their logs are free."""
        pipe = self.r.pipeline(transaction=False)
        for digest in lines:
            pipe.exists(self.keys.erasure(digest))
        found = pipe.execute()
        pipe = self.r.pipeline(transaction=False)
        for (digest, n), exists in zip(lines.items(), found, strict=True):
            if exists:
                key = self.keys.erasure(digest)
                pipe.hincrby(key, "n:event_log_lines", n)
                pipe.hset(key, "log_free_at", at)
                pipe.hdel(key, "log_free_by")
        pipe.execute()

    def requested_since(self, user_ids: Iterable[str], since: float) -> set[str]:
        """Of these users, those whose erasure was asked for at or after `since`."""
        return {uid for uid, at in self.requested_at(user_ids).items() if at >= since}

    def requested_at(self, user_ids: Iterable[str]) -> dict[str, float]:
        """When the erasure of each of these users was last asked for (those ever erased)."""
        ids = list(user_ids)
        pipe = self.r.pipeline(transaction=False)
        for uid in ids:
            pipe.hget(self.key(uid), "requested_at")
        return {
            uid: float(at) for uid, at in zip(ids, pipe.execute(), strict=True) if at is not None
        }

    def latest(self) -> float | None:
        """When the latest erasure of anyone was asked for (None: never, or before this key)."""
        raw = self.r.get(self.keys.erasure_latest)
        return None if raw is None else float(raw)


def receipt(user_id: str, rec: Mapping[str, str]) -> dict[str, Any]:
    """The receipt of a stored record, as the API answers it."""
    counts = {f[2:]: int(v) for f, v in rec.items() if f.startswith("n:")}
    log_lines = counts.pop("event_log_lines", 0)
    log_free_at = _time(rec.get("log_free_at"))
    return {
        "user_id": user_id,
        "status": rec.get("status", "pending"),
        "requested_at": _time(rec.get("requested_at")),
        "completed_at": _time(rec.get("completed_at")),
        "removed": counts,
        "event_log": {
            "status": "free" if log_free_at is not None else "pending_compaction",
            "lines_removed": log_lines,
            "free_at": log_free_at,
            "free_by": _time(rec.get("log_free_by")),
        },
        "kept": list(KEPT),
    }


def _time(v: str | None) -> float | None:
    return float(v) if v is not None else None
