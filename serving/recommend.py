"""The recommendation pipeline, stage by stage, as every surface runs it.

    context -> cache -> 1 candidates (sources of the surface, concurrent) -> 2 light scoring
    (weighted RRF) -> 3 XGBoost on the best `rank_depth` -> 4 policy rules -> response

The API, ranker training and the evaluation harness all call these functions, so what is
measured is what is served. Each stage is a module with typed inputs and outputs; with
`debug` the response carries every stage's timing and every source's yield.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis

from core.resilience import DependencyDown, guarded
from core.stores.items import ItemStore
from core.surfaces import SurfaceConfig
from serving import candidates, fallback, metrics, ranking, rerank, scoring
from serving.candidates import Generated, Need, SourceRun
from serving.context import UserContext, load_user_context
from serving.policy import HardFilters, allowed, apply_policy
from serving.retrieval import Candidate, Constraints
from serving.state import ServingState

DAY_S = 86_400.0


@dataclass(frozen=True)
class RecRequest:
    user_id: str
    surface: str
    limit: int
    item_id: str | None = None
    category: str | None = None
    language: str | None = None
    debug: bool = False


def _cache_key(
    state: ServingState, req: RecRequest, ctx: UserContext, variant: str, rules_version: int
) -> str:
    # The user's version is part of the key: any applied event makes old entries unreachable;
    # so are the serving configuration and the rules, so a rollout never serves old lists.
    raw = json.dumps(
        [
            req.user_id,
            req.surface,
            req.item_id,
            req.limit,
            req.category,
            req.language,
            ctx.version,
            state.config_tag,
            variant,
            rules_version,
        ],
        separators=(",", ":"),
    )
    return state.keys.result_cache(hashlib.blake2b(raw.encode(), digest_size=16).hexdigest())


def cfg_of(state: ServingState, req: RecRequest) -> SurfaceConfig:
    return state.settings.surfaces[req.surface]


def _tombstoned(state: ServingState, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    scores = guarded(state.breakers.redis, state.redis.zmscore, state.keys.tombstones, ids)
    return {i for i, s in zip(ids, scores, strict=True) if s is not None}


@dataclass
class Retrieved:
    """Stages 1-2 for one request: fused candidates that pass the hard filters."""

    candidates: list[Candidate]  # fused order, best first
    hard: HardFilters
    constraints: Constraints
    runs: list[SourceRun] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    n_generated: int = 0

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
    need = Need(ctx, cfg, cons, seed, req.category, now, req.limit)
    if deadline is None:
        deadline = time.monotonic() + cfg.budget_ms / 1000
    gen: Generated = candidates.generate(state, need, extra=extra, deadline=deadline)
    t1 = time.perf_counter()
    fused = scoring.fuse(gen.candidates, {s.name: s.weight for s in cfg.sources}, cfg.fusion_k)
    tomb = _tombstoned(state, [c.item_id for c in fused])
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
    return Retrieved(kept, hard, cons, gen.runs, timings, len(gen.candidates))


def recommend(state: ServingState, req: RecRequest) -> dict[str, Any]:
    """Recommendations for one request, as the API returns them; the impression is logged
    asynchronously (debug requests are not impressions)."""
    result = _recommend(state, req)
    if not req.debug:
        state.impressions.log(result)
    return result


# One statement over the limit (PLR0915): the result cache, the fallbacks and the shaping of the
# response are to move out of this function (the typed result of the next step).
def _recommend(state: ServingState, req: RecRequest) -> dict[str, Any]:  # noqa: PLR0915
    """The pipeline behind `recommend`.

    Never fails because a dependency did: Redis down -> the in-process popular snapshot;
    Milvus slow or down -> the user's last good list, then the snapshot; ranker failure -> the
    fused order. Every fallback passes the same safety policy, and the response says that
    it was degraded and why.
    """
    started = time.perf_counter()
    deadline_base = time.monotonic()
    base = state.settings.surfaces[req.surface]
    br = state.breakers
    try:
        ctx = guarded(
            br.redis,
            load_user_context,
            state.redis,
            state.keys,
            req.user_id,
            recent_n=state.settings.serving.history_exclude,
        )
    except DependencyDown as e:
        return _degraded(state, req, None, [e.reason], "default")
    variant, cfg = base.variant(req.user_id, req.surface)
    timings: dict[str, float] = {"context_ms": (time.perf_counter() - started) * 1000}
    rules = state.rules.snapshot()  # one snapshot for the cache key and the list
    ttl = min(cfg.cache_ttl_s, state.settings.serving.cache_ttl_s)
    try:
        key = _cache_key(state, req, ctx, variant, rules.version)
        hit = guarded(br.redis, state.redis.get, key) if ttl > 0 and not req.debug else None
        if hit:
            metrics.CACHE.labels(req.surface, "hit").inc()
            return _from_cache(state, json.loads(hit), ctx)
        metrics.CACHE.labels(req.surface, "miss").inc()
    except DependencyDown as e:
        # The user's context is known: keep their own maturity ceiling and region.
        return _degraded(state, req, ctx, [e.reason], variant)
    deadline = deadline_base + cfg.budget_ms / 1000
    try:
        with metrics.stage("retrieval", req.surface):
            got = retrieve(state, req, ctx, cfg, deadline=deadline)
    except DependencyDown as e:
        return _degraded(state, req, ctx, [e.reason], variant)
    except redis.RedisError:
        return _degraded(state, req, ctx, ["redis_unavailable"], variant)
    timings.update(got.timings)
    reasons: list[str] = [f"source_{r}" for r in got.failed]
    cands = got.candidates
    t = time.perf_counter()
    if cfg.ranked and time.monotonic() > deadline:
        reasons.append("ranking_skipped_over_budget")
    elif cfg.ranked:
        with metrics.stage("ranking", req.surface):
            cands = ranking.rank(state, ctx, cands, cfg.ranker)
        # rank() keeps the fused order on any failure; a live ranker that scored nothing
        # failed, and the answer says so.
        if len(cands) > 1 and ranking.SCORE not in cands[0].scores and _ranker_live(state, cfg):
            reasons.append("ranker_failed")
    timings["ranking_ms"] = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    rec_id = uuid.uuid4().hex
    with metrics.stage("policy", req.surface):
        final = rerank.finalize(
            state,
            surface=req.surface,
            cfg=cfg,
            ctx=ctx,
            ranked=cands,
            hard=got.hard,
            constraints=got.constraints,
            limit=req.limit,
            seed=int(rec_id, 16),
            now=time.time(),
            rules=rules,
        )
    timings["policy_ms"] = (time.perf_counter() - t) * 1000
    result = _response(req, final, reasons, variant, rec_id)
    if req.debug:
        timings["total_ms"] = (time.perf_counter() - started) * 1000
        result["debug"] = {
            "variant": variant,
            "stages": {k: round(v, 2) for k, v in timings.items()},
            "sources": [r.__dict__ for r in got.runs],
            "generated": got.n_generated,
            "after_hard_filters": len(got.candidates),
            "ranker": cfg.ranker if cfg.ranked else None,
        }
    elif not reasons and ttl > 0:
        _remember(state, req, ctx, key, result, got.max_maturity, ttl)
    elif not reasons:
        _remember(state, req, ctx, None, result, got.max_maturity, 0)
    return result


def _ranker_live(state: ServingState, cfg: SurfaceConfig) -> bool:
    try:
        if cfg.ranker == "current":
            return state.models.ranker() is not None
        return state.models.ranker_at(cfg.ranker) is not None
    except Exception:
        return False


def _score(c: Candidate) -> float:
    """The score that ordered the item: the ranker's, the blend's, the fused one, its source's."""
    for key in (ranking.SCORE, ranking.BLEND, scoring.FUSED):
        if key in c.scores:
            return c.scores[key]
    return c.score


