"""User profiles: written to Redis at once (so reads see them) and mirrored by the worker."""

from __future__ import annotations

import time
from typing import Any

import redis

from app.schemas import HistoryEntry, UserOut
from app.services.queue import enqueue
from app.state import AppState
from core import events as ev
from core.domain import User, UserFields
from core.errors import DependencyUnavailable, NotFound
from core.redis_typed import text, watch
from core.stores.erasures import ErasureRecords, receipt


def put_user(state: AppState, *, user: User) -> list[str]:
    version = _write_profile(state, user)
    ids = enqueue(state, [ev.user_event(user, version)])
    state.redis.sadd(state.keys.users_index, user.user_id)
    return ids


def patch_user(state: AppState, *, user_id: str, changes: dict[str, Any]) -> list[str]:
    """Merge `changes` (the fields sent; null clears one) into the stored profile.

    Read, merge and write are one optimistic transaction on the user's hash, so concurrent
    patches never lose a field; the event then carries the profile version it wrote, so the
    worker applies them in version order whatever order they reach the stream in.
    """
    key = state.keys.user(user_id)
    with state.redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                watch(pipe, key)
                raw = pipe.hget(key, "profile")
                current = UserFields.model_validate_json(raw) if raw else UserFields()
                merged = User.model_validate(
                    {**current.model_dump(), **changes, "user_id": user_id}
                )
                pipe.multi()
                _queue_profile(pipe, key, merged)
                version = int(pipe.execute()[-1])
                break
            except redis.WatchError:
                continue
    ids = enqueue(state, [ev.user_event(merged, version)])
    state.redis.sadd(state.keys.users_index, user_id)
    return ids


def _write_profile(state: AppState, user: User) -> int:
    """Store the profile in the user's hash at once (reads see it); its new version."""
    pipe = state.redis.pipeline(transaction=True)
    _queue_profile(pipe, state.keys.user(user.user_id), user)
    return int(pipe.execute()[-1])


def _queue_profile(pipe: Any, key: str, user: User) -> None:
    pipe.hset(key, "profile", user.model_dump_json(exclude={"user_id"}))
    # Age and region change what may be shown: make cached lists unreachable at once.
    pipe.hincrby(key, "ver", 1)
    pipe.hincrby(key, "pver", 1)  # the profile's own version (ordering of its events)


def get_user(state: AppState, *, user_id: str, recent: int = 20) -> UserOut:
    pipe = state.redis.pipeline(transaction=False)
    pipe.hmget(state.keys.user(user_id), "profile", "cvec")
    if recent > 0:
        pipe.zrevrange(state.keys.history(user_id), 0, recent - 1, withscores=True)
        pipe.hgetall(state.keys.devices(user_id))  # at most history_len small entries
    (profile, cvec), *rest = pipe.execute()
    hist, on = (rest[0], rest[1]) if rest else ([], {})
    if profile is None and not hist:
        raise NotFound(f"user {user_id!r} has no profile and no interactions")
    return UserOut(
        user_id=user_id,
        profile=UserFields.model_validate_json(profile) if profile else None,
        recent=[
            HistoryEntry(item_id=i.decode(), timestamp=t, device=text(on[i]) if i in on else None)
            for i, t in hist
        ],
        has_profile_vector=cvec is not None,
    )


def erase_user(state: AppState, *, user_id: str, wait_s: float) -> dict[str, Any]:
    """Erase every trace of a user: a new erasure request, applied by the worker of the user's
    partition after the events accepted before it. Waits up to `wait_s` for the receipt to say
    complete; the receipt as it stands then."""
    records = ErasureRecords(state.redis, state.keys)
    try:
        token = records.begin(user_id)
    except redis.RedisError as e:
        raise DependencyUnavailable(f"Redis is unavailable ({type(e).__name__}); retry") from e
    enqueue(state, [ev.erasure_event(user_id, token)])
    deadline = time.monotonic() + wait_s
    while True:
        rec = records.raw(user_id)
        if rec.get("status") == "completed" or time.monotonic() >= deadline:
            return receipt(user_id, rec)
        time.sleep(0.05)


def erasure_receipt(state: AppState, *, user_id: str) -> dict[str, Any]:
    rec = ErasureRecords(state.redis, state.keys).raw(user_id)
    if not rec:
        raise NotFound(f"no erasure of user {user_id!r} is on record")
    return receipt(user_id, rec)
