"""The recommendation pipeline as the API serves it: the stages of `serving.stages` behind
the result cache and the fallbacks.

    context -> cache -> 1 candidates (sources of the surface, concurrent) -> 2 light scoring
    (weighted RRF) -> 3 XGBoost on the best `rank_depth` -> 4 policy rules -> response

The API, ranker training and the evaluation harness all call these functions, so what is
measured is what is served. Each stage is a module with typed inputs and outputs
(`serving.cache` the result cache, `serving.degraded` the fallbacks, `serving.response` the
typed answer); with `debug` the response carries every stage's timing and every source's yield.
A freshly computed list may also get the lists of registered off-policy candidates computed
beside it, in the background (`serving.shadow`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

from core.context import UserContext
from core.resilience import DependencyDown
from core.stores.registry import versions_pinned
from core.surfaces import SurfaceConfig
from serving import cache, canary, itemmeta, metrics, nonprofiling, paging, shadow
from serving.degraded import degraded
from serving.request import RecRequest, RecResult
from serving.response import response
from serving.stages import SAFETY_DROPS, Retrieved, policy_stage, rank_stage, retrieve
from serving.state import ServingState


def recommend(state: ServingState, req: RecRequest, *, rec_id: str | None = None) -> RecResult:
    """Recommendations for one request, as the API returns them; the impression is logged
    asynchronously (debug requests are not impressions).

    `rec_id` (32 hex digits) names the list and seeds its exploration draws; a new random id
    by default. The evaluation harness passes one per user, so two policies scored on the same
    users draw alike and differ only by the policy (paired comparisons)."""
    started = time.perf_counter()
    drops = SAFETY_DROPS.set(None)
    try:
        # One version of each model, and one read of each item's marks, for every stage.
        with versions_pinned(), itemmeta.marks_once():
            result = _recommend(state, req, rec_id or uuid.uuid4().hex)
        safety = None if result["cached"] else SAFETY_DROPS.get()
    finally:
        SAFETY_DROPS.reset(drops)
    metrics.SERVED.labels(req.surface).observe(len(result["items"]))
    if not req.debug:
        ms = (time.perf_counter() - started) * 1000
        shown = paging.first_page(result, req.page_size)
        query = req.query()
        if result.get("profiling") is False:  # the user's own switch said so
            query["profiling"] = "off"
        state.impressions.log(shown, ms, safety, query=query)
    return result


def _recommend(state: ServingState, req: RecRequest, rec_id: str) -> RecResult:
    """The pipeline behind `recommend`.

    Never fails because a dependency did: every store raises `DependencyDown`, and the request
    then degrades (`serving.degraded`) instead; a ranker failure keeps the fused order.
    """
    started = time.perf_counter()
    deadline_base = time.monotonic()
    base = state.settings.surfaces[req.surface]
    # A result-cache hit needs only the head of the user's context (profile, version,
    # controls): the recent history (500 items by default) is read on a miss.
    probe = not req.debug and min(base.cache_ttl_s, state.settings.serving.cache_ttl_s) > 0
    try:
        ctx = _context(state, req, head=probe)
    except DependencyDown as e:
        return degraded(state, req, None, [e.reason], "default")
    variant, cfg = canary.assign(state, base, req)  # a surface variant, or the ranker canary
    if nonprofiling.wanted(req, ctx):  # no personal data in this list (cached apart too)
        req = replace(req, profiling=False)
        # Counted as `default`: neither an experiment arm nor the ranker canary serves it.
        ctx, cfg, variant = nonprofiling.context(ctx), nonprofiling.config(base), "default"
    timings: dict[str, float] = {"context_ms": (time.perf_counter() - started) * 1000}
    rules = state.rules.snapshot()  # one snapshot for the cache key and the list
    ttl = min(cfg.cache_ttl_s, state.settings.serving.cache_ttl_s)
    key = cache.cache_key(state, req, ctx, variant, rules.version, cfg)
    try:
        checked = _cached(state, req, ctx, key) if ttl > 0 and not req.debug else None
        if checked:
            return checked
        if probe and req.profiling:  # the whole context, for the pipeline
            ctx = _context(state, req, head=False)
        with metrics.stage("retrieval", req.surface):
            got = retrieve(state, req, ctx, cfg, deadline=deadline_base + cfg.budget_ms / 1000)
    except DependencyDown as e:
        # The user's context is known: keep their own maturity ceiling and region (a head
        # context, when the cache read failed: the fallback then cannot skip the history).
        return degraded(state, req, ctx, [e.reason], variant)
    timings.update(got.timings)
    metrics.candidates(req.surface, ((r.name, r.count) for r in got.runs))
    reasons: list[str] = [f"source_{r}" for r in got.failed]
    cands = rank_stage(state, req, ctx, cfg, got.candidates, reasons, timings, deadline_base)
    t = time.perf_counter()
    notes: dict[str, Any] = {}
    trace: dict[str, Any] = {}  # where the policy could have put items: shadow lists' support
    with metrics.stage("policy", req.surface):
        final = policy_stage(
            state, req, ctx, cfg, got, cands, rec_id, rules, notes=notes, trace=trace
        )
    timings["policy_ms"] = (time.perf_counter() - t) * 1000
    result = response(req, final, reasons, variant, rec_id)
    result["profiling"] = req.profiling
    if req.debug:
        timings["total_ms"] = (time.perf_counter() - started) * 1000
        result["debug"] = {**_debug(variant, cfg, got, timings), **notes}
    elif not reasons:
        cache.remember(state, req, ctx, key, result, got.max_maturity, ttl)
        served = [c.item_id for c in final]
        shadow.beside(state, req, ctx, cfg, cands, trace, served, rec_id)
    return result


def _cached(state: ServingState, req: RecRequest, ctx: UserContext, key: str) -> RecResult | None:
    """The result cache's list for this key, re-checked against the catalogue (None: a miss)."""
    hit = state.cache.get(key)
    checked = cache.from_cache(state, req, hit, ctx) if hit else None
    metrics.CACHE.labels(req.surface, "hit" if checked else "miss").inc()
    return checked


def _context(state: ServingState, req: RecRequest, *, head: bool) -> UserContext:
    """The user's context as this request sees it (`head`: without the recent history)."""
    recent_n = 0 if head else state.settings.serving.history_exclude
    ctx = state.users.context(req.user_id, recent_n=recent_n)
    if req.region:  # availability follows where the user is now
        ctx = replace(ctx, region_override=req.region)
    return ctx


def _debug(
    variant: str, cfg: SurfaceConfig, got: Retrieved, timings: dict[str, float]
) -> dict[str, object]:
    """What `debug=true` adds: every stage's time, every source's yield and origin."""
    return {
        "variant": variant,
        "stages": {k: round(v, 2) for k, v in timings.items()},
        "sources": [r.__dict__ for r in got.runs],
        "generated": got.n_generated,
        "after_hard_filters": len(got.candidates),
        "ranker": cfg.ranker if cfg.ranked else None,
    }