def _response(
    req: RecRequest,
    final: list[Candidate],
    reasons: list[str],
    variant: str,
    rec_id: str | None = None,
) -> dict[str, Any]:
    for r in reasons:
        metrics.FALLBACKS.labels(req.surface, r).inc()
    return {
        "recommendation_id": rec_id or uuid.uuid4().hex,
        "user_id": req.user_id,
        "surface": req.surface,
        "variant": variant,
        "items": [
            {
                "item_id": c.item_id,
                "score": round(_score(c), 6),
                "sources": c.sources,
                "reasons": c.reasons,
                "position": pos,
                "explored": c.explored,
                "propensity": c.propensity,
            }
            for pos, c in enumerate(final, 1)
        ],
        "generated_at": time.time(),
        "cached": False,
        "degraded": bool(reasons),
        "degraded_reasons": reasons,
    }


def _from_cache(state: ServingState, cached: dict[str, Any], ctx: UserContext) -> dict[str, Any]:
    """A cached list, re-checked: items deleted or hidden since are dropped, and items
    rewritten around or after the time it was built (a maturity raised, a region restricted)
    are checked against their current metadata (one Milvus read of just those, usually none).
    """
    ids = [i["item_id"] for i in cached["items"]]
    if ids:
        pipe = state.redis.pipeline(transaction=False)
        pipe.zmscore(state.keys.tombstones, ids)
        pipe.zmscore(state.keys.item_changes, ids)
        tomb, stamps = guarded(state.breakers.redis, pipe.execute)
        since = float(cached.get("generated_at", 0)) - CHANGE_MARGIN_S
        gone = {i for i, t in zip(ids, tomb, strict=True) if t is not None}
        recent = [
            i
            for i, ms in zip(ids, stamps, strict=True)
            if i not in gone and ms is not None and ms / 1000 >= since
        ]
        if recent:
            gone |= set(recent) - _still_allowed(state, ctx, recent)
        cached["items"] = [i for i in cached["items"] if i["item_id"] not in gone]
    # Every response is its own impression: attribution needs a fresh id.
    cached["recommendation_id"] = uuid.uuid4().hex
    cached["cached"] = True
    return cached


