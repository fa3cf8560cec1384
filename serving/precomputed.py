"""`GET /v1/recommendations/cached` (seed 004: "returns precomputed recommendations if
available"): an answer from what is already computed, never running retrieval, ranking or the
policy.

1. The result cache entry the same request would hit now (same user state, variant, rules and
   controls), re-checked as a cache hit is (items deleted or hidden since are dropped);
2. else the user's candidate set (built by the workers after their events): its sources'
   items fused by reciprocal rank, through the hard filters (safety, seen, dislikes, "not
   interested") on the items' current metadata from the process's item cache, unranked,
   `generated_at` the set's build time;
3. else nothing (404: ask `/v1/recommendations`).

Both answers are marked `cached: true`, carry `source` (result_cache or candidate_set), and are
logged as impressions like any list (a fresh recommendation id each time).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

from core.stores.protocols import CandidateSet, user_owner
from serving import cache, canary, itemmeta, nonprofiling
from serving.policy import apply_policy
from serving.request import RecRequest, RecResult
from serving.response import response
from serving.retrieval import Candidate
from serving.stages import hard_filters
from serving.state import ServingState

FUSION_K = 20


def precomputed(state: ServingState, req: RecRequest) -> tuple[RecResult, str] | None:
    """(the answer, where it came from), or None when nothing is precomputed for it."""
    ctx = state.users.context(req.user_id, recent_n=state.settings.serving.history_exclude)
    if req.region:
        ctx = replace(ctx, region_override=req.region)
    if nonprofiling.wanted(req, ctx):
        req = replace(req, profiling=False)
        ctx = nonprofiling.context(ctx)
    variant, cfg = canary.assign(state, state.settings.surfaces[req.surface], req)
    if not req.profiling:
        variant = "default"  # as recommend counts a list without profiling
    rules = state.rules.snapshot()
    hit = state.cache.get(cache.cache_key(state, req, ctx, variant, rules.version, cfg))
    checked = cache.from_cache(state, req, hit, ctx) if hit else None
    if checked:
        checked["profiling"] = req.profiling
        state.impressions.log(checked, query=req.query())
        return checked, "result_cache"
    if not req.profiling or req.item_id or req.category or req.language or req.filter:
        return None  # a candidate set is personal and unfiltered
    got = state.candidates.get([user_owner(req.user_id)]).get(user_owner(req.user_id))
    if got is None:
        return None
    hard, _, _ = hard_filters(state, req, ctx, cfg, time.time())
    fused = _fused(state, got)
    tomb = state.catalogue.tombstoned([c.item_id for c in fused])
    hard = replace(hard, tombstoned=frozenset(tomb))
    final = apply_policy(fused, limit=req.limit, **hard.checks)
    out = response(req, final, [], variant, uuid.uuid4().hex)
    out["generated_at"], out["cached"], out["profiling"] = got.built_at, True, True
    state.impressions.log(out, query=req.query())
    return out, "candidate_set"


def _fused(state: ServingState, got: CandidateSet) -> list[Candidate]:
    """The set's items by reciprocal-rank fusion of its sources, with current metadata."""
    score: dict[str, float] = {}
    found: dict[str, list[str]] = {}
    for source, hits in got.sources.items():
        for rank, (item, _) in enumerate(hits, 1):
            score[item] = score.get(item, 0.0) + 1.0 / (FUSION_K + rank)
            found.setdefault(item, []).append(source)
    order = sorted(score, key=lambda i: -score[i])
    meta = itemmeta.fields(state, order)
    return [
        Candidate(i, meta[i], found[i], {"fused": round(score[i], 6)}, [])
        for i in order
        if i in meta
    ]
