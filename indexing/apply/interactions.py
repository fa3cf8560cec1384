"""Interactions, each applied exactly once in effect, then the profiles they change.

Interaction effects are counters, so each one is applied by scripts that first record its
event id: a redelivered event finds its marker and changes nothing. One script per Redis
Cluster slot (`core/keys.py`), each exactly-once on its own: the user's state
(`apply_interaction.lua`, in the user's slot), the global counters (`count_interactions.lua`,
one call per batch: popularity, users, trending) and the click on the served list the event cites
(`attribute_click.lua`, the record `core/served_list.py` defines). All are queued on one
pipeline: one round trip on a single Redis, one per node on a cluster.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from redis.client import Pipeline

from core.domain import Interaction, is_session
from core.scripts import APPLY_INTERACTION, ATTRIBUTE_CLICK, COUNT_INTERACTIONS, execute
from core.served_list import hour_of, hourly_ttl
from core.tracing import span
from core.trending import trending_scopes
from embeddings.confidence import confidence_weight
from embeddings.profile import content_profile
from indexing.apply.stores import Stores

NEGATIVE_TYPES = frozenset({"dislike", "skip"})
LIFTING_TYPES = frozenset({"like", "watch", "purchase"})
ATTRIBUTED_TYPES = frozenset({"click", "watch", "like", "purchase"})
ATTRIBUTED_MIN_RATING = 3.5


def lifts_negative(ev: Interaction) -> bool:
    """An explicit positive: it takes an earlier dislike or skip of the item back."""
    if ev.type == "rate":
        return ev.value is not None and ev.value >= ATTRIBUTED_MIN_RATING
    return ev.type in LIFTING_TYPES


def attributable(ev: Interaction) -> bool:
    """Whether an event counts as a click on the served list it cites (positive types only)."""
    if ev.recommendation_id is None:
        return False
    if ev.type == "rate":
        return ev.value is not None and ev.value >= ATTRIBUTED_MIN_RATING
    return ev.type in ATTRIBUTED_TYPES


def apply_interactions(
    s: Stores, events: Sequence[tuple[str | None, Interaction]], *, refresh: bool = True
) -> int:
    """Apply interactions exactly once in effect; returns how many were new.

    `events` pairs each interaction with its event id (None for bulk imports that have no
    stream id and are applied once by construction). Profiles of every user in the batch are
    refreshed even when all events were duplicates: a redelivery after a failed refresh must
    finish the job.
    """
    if not events:
        return 0
    # A session's events folded into its user were counted when the session sent them.
    counted = [(eid, ev) for eid, ev in events if ev.merged_from is None]
    pipe = s.redis.pipeline(transaction=False)
    now = time.time()
    user_parts = []  # where each event's user part is in the pipeline's results
    for eid, ev in events:
        user_parts.append(len(pipe))
        _queue_one(s, pipe, eid, ev, now)
    if counted:
        scopes = trending_scopes(s.redis, s.keys, [ev for _, ev in counted])
        _queue_counters(s, pipe, counted, scopes, now)
    with span("redis execute", **{"db.system": "redis"}):
        results = execute(s.redis, pipe)
    applied = sum(1 for i in user_parts if int(results[i]) > 0)  # 2: new, history paused
    if refresh:
        refresh_profiles(s, list(dict.fromkeys(ev.user_id for _, ev in events)))
    return applied


def _queue_one(
    s: Stores,
    pipe: Pipeline,
    eid: str | None,
    ev: Interaction,
    now: float,
) -> None:
    """Queue the scripts that apply one interaction's own effects on `pipe`: its user part
    first (its result says whether the event was new), then, when attributable, the click."""
    ts = float(ev.timestamp if ev.timestamp is not None else now)
    k = s.keys
    ttl = s.settings.dedup_ttl_s if eid is not None else 0
    APPLY_INTERACTION(
        s.redis,
        keys={
            "done": k.done(ev.user_id, eid or "-"),
            "history": k.history(ev.user_id),
            "affinity": k.affinity(ev.user_id),
            "confidence": k.confidence(ev.user_id),
            "negatives": k.negatives(ev.user_id),
            "controls": k.controls(ev.user_id),
            "journal": k.session_journal(ev.user_id),
            "devices": k.devices(ev.user_id),
        },
        args={
            "item": ev.item_id,
            "ts": repr(ts),
            "weight": repr(ev.weight),
            "confidence_weight": repr(confidence_weight(ev.type, ev.value)),
            "dedup_ttl_s": ttl,
            "history_len": s.settings.history_len,
            "negative": int(ev.type in NEGATIVE_TYPES),
            "negatives_len": s.settings.negatives_len,
            "lifts_negative": int(lifts_negative(ev)),
            **_journal(s, ev),
            "device": ev.device or "",
        },
        pipe=pipe,
    )
    if attributable(ev) and ev.merged_from is None:
        shard = k.rec_shard(ev.recommendation_id or "")
        ATTRIBUTE_CLICK(
            s.redis,
            keys={
                "served": k.rec_info(ev.recommendation_id or ""),
                "surface_stats": k.surface_stats(shard),
                "hourly": k.surface_stats_hour(shard, hour_of(now)),
            },
            args={
                "item": ev.item_id,
                "ts": repr(ts),
                "user": ev.user_id,
                "hourly_ttl": hourly_ttl(hour_of(now), now),
                "kind": ev.type,
            },
            pipe=pipe,
        )


def _journal(s: Stores, ev: Interaction) -> dict[str, str | int]:
    """A session's event goes to its journal too (what a merge folds into the user)."""
    entry = ""
    if is_session(ev.user_id):
        # Unset fields left out: a worker of the previous release reads the entry at a merge.
        entry = json.dumps(
            ev.model_dump(mode="json", exclude={"user_id", "merged_from"}, exclude_none=True)
        )
    return {
        "journal_entry": entry,
        "journal_len": s.settings.session_journal_len,
        "session_ttl_s": s.settings.session_ttl_s,
    }