def _still_allowed(state: ServingState, ctx: UserContext, ids: list[str]) -> set[str]:
    """Which of these items the policy allows for this user by their current metadata (none
    if Milvus cannot say right now: safe first)."""
    cfg = state.settings.serving
    try:
        meta = guarded(state.breakers.milvus, state.items.get, ids, fields=ItemStore.SERVING_FIELDS)
    except DependencyDown:
        return set()
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


def _stale_parts(req: RecRequest) -> list[Any]:
    return [req.user_id, req.surface, req.item_id, req.category, req.language]


def _remember(
    state: ServingState,
    req: RecRequest,
    ctx: UserContext,
    key: str | None,
    result: dict[str, Any],
    max_maturity: int,
    ttl_s: float,
) -> None:
    """Cache the list, and keep it longer as this request's last good list for outages."""
    cfg = state.settings.serving
    try:
        pipe = state.redis.pipeline(transaction=False)
        if key and ttl_s > 0:
            pipe.set(key, json.dumps(result), px=int(ttl_s * 1000))
        if cfg.stale_ttl_s > 0:
            stale = {
                "at": time.time(),
                "items": result["items"],
                "limit": req.limit,
                "max_maturity": max_maturity,
                "region": ctx.region,
                "language": _language(state, ctx),
            }
            pipe.set(
                fallback.stale_key(state, _stale_parts(req)),
                json.dumps(stale),
                px=int(cfg.stale_ttl_s * 1000),
            )
        guarded(state.breakers.redis, pipe.execute)
    except DependencyDown:
        pass  # the answer is good; only its caching failed


