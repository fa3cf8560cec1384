"""Finished lists kept for reuse: the result cache and the last good list per request shape.

* The result cache answers a repeated request (same user state, configuration and rules)
  without running the pipeline; a hit is re-checked against the catalogue first.
* The last good list is kept longer (`serving.stale_ttl_s`): when Milvus fails, the user gets
  their own recent list before generic popularity (see `serving.degraded`).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from core.context import UserContext
from core.resilience import DependencyDown
from core.surfaces import SurfaceConfig
from serving import features, ranking
from serving.policy import allowed
from serving.request import RecRequest, RecResult
from serving.retrieval import Candidate
from serving.state import ServingState


def _digest(parts: list[Any]) -> str:
    raw = json.dumps(parts, separators=(",", ":"))
    return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


def cache_key(
    state: ServingState,
    req: RecRequest,
    ctx: UserContext,
    variant: str,
    rules_version: int,
    cfg: SurfaceConfig,
) -> str:
    # The user's version is part of the key: any applied event makes old entries unreachable;
    # so are the serving configuration and the rules, so a rollout never serves old lists.
    parts = [
        *req.shape()[:3],
        req.limit,
        *req.shape()[3:],
        ctx.version,
        ctx.controls.tag,  # "not interested" and the profiling switch change the list at once
        state.config_tag,
        variant,
        rules_version,
    ]
    parts += context_parts(state, req, cfg)
    return state.keys.result_cache(_digest(parts))


def context_parts(state: ServingState, req: RecRequest, cfg: SurfaceConfig) -> list[str]:
    """The request context a list depends on: a local hour or device the surface's ranker
    reads (the last good list ignores them). A ranker that reads neither keeps one list for
    every hour and device."""
    asked = {"local_hour": req.local_hour, "device": req.device}
    asked = {k: v for k, v in asked.items() if v is not None}
    if not asked or not cfg.ranked or not req.profiling:
        return []
    cols = ranking.reads(state, cfg.ranker)
    return [
        f"{name}:{value}"
        for name, value in asked.items()
        if cols is None or cols & features.CONTEXT_COLUMNS[name]
    ]


def stale_key(state: ServingState, req: RecRequest) -> str:
    """Where the last good list of this request shape is kept."""
    return state.keys.result_cache("last:" + _digest([*req.shape(), state.config_tag]))


def from_cache(
    state: ServingState, req: RecRequest, cached: RecResult, ctx: UserContext
) -> RecResult | None:
    """A cached list, re-checked: items deleted or hidden since are dropped, and items
    rewritten around or after the time it was built (a maturity raised, a region restricted)
    are checked against their current metadata (one index read of just those, usually none).

    None (a miss: the pipeline runs and checks it) when the context item itself was deleted
    or rewritten since: a deleted item's related list is a 404, not a cached answer.
    """
    ids = [i["item_id"] for i in cached["items"]]
    seed = [req.item_id] if req.item_id else []
    marks = state.catalogue.marks([*ids, *seed])
    changed = marks.changed_since(float(cached.get("generated_at", 0)))
    if seed and (seed[0] in marks.tombstoned or seed[0] in changed):
        return None
    gone = set(marks.tombstoned)
    recent = [i for i in ids if i in changed and i not in gone]
    if recent:
        gone |= set(recent) - still_allowed(state, ctx, recent, marks.changed_at)
    cached["items"] = [i for i in cached["items"] if i["item_id"] not in gone]
    # Every response is its own impression: attribution needs a fresh id.
    cached["recommendation_id"] = uuid.uuid4().hex
    cached["cached"] = True
    return cached


def still_allowed(
    state: ServingState, ctx: UserContext, ids: list[str], changed_at: Mapping[str, float]
) -> set[str]:
    """Which of these items the policy allows for this user by their current metadata (none
    if the index cannot say right now: safe first). Read through the process item cache with
    the change log's times (`changed_at`): an entry older than the item's write is read
    again, a newer one is not, so a list cached around a write does not read the index on
    every hit (it did: a Milvus query per cache hit)."""
    cfg = state.settings.serving
    try:
        cached = state.item_cache.get(state.items, ids, changed_at)
    except DependencyDown:
        return set()
    meta = {i: m.fields for i, m in cached.items()}
    max_m = ctx.max_maturity(cfg.unknown_age_max_maturity)
    return {
        i
        for i in ids
        if i in meta
        and allowed(
            Candidate(i, meta[i], [], {}),
            max_maturity=max_m,
            region=ctx.region,
            tombstoned=set(),
            exclude=set(),
            language=ctx.language if cfg.language_filter == "strict" else None,
        )
    }


def strict_language(state: ServingState, ctx: UserContext | None) -> str | None:
    """The language a list for this user is filtered to (None: any)."""
    strict = state.settings.serving.language_filter == "strict"
    return ctx.language if ctx and strict else None


def remember(
    state: ServingState,
    req: RecRequest,
    ctx: UserContext,
    key: str | None,
    result: RecResult,
    max_maturity: int,
    ttl_s: float,
) -> None:
    """Cache the list, and keep it longer as this request's last good list for outages."""
    cfg = state.settings.serving
    entries: dict[str, tuple[Any, float]] = {}
    if key and ttl_s > 0:
        entries[key] = (result, ttl_s)
    now, stale = time.time(), stale_key(state, req)
    filters = (max_maturity, ctx.region, strict_language(state, ctx))
    if cfg.stale_ttl_s > 0 and state.last_good.due(stale, filters, now):
        last = {
            "user_id": req.user_id,  # whose list it is (an erasure finds it by this)
            "at": now,
            "items": result["items"],
            "limit": req.limit,
            "max_maturity": max_maturity,
            "region": ctx.region,
            "language": strict_language(state, ctx),
        }
        entries[stale] = (last, cfg.stale_ttl_s)
    if not entries:
        return
    try:
        state.cache.put(entries)
    except DependencyDown:  # the answer is good; only its caching failed
        state.last_good.forget(stale)
