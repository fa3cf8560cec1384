"""The pipeline's stages, as every caller runs them (serving, replays, ranker training):

    hard filters -> 1 candidates (sources of the surface, concurrent) -> 2 light scoring
    (weighted RRF) -> 3 XGBoost on the best `rank_depth` -> 4 policy rules

`serving.recommend` puts them together behind the result cache and the fallbacks; the
replays of `serving.replay` (why-not, off-policy evaluation) run them traced.
"""

from __future__ import annotations

import dataclasses
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from core.context import UserContext
from core.rules import RuleSnapshot
from core.surfaces import SurfaceConfig
from serving import candidates, itemmeta, metrics, ranking, rerank, scoring, sets
from serving.candidates import Generated, Need, SourceRun
from serving.policy import HardFilters, apply_policy
from serving.policy.safety import visible
from serving.request import RecRequest
from serving.retrieval import Candidate, Constraints
from serving.state import ServingState

DAY_S = 86_400.0
# Fused candidates the safety rule dropped (status, maturity, region) in this request's
# retrieval; set by `retrieve`, read by `recommend` for the experiment guardrails.
# More candidates from each source when a filter has parts only checked in process (list
# clauses: 14-18x a search's cost in Milvus Lite, bench/filters.py).
FILTER_EXTRA = 200
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
    exclude |= ctx.controls.blocked("item")
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
        expr=req.expr,
    )
    hard = HardFilters(
        max_m, ctx.region, language, frozenset(), frozenset(exclude), unwanted=ctx.unwanted
    )
    return hard, cons, len(exclude) - len(in_milvus)


def _generated(
    state: ServingState, need: Need, req: RecRequest, extra: int, deadline: float
) -> tuple[Generated, list[Candidate]]:
    """The sources' candidates, fused and through the filter expression (the whole of it,
    whatever part Milvus applied). From candidate sets first; when too few of theirs match
    the filter (fewer than twice the list), retrieved live, where Milvus applies its cheap
    part and the sources ask for more."""
    cfg, expr = need.surface, req.expr
    weights: dict[str, float] = {s.name: s.weight for s in cfg.sources}
    while True:
        gen = candidates.generate(state, need, extra=extra, deadline=deadline)
        fused = scoring.fuse(gen.candidates, weights, cfg.fusion_k)
        if expr is None:
            return gen, fused
        fused = [c for c in fused if expr.check(c.fields)]
        enough = min(cfg.rank_depth, 2 * req.limit)
        if need.sets is None or len(fused) >= enough or time.monotonic() >= deadline:
            return gen, fused
        need = dataclasses.replace(need, sets=None)


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
    # A filter expression reads the sets too (checked in process below); a category or
    # language filter retrieves live, where Milvus applies it.
    cand_sets = sets.load_sets(
        state, cfg, ctx, seed.item_id if seed else None, filtered=bool(req.category or req.language)
    )
    need = Need(ctx, cfg, cons, seed, req.category, now, req.limit, cand_sets)
    if deadline is None:
        deadline = time.monotonic() + cfg.budget_ms / 1000
    expr = req.expr
    if expr is not None and not expr.exact:  # list clauses are checked here, not in Milvus
        extra += FILTER_EXTRA
    gen, fused = _generated(state, need, req, extra, deadline)
    t1 = time.perf_counter()
    tomb = itemmeta.tombstoned(state, [c.item_id for c in fused])
    SAFETY_DROPS.set(sum(not visible(c.fields, **hard.visibility) for c in fused))
    hard = dataclasses.replace(hard, tombstoned=frozenset(tomb))
    # Filtered before ranking so the ranker sees the same candidate sets it was trained on.
    kept = apply_policy(fused, limit=cfg.rank_depth, **hard.checks)
    timings = {
        "candidates_ms": (t1 - t) * 1000,
        "scoring_ms": (time.perf_counter() - t1) * 1000,
    }
    return Retrieved(kept, hard, cons, gen.runs, timings, len(gen.candidates), fused)


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
            # The request context is a ranker feature.
            asked = dataclasses.replace(ctx, local_hour=req.local_hour, device=req.device)
            cands = ranking.rank(state, asked, cands, cfg.ranker)
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
