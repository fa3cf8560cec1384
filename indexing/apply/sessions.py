"""Guests' sessions on the write path: a merge into a user, an expiry, and the sweep that
finds idle sessions.

A session is stored like a user under `~s:<session id>` and its events are applied by the
same scripts (real-time personalisation within the session for free); the interaction
script also appends each of its events to the session's journal. Both a merge and an expiry
are events in the session's partition, so they come after every event of the session
accepted before them.

A merge is exactly once: the worker copies the journal into the user's partition as new
interactions (`merged_from` set: the copies change the user's profile, never popularity,
trending or clicks, which counted the session's own events) with `publish_once` under a key
named by the merge event, so a redelivered merge event finds the copies stored and stores
nothing more; then it marks the merge applied and deletes the session. A guest who goes on
using the session afterwards can be merged again: the API records a new merge, whose event
folds in the events since (the old merge's event, if delivered again, is then ignored). The
session's events never reach the durable event log (they expire with it); the copies do,
under the user.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from core import events as ev
from core.domain import Interaction, session_of, session_owner
from core.stores.sessions import Merge, SessionStore
from indexing.apply.stores import Stores

log = logging.getLogger(__name__)
SWEEP_BATCH = 500


def store(s: Stores) -> SessionStore:
    return SessionStore(s.redis, s.keys, s.settings.session_ttl_s)


def apply_merges(s: Stores, run: Sequence[ev.Event]) -> None:
    for e in run:
        merge(s, str(e.data["user_id"]), str(e.data["into"]), e)


def merge(s: Stores, owner: str, user_id: str, event: ev.Event) -> int:
    """Fold the session's journal into `user_id` (once); the number of events copied."""
    sid = session_of(owner)
    if sid is None:
        raise ev.PoisonEvent(f"{owner!r} is not a session")
    sessions = store(s)
    record = sessions.merge(sid)
    if record is not None and record.applied:
        forget(s, owner, event.enqueued_at)  # a crash may have come before this step
        return 0
    if record is not None and event.enqueued_at < record.at:
        return 0  # an earlier merge's event delivered again: a newer merge was asked since
    copies = _copies(s, owner, user_id)
    if copies:
        ids = ev.publish_once(
            s.redis,
            s.keys,
            copies,
            key=f"merge\x00{event.key}",
            fingerprint=hashlib.sha256(json.dumps(copies).encode()).hexdigest(),
            ttl_s=s.settings.dedup_ttl_s,
        ).ids
    else:
        ids = []
    if record is None or record.user_id != user_id:  # the record expired: the event decides
        record = Merge(user_id=user_id, at=event.enqueued_at)
    record.applied, record.copied = True, len(copies)
    sessions.update_merge(sid, record)
    forget(s, owner, event.enqueued_at)
    log.info("merged a session into a user: %d events (%d ids)", len(copies), len(ids))
    return len(copies)


def _copies(s: Stores, owner: str, user_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The session's journal as the user's interactions (in the order they were applied)."""
    out = []
    for raw in s.redis.lrange(s.keys.session_journal(owner), 0, -1):
        data = json.loads(raw)
        data.pop("recommendation_id", None)  # its click was attributed to the session's list
        copy = Interaction.model_validate({**data, "user_id": user_id, "merged_from": owner})
        out.append(ev.interaction_event(copy))
    return out


def apply_expiries(s: Stores, run: Sequence[ev.Event]) -> None:
    for e in run:
        owner, last_seen = str(e.data["user_id"]), float(e.data["last_seen"])
        sid = session_of(owner)
        if sid is None:
            raise ev.PoisonEvent(f"{owner!r} is not a session")
        seen = store(s).last_seen(sid)
        if seen is not None and seen > last_seen:
            continue  # an event arrived since the sweep looked: the session lives on
        forget(s, owner, last_seen)


def forget(s: Stores, owner: str, before: float) -> None:
    """Delete a session's state (idempotent); it leaves the index unless active since
    `before`. Its cached lists expire with the result cache's ttl."""
    k = s.keys
    pipe = s.redis.pipeline(transaction=True)
    pipe.delete(k.user(owner), k.history(owner), k.affinity(owner), k.confidence(owner))
    pipe.delete(k.devices(owner))
    pipe.delete(k.negatives(owner), k.controls(owner), k.session_journal(owner))
    pipe.delete(k.candidates(f"u:{owner}"))
    pipe.execute()
    pipe = s.redis.pipeline(transaction=False)
    pipe.zrem(k.candidates_stale, f"u:{owner}")
    pipe.zrem(k.candidates_next, f"u:{owner}")
    pipe.hdel(k.candidates_taken, f"u:{owner}")
    pipe.execute()
    sid = session_of(owner)
    if sid is not None:
        store(s).unindex(sid, before)


def sweep_idle(s: Stores, now: float | None = None) -> int:
    """Queue the expiry of sessions idle for sessions.ttl_s (one sweeper at a time, a batch
    per call); how many were queued."""
    now = time.time() if now is None else now
    if not s.redis.set(s.keys.sessions + ":sweep", 1, nx=True, px=10_000):
        return 0
    idle = store(s).idle(now - s.settings.session_ttl_s, SWEEP_BATCH)
    if idle:
        ev.publish(s.redis, s.keys, [ev.expiry_event(session_owner(i), t) for i, t in idle])
    return len(idle)
