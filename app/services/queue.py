"""Appending events to the stream: the only way the API writes state it does not own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from app.state import AppState
from core import events as ev
from core.errors import Conflict, DependencyUnavailable


def enqueue(state: AppState, events: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """Append events; an event is accepted only once Redis has stored it."""
    try:
        return ev.publish(state.redis, state.keys, events)
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
        return ev.publish_once(
            state.redis,
            state.keys,
            events,
            key=f"{caller}\x00{key}",
            fingerprint=fingerprint,
            ttl_s=state.settings.serving.idempotency_ttl_s,
        )
    except ev.IdempotencyConflict as e:
        raise Conflict(str(e)) from e
    except redis.RedisError as e:
        raise DependencyUnavailable(
            f"the event queue is unavailable ({type(e).__name__}); nothing was stored, retry later"
        ) from e
