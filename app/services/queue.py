"""Appending events to the stream: the only way the API writes state it does not own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from app.state import AppState
from core import events as ev
from core.errors import Conflict, DependencyUnavailable
from core.replication import wait_for_replicas


def replicated(state: AppState, ids: Sequence[str]) -> None:
    """Wait (bounded) until the configured number of replicas hold the events `ids` name."""
    s = state.settings.redis
    if s.wait_replicas:
        streams = {state.keys.stream(ev.split_id(i)[1]) for i in ids}
        wait_for_replicas(state.redis, state.keys, s.wait_replicas, s.wait_timeout_ms, streams)


def enqueue(state: AppState, events: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """Append events; an event is accepted only once Redis has stored it (and, if so
    configured, a replica)."""
    try:
        ids = ev.publish(state.redis, state.keys, events)
        replicated(state, ids)
        return ids
    except redis.RedisError as e:
        raise DependencyUnavailable(
            f"the event queue is unavailable ({type(e).__name__}); nothing was stored, retry later"
        ) from e


def enqueue_once(
    state: AppState,
    events: Sequence[tuple[str, dict[str, Any]]],
    *,
    key: str,
    caller: str,
    fingerprint: str,
) -> ev.Published:
    """Append events unless a request from the same caller (API key id) with the same
    Idempotency-Key already did (then its ids)."""
    try:
        done = ev.publish_once(
            state.redis,
            state.keys,
            events,
            key=f"{caller}\x00{key}",
            fingerprint=fingerprint,
            ttl_s=state.settings.serving.idempotency_ttl_s,
        )
        replicated(state, done.ids)
        return done
    except ev.IdempotencyConflict as e:
        raise Conflict(str(e)) from e
    except redis.RedisError as e:
        raise DependencyUnavailable(
            f"the event queue is unavailable ({type(e).__name__}); nothing was stored, retry later"
        ) from e