def _queue_counters(
    s: Stores,
    pipe: Pipeline,
    events: Sequence[tuple[str | None, Interaction]],
    scopes: Callable[[Interaction], Sequence[str]],
    now: float,
) -> None:
    """Queue the batch's share of popularity, the users index and trending: one call, as
    every key it touches is in one slot."""
    k = s.keys
    sets: dict[str, int] = {}  # trending set -> its 1-based index among the call's sets
    args: list[str | float] = []
    for _, ev in events:
        ts = float(ev.timestamp if ev.timestamp is not None else now)
        own = [sets.setdefault(k.trending(sc), len(sets) + 1) for sc in scopes(ev)]
        increment = s.trending.increment(ev.weight, min(ts, now))
        user = "" if is_session(ev.user_id) else ev.user_id  # guests are not in the users index
        args += [ev.item_id, repr(ev.weight), user, repr(increment), len(own), *own]
    marked = all(eid is not None for eid, _ in events)  # else bulk: applied once by design
    COUNT_INTERACTIONS(
        s.redis,
        keys={
            "popularity": k.popularity,
            "users": k.users_index,
            "rest": [*(k.counted(eid or "-") for eid, _ in events), *sets],
        },
        args={
            "dedup_ttl_s": s.settings.dedup_ttl_s if marked else 0,
            "n_events": len(events),
            "events": args,
        },
        pipe=pipe,
    )


def refresh_profiles(s: Stores, user_ids: Sequence[str]) -> None:
    """Recompute content profiles from recent history (order-free, so retries are harmless)."""
    if not user_ids:
        return
    recent = _recent_affinities(s, user_ids)
    vecs = s.content_vectors(i for hist in recent.values() for i, _ in hist)
    cf_vecs = _fold_in(s, user_ids)
    pipe = s.redis.pipeline(transaction=False)
    for uid, hist in recent.items():
        prof = content_profile(hist, vecs, half_life=s.settings.profile_half_life)
        key = s.keys.user(uid)
        if prof is None:
            pipe.hdel(key, "cvec")
        else:
            pipe.hset(key, "cvec", prof.astype(np.float32).tobytes())
        if uid in cf_vecs:
            pipe.hset(key, "cfvec", cf_vecs[uid].astype(np.float32).tobytes())
        pipe.hincrby(key, "ver", 1)
    pipe.execute()
    s.defer_user_sync(user_ids)


def _recent_affinities(s: Stores, user_ids: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
    """Each user's most recent items (newest first) with their summed interaction weight."""
    pipe = s.redis.pipeline(transaction=False)
    for uid in user_ids:
        pipe.zrevrange(s.keys.history(uid), 0, s.settings.profile_items - 1)
    histories = [[i.decode() for i in h] for h in pipe.execute()]
    # Only the affinities of those recent items (a heavy user's hash holds thousands).
    pipe = s.redis.pipeline(transaction=False)
    for uid, items in zip(user_ids, histories, strict=True):
        if items:
            pipe.hmget(s.keys.affinity(uid), items)
    affs = iter(pipe.execute())
    recent: dict[str, list[tuple[str, float]]] = {}
    for uid, items in zip(user_ids, histories, strict=True):
        weights = next(affs) if items else []
        recent[uid] = [(i, float(w or 0.0)) for i, w in zip(items, weights, strict=True)]
    return recent


def _fold_in(s: Stores, user_ids: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
    """Interaction-model vectors for users from their whole confidence history."""
    model = s.registry.cf() if s.registry is not None else None
    if model is None or model.als.dim != s.cf_dim:
        return {}
    pipe = s.redis.pipeline(transaction=False)
    for uid in user_ids:
        pipe.hgetall(s.keys.confidence(uid))
    histories: dict[str, tuple[tuple[int, ...], tuple[float, ...]]] = {}
    for uid, conf in zip(user_ids, pipe.execute(), strict=True):
        pairs = [(model.item_index.get(k.decode()), float(v)) for k, v in conf.items()]
        known = [(i, c) for i, c in pairs if i is not None and c > 0]
        if known:
            idx, w = zip(*known, strict=True)
            histories[uid] = (idx, w)
    vecs = model.als.fold_in_many(list(histories.values()))
    out = dict(zip(histories, vecs, strict=True))
    return out
