"""The recommendation pipeline, stage by stage, as every surface runs it.

    context -> cache -> 1 candidates (sources of the surface, concurrent) -> 2 light scoring
    (weighted RRF) -> 3 XGBoost on the best `rank_depth` -> 4 policy rules -> response

The API, ranker training and the evaluation harness all call these functions, so what is
measured is what is served. Each stage is a module with typed inputs and outputs
(`serving.cache` the result cache, `serving.degraded` the fallbacks, `serving.response` the
typed answer); with `debug` the response carries every stage's timing and every source's yield.
"""

from __future__ import annotations

import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from core.context import UserContext
from core.resilience import DependencyDown
from core.rules import RuleSnapshot
from core.stores.registry import versions_pinned
from core.surfaces import SurfaceConfig
from serving import cache, canary, candidates, metrics, ranking, rerank, scoring, sets
from serving.candidates import Generated, Need, SourceRun
from serving.degraded import degraded
from serving.policy import HardFilters, apply_policy
from serving.policy.safety import visible
from serving.request import RecRequest, RecResult
from serving.response import response
from serving.retrieval import Candidate, Constraints
from serving.state import ServingState

DAY_S = 86_400.0
# Fused candidates the safety rule dropped (status, maturity, region) in this request's
# retrieval; set by `retrieve`, read by `recommend` for the experiment guardrails.
SAFETY_DROPS: ContextVar[int | None] = ContextVar("safety_drops", default=None)


@dataclass
class Retrieved:
    """Stages 1-2 for one request: fused candidates that pass the hard filters."""

    candidates: list[Candidate]  # fused order, best first
    hard: HardFilters
    constraints: Constraints
    runs: list[SourceRun] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    n_generated: int = 0
    # Every fused candidate, filtered or not (why-not reads where an item left the list).
    fused: list[Candidate] = field(default_factory=list)

    @property
    def max_maturity(self) -> int:
        return self.hard.max_maturity

    @property
    def failed(self) -> list[str]:
        return sorted({r.error for r in self.runs if r.error})


def hard_filters(
    state: ServingState, req: RecRequest, ctx: UserContext, cfg: SurfaceConfig, now: float
) -> tuple[HardFilters, Constraints, int]:
    """The request's safety rules, the part Milvus applies, and how many it cannot."""
    serving = state.settings.serving
    max_m = ctx.max_maturity(serving.unknown_age_max_maturity)
    window = cfg.policy.seen_window_days
    seen = ctx.seen(window * DAY_S if window else None, now) if cfg.policy.exclude_seen else []
    exclude = set(seen) | set(ctx.negatives) | ({req.item_id} if req.item_id else set())
    language = ctx.language if serving.language_filter == "strict" else None
    # Long `not in` lists make Milvus filters slow: the most recent items are excluded there,
    # the rest by the policy, with the sources asked for as many more.
    in_milvus = tuple(
        dict.fromkeys(
            [*seen[: serving.milvus_exclude_max], *ctx.negatives[:20]]
            + ([req.item_id] if req.item_id else [])
        )
    )
    cons = Constraints(
        max_maturity=max_m,
        category=req.category,
        language=req.language,
        user_language=language,
        exclude=in_milvus,
    )
    hard = HardFilters(max_m, ctx.region, language, frozenset(), frozenset(exclude))
    return hard, cons, len(exclude) - len(in_milvus)


def retrieve(
    state: ServingState,
    req: RecRequest,
    ctx: UserContext,
    cfg: SurfaceConfig | None = None,
    *,
    deadline: float | None = None,
) -> Retrieved:
    """Stages 1-2 (shared by serving and ranker training): the best `rank_depth` fused
    candidates that pass the hard filters."""
    cfg = cfg or state.settings.surfaces[req.surface]
    now = time.time()
    t = time.perf_counter()
    hard, cons, extra = hard_filters(state, req, ctx, cfg, now)
    seed = (
        candidates.load_seed(state, req.item_id, max_maturity=hard.max_maturity, region=hard.region)
        if req.item_id and cfg.needs_item
        else None
    )
    cand_sets = sets.load_sets(
        state, cfg, ctx, seed.item_id if seed else None, filtered=bool(req.category or req.language)
    )
    need = Need(ctx, cfg, cons, seed, req.category, now, req.limit, cand_sets)
    if deadline is None:
        deadline = time.monotonic() + cfg.budget_ms / 1000
    gen: Generated = candidates.generate(state, need, extra=extra, deadline=deadline)
    t1 = time.perf_counter()
    fused = scoring.fuse(gen.candidates, {s.name: s.weight for s in cfg.sources}, cfg.fusion_k)
    tomb = state.catalogue.tombstoned([c.item_id for c in fused])
    SAFETY_DROPS.set(sum(not visible(c.fields, **hard.visibility) for c in fused))
    hard = HardFilters(hard.max_maturity, hard.region, hard.language, frozenset(tomb), hard.exclude)
    # Filtered before ranking so the ranker sees the same candidate sets it was trained on.
    kept = apply_policy(
        fused,
        limit=cfg.rank_depth,
        max_maturity=hard.max_maturity,
        region=hard.region,
        tombstoned=hard.tombstoned,
        exclude=hard.exclude,
        language=hard.language,
    )
    timings = {
        "candidates_ms": (t1 - t) * 1000,
        "scoring_ms": (time.perf_counter() - t1) * 1000,
    }
    return Retrieved(kept, hard, cons, gen.runs, timings, len(gen.candidates), fused)


