"""Guests' sessions on the API: their activity (for the expiry sweep) and their merge into a
user once they sign in (`POST /v1/users/{user_id}/merge`), folded in by the worker of the
session's partition (indexing/apply/sessions.py)."""

from __future__ import annotations

import time

import redis

from app.services.queue import enqueue
from app.state import AppState
from core import events as ev
from core.domain import session_owner
from core.errors import Conflict, DependencyUnavailable
from core.stores.sessions import Merge, SessionStore


def store(state: AppState) -> SessionStore:
    return SessionStore(state.redis, state.keys, state.settings.sessions.ttl_s)


def touch_sessions(state: AppState, session_ids: set[str]) -> None:
    try:
        store(state).touch(session_ids)
    except redis.RedisError as e:
        raise DependencyUnavailable(
            f"the event queue is unavailable ({type(e).__name__}); nothing was stored, retry later"
        ) from e


def merge_session(state: AppState, user_id: str, session_id: str) -> tuple[Merge, bool]:
    """Queue the merge of `session_id` into `user_id`; (the merge, True if queued now).

    A repeat for the same user answers the recorded merge (queued again while the worker has
    not applied it: the worker applies it once whatever the count), unless the guest went on
    using the session after it was applied: then a new merge folds in what came since. A
    session already merged into another user is a conflict."""
    sessions = store(state)
    try:
        got, _ = sessions.claim_merge(session_id, user_id)
        if got.user_id != user_id:
            raise Conflict(
                f"session {session_id} was merged into another user; a session merges into "
                "one user only"
            )
        if got.applied:
            seen = sessions.last_seen(session_id)
            if seen is None or seen <= got.at:
                return got, False
            got = Merge(user_id=user_id, at=time.time())  # events since: merge those too
            sessions.update_merge(session_id, got)  # before its event, which checks it
        got.event_ids = enqueue(state, [ev.merge_event(session_owner(session_id), user_id)])
        sessions.update_merge(session_id, got)
        return got, True
    except redis.RedisError as e:
        raise DependencyUnavailable(
            f"redis is unavailable ({type(e).__name__}); the merge was not queued, retry later"
        ) from e