def _language(state: ServingState, ctx: UserContext | None) -> str | None:
    strict = state.settings.serving.language_filter == "strict"
    return ctx.language if ctx and strict else None


def _degraded(
    state: ServingState,
    req: RecRequest,
    ctx: UserContext | None,
    reasons: list[str],
    variant: str,
) -> dict[str, Any]:
    """A safe list without the failed dependency: last good list, then the popular snapshot.

    Without the user's context (Redis down) nothing is known about their age or region: the
    degraded maturity ceiling applies (`SERVING__DEGRADED_MAX_MATURITY`, 0 = all-ages items
    only) and only items available in every region. Items written after a list or the
    snapshot was built (maturity raised, region restricted, hidden) are dropped, since the
    metadata those lists carry may no longer hold.
    """
    cfg = state.settings.serving
    max_m = ctx.max_maturity(cfg.unknown_age_max_maturity) if ctx else cfg.degraded_max_maturity
    region = ctx.region if ctx else None
    language = _language(state, ctx)
    exclude = set(ctx.recent if ctx and cfg_of(state, req).policy.exclude_seen else [])
    exclude |= set(ctx.negatives if ctx else [])
    if req.item_id:
        exclude.add(req.item_id)
    tomb: set[str] = set()
    cands: list[Candidate] = []
    if ctx is not None:  # Redis answers: tombstones, the change log and the last list
        try:
            cands, reasons, tomb, changed = _verified_fallbacks(
                state, req, max_m, (region, language), reasons
            )
            exclude |= changed
        except (DependencyDown, redis.RedisError):
            cands = []  # unverifiable now: the snapshot alone
    have = {c.item_id for c in cands}
    cands += [
        c
        for c in state.snapshot.candidates(category=req.category, language=req.language)
        if c.item_id not in have
    ]
    if not state.snapshot.taken_at:
        reasons = [*reasons, "no_snapshot_yet"]
    final = apply_policy(
        cands,
        limit=req.limit,
        max_maturity=max_m,
        region=region,
        tombstoned=tomb,
        exclude=exclude,
        language=language,
    )
    return _response(req, final, reasons, variant)


CHANGE_MARGIN_S = 5.0  # clocks of API hosts and Redis may differ a little


def _verified_fallbacks(
    state: ServingState,
    req: RecRequest,
    max_m: int,
    where: tuple[str | None, str | None],
    reasons: list[str],
) -> tuple[list[Candidate], list[str], set[str], set[str]]:
    """The user's last good list (if filtered at least as strictly as they need now), the
    tombstoned ids, and the ids written since the list or the snapshot was built."""
    br = state.breakers.redis
    raw = guarded(br, state.redis.get, fallback.stale_key(state, _stale_parts(req)))
    # The JSON list _remember wrote (or None); its fields are checked one by one below.
    last: Any = json.loads(raw) if raw else None
    cands: list[Candidate] = []
    region, language = where
    same_place = last and last.get("region") == region and last.get("language") == language
    if same_place and "at" in last and last["max_maturity"] <= max_m:
        cands = [
            Candidate(
                i["item_id"],
                {},
                [fallback.STALE_SOURCE, *i["sources"]],
                {fallback.STALE_SOURCE: i["score"]},
                i["reasons"],
            )
            for i in last["items"]
        ]
        reasons = [*reasons, "served_last_good_list"]
    ids = [c.item_id for c in cands] + state.snapshot.ids()
    tomb = _tombstoned(state, ids)
    stamps = guarded(br, state.redis.zmscore, state.keys.item_changes, ids) if ids else []
    built = {c.item_id: float(last["at"]) for c in cands} if cands and last else {}
    snap_at = state.snapshot.taken_at
    changed = {
        i
        for i, ms in zip(ids, stamps, strict=True)
        if ms is not None and ms / 1000 >= built.get(i, snap_at) - CHANGE_MARGIN_S
    }
    return cands, reasons, tomb, changed