def recommend(state: ServingState, req: RecRequest) -> RecResult:
    """Recommendations for one request, as the API returns them; the impression is logged
    asynchronously (debug requests are not impressions)."""
    started = time.perf_counter()
    drops = SAFETY_DROPS.set(None)
    try:
        with versions_pinned():  # one version of each model for every stage of the request
            result = _recommend(state, req)
        safety = None if result["cached"] else SAFETY_DROPS.get()
    finally:
        SAFETY_DROPS.reset(drops)
    metrics.SERVED.labels(req.surface).observe(len(result["items"]))
    if not req.debug:
        ms = (time.perf_counter() - started) * 1000
        state.impressions.log(result, ms, safety, query=req.query())
    return result


def _recommend(state: ServingState, req: RecRequest) -> RecResult:
    """The pipeline behind `recommend`.

    Never fails because a dependency did: every store raises `DependencyDown`, and the request
    then degrades (`serving.degraded`) instead; a ranker failure keeps the fused order.
    """
    started = time.perf_counter()
    deadline_base = time.monotonic()
    base = state.settings.surfaces[req.surface]
    try:
        ctx = state.users.context(req.user_id, recent_n=state.settings.serving.history_exclude)
    except DependencyDown as e:
        return degraded(state, req, None, [e.reason], "default")
    variant, cfg = canary.assign(state, base, req)  # a surface variant, or the ranker canary
    timings: dict[str, float] = {"context_ms": (time.perf_counter() - started) * 1000}
    rules = state.rules.snapshot()  # one snapshot for the cache key and the list
    ttl = min(cfg.cache_ttl_s, state.settings.serving.cache_ttl_s)
    key = cache.cache_key(state, req, ctx, variant, rules.version)
    try:
        hit = state.cache.get(key) if ttl > 0 and not req.debug else None
        checked = cache.from_cache(state, req, hit, ctx) if hit else None
        if checked:
            metrics.CACHE.labels(req.surface, "hit").inc()
            return checked
        metrics.CACHE.labels(req.surface, "miss").inc()
        with metrics.stage("retrieval", req.surface):
            got = retrieve(state, req, ctx, cfg, deadline=deadline_base + cfg.budget_ms / 1000)
    except DependencyDown as e:
        # The user's context is known: keep their own maturity ceiling and region.
        return degraded(state, req, ctx, [e.reason], variant)
    timings.update(got.timings)
    metrics.candidates(req.surface, ((r.name, r.count) for r in got.runs))
    reasons: list[str] = [f"source_{r}" for r in got.failed]
    cands = rank_stage(state, req, ctx, cfg, got.candidates, reasons, timings, deadline_base)
    t = time.perf_counter()
    rec_id = uuid.uuid4().hex
    notes: dict[str, Any] = {}
    with metrics.stage("policy", req.surface):
        final = policy_stage(state, req, ctx, cfg, got, cands, rec_id, rules, notes=notes)
    timings["policy_ms"] = (time.perf_counter() - t) * 1000
    result = response(req, final, reasons, variant, rec_id)
    if req.debug:
        timings["total_ms"] = (time.perf_counter() - started) * 1000
        result["debug"] = {**_debug(variant, cfg, got, timings), **notes}
    elif not reasons:
        cache.remember(state, req, ctx, key, result, got.max_maturity, ttl)
    return result


def policy_stage(
    state: ServingState,
    req: RecRequest,
    ctx: UserContext,
    cfg: SurfaceConfig,
    got: Retrieved,
    ranked: list[Candidate],
    rec_id: str,
    rules: RuleSnapshot,
    *,
    notes: dict[str, Any] | None = None,
    trace: dict[str, Any] | None = None,
) -> list[Candidate]:
    """Stage 4: the policy rules over the ranked candidates (exploration seeded by the list's
    id, so a recommendation id replays its draws); `notes` and `trace` as `rerank.finalize`."""
    return rerank.finalize(
        state,
        surface=req.surface,
        cfg=cfg,
        ctx=ctx,
        ranked=ranked,
        hard=got.hard,
        constraints=got.constraints,
        limit=req.limit,
        seed=int(rec_id, 16),
        now=time.time(),
        rules=rules,
        notes=notes,
        trace=trace,
    )


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


def rank_stage(
    state: ServingState,
    req: RecRequest,
    ctx: UserContext,
    cfg: SurfaceConfig,
    cands: list[Candidate],
    reasons: list[str],
    timings: dict[str, float],
    deadline_base: float,
) -> list[Candidate]:
    """Stage 3: the ranker's order (skipped past the surface's budget; `reasons` says so)."""
    t = time.perf_counter()
    if cfg.ranked and time.monotonic() > deadline_base + cfg.budget_ms / 1000:
        reasons.append("ranking_skipped_over_budget")
    elif cfg.ranked:
        with metrics.stage("ranking", req.surface):
            cands = ranking.rank(state, ctx, cands, cfg.ranker)
        # rank() keeps the fused order on any failure; a live ranker that scored nothing
        # failed, and the answer says so.
        if len(cands) > 1 and ranking.SCORE not in cands[0].scores and _ranker_live(state, cfg):
            reasons.append("ranker_failed")
    timings["ranking_ms"] = (time.perf_counter() - t) * 1000
    return cands


def _ranker_live(state: ServingState, cfg: SurfaceConfig) -> bool:
    try:
        if cfg.ranker == "current":
            return state.models.ranker() is not None
        return state.models.ranker_at(cfg.ranker) is not None
    except Exception:
        return False
