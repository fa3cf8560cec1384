"""User profile updates, with the cold-start vectors of the categories chosen at onboarding."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from core.domain import User
from core.filters import Filter
from indexing.apply.stores import Stores, persist_users

PREFERENCE_ITEMS = 20  # items that stand for one preferred category


def apply_user_updates(
    s: Stores, users: Sequence[User], versions: Sequence[int | None] | None = None
) -> None:
    """Store profiles in Redis (hot copy) and Milvus (durable copy), with onboarding vectors.

    `versions`: the profile version each was written with by the API (None: unversioned, as
    read from the stream, applied in order); a profile older than the user's hash says is
    skipped (a newer write reached the stream first and is applied on its own).
    """
    if not users:
        return
    latest = _newest(s, users, versions or [None] * len(users))
    if not latest:
        return
    prefs = preference_vectors(s, list(latest.values()))
    pipe = s.redis.pipeline(transaction=False)
    for u in latest.values():
        key = s.keys.user(u.user_id)
        pipe.hset(key, "profile", u.model_dump_json(exclude={"user_id"}))
        pvec = prefs.get(u.user_id)
        if pvec is None:
            pipe.hdel(key, "pvec")
        else:
            pipe.hset(key, "pvec", pvec.astype(np.float32).tobytes())
        pipe.hincrby(key, "ver", 1)
        pipe.sadd(s.keys.users_index, u.user_id)
    pipe.execute()
    persist_users(s, list(latest))


def _newest(s: Stores, users: Sequence[User], versions: Sequence[int | None]) -> dict[str, User]:
    best: dict[str, tuple[User, int | None]] = {}
    for u, v in zip(users, versions, strict=True):
        seen = best.get(u.user_id)
        if seen is None or v is None or seen[1] is None or v >= seen[1]:
            best[u.user_id] = (u, v)
    versioned = [uid for uid, (_, v) in best.items() if v is not None]
    if versioned:
        pipe = s.redis.pipeline(transaction=False)
        for uid in versioned:
            pipe.hget(s.keys.user(uid), "pver")
        for uid, stored in zip(versioned, pipe.execute(), strict=True):
            if stored is not None and int(stored) > (best[uid][1] or 0):
                del best[uid]
    return {uid: u for uid, (u, _) in best.items()}


def preference_vectors(s: Stores, users: Sequence[User]) -> dict[str, npt.NDArray[np.float32]]:
    """Cold-start content vectors from the categories users chose at onboarding.

    Each category is the normalised mean of up to `PREFERENCE_ITEMS` of its items (what
    trends in it, else any active items of that primary category); a user's vector is the
    normalised mean of their categories', so every chosen category weighs the same. Users
    without categories, or whose categories have no known items yet, get none.
    """
    cats = sorted({c for u in users for c in u.preferences.categories})
    if not cats:
        return {}
    members = _category_items(s, cats)
    vecs = s.content_vectors(i for ids in members.values() for i in ids)
    centroids: dict[str, npt.NDArray[np.float32]] = {}
    for c, ids in members.items():
        known = [vecs[i] for i in ids if i in vecs]
        unit = _unit(np.mean(known, axis=0)) if known else None
        if unit is not None:
            centroids[c] = unit
    out: dict[str, npt.NDArray[np.float32]] = {}
    for u in users:
        chosen = [centroids[c] for c in u.preferences.categories if c in centroids]
        unit = _unit(np.mean(chosen, axis=0)) if chosen else None
        if unit is not None:
            out[u.user_id] = unit
    return out


def _category_items(s: Stores, cats: Sequence[str]) -> dict[str, list[str]]:
    """Up to `PREFERENCE_ITEMS` item ids per category: its trending top, else from Milvus
    (kept a few minutes: `CategoryMembers`)."""
    pipe = s.redis.pipeline(transaction=False)
    for c in cats:
        pipe.zrevrange(s.keys.trending(f"cat:{c}"), 0, PREFERENCE_ITEMS - 1)
    out: dict[str, list[str]] = {}
    for c, top in zip(cats, pipe.execute(), strict=True):
        out[c] = [i.decode() for i in top] or s.category_members.get(
            s.items.collection, c, partial(_active_in, s, c)
        )
    return out


def _active_in(s: Stores, category: str) -> list[str]:
    where = Filter().eq("category", category).eq("status", "active")
    return s.items.ids_matching(where, limit=PREFERENCE_ITEMS)


def _unit(vec: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float32] | None:
    norm = float(np.linalg.norm(vec))
    return (vec / norm).astype(np.float32) if norm > 0 else None
