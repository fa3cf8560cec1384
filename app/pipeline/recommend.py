"""The recommendation pipeline: context -> cache -> candidates -> ranking -> policy -> response.

The API and the evaluation harness both call `recommend()`, so what is measured is what is
served.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import redis

from app import metrics
from app.errors import NotFound
from app.pipeline import fallback, ranking, retrieval
from app.pipeline.context import UserContext, load_user_context
from app.pipeline.policy import allowed, apply_policy
from app.pipeline.retrieval import Candidate, Constraints
from app.resilience import DependencyDown, guarded
from app.state import AppState
from indexing.store import ItemStore

Surface = Literal["homepage", "related", "trending"]
MILVUS_MAX_TOPK = 16_384
SURFACES: tuple[str, ...] = Surface.__args__  # type: ignore[attr-defined]
# The ranker learns from homepage candidates; other surfaces keep their retrieval order.
RANKED_SURFACES = frozenset({"homepage"})


@dataclass(frozen=True)
class RecRequest:
    user_id: str
    surface: str
    limit: int
    item_id: str | None = None
    category: str | None = None
    language: str | None = None


def _cache_key(state: AppState, req: RecRequest, ctx: UserContext) -> str:
    # The user's version is part of the key: any applied event makes old entries unreachable;
    # so is the serving configuration, so a config rollout never serves old lists.
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
        ],
        separators=(",", ":"),
    )
    return state.keys.result_cache(hashlib.blake2b(raw.encode(), digest_size=16).hexdigest())


def _tombstoned(state: AppState, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    scores = guarded(state.breakers.redis, state.redis.zmscore, state.keys.tombstones, ids)
    return {i for i, s in zip(ids, scores, strict=True) if s is not None}


def _personal(state: AppState, ctx: UserContext, cons: Constraints, want: int) -> list[Candidate]:
    """ANN over the user's vectors, fused with the configured weights.

    Spaces with weight 0 are not searched; a user without a vector in any weighted space
    falls back to their content profile.
    """
    weights = {f: w for f, w in state.settings.serving.hybrid_weights.items() if w > 0}
    mine = {"content_vec": ctx.content_vec, "cf_vec": ctx.cf_vec}
    usable = {f: v for f, v in mine.items() if v is not None and f in weights}
    if not usable and ctx.content_vec is not None:
        usable = {"content_vec": ctx.content_vec}
    if len(usable) > 1:
        return retrieval.hybrid(
            state.items,
            usable,
            weights,
            reason=retrieval.SPACE_REASON["cf_vec"],
            constraints=cons,
            limit=want,
        )
    for space, vec in usable.items():
        return retrieval.ann(
            state.items,
            vec,
            source=retrieval.SPACE_SOURCE[space],
            reason=retrieval.SPACE_REASON[space],
            constraints=cons,
            limit=want,
            space=space,
        )
    return []


def _candidates(
    state: AppState, req: RecRequest, ctx: UserContext, cons: Constraints, want: int
) -> list[Candidate]:
    items = state.items
    found: dict[str, Candidate] = {}
    if req.surface == "related":
        assert req.item_id is not None
        seed = items.get([req.item_id], fields=("content_vec", "title"))
        if req.item_id not in seed or req.item_id in _tombstoned(state, [req.item_id]):
            raise NotFound(f"item {req.item_id!r} does not exist")
        title = seed[req.item_id]["title"]
        retrieval.merge(
            found,
            retrieval.ann(
                items,
                seed[req.item_id]["content_vec"],
                source="similar_content",
                reason=f"similar to {title}",
                constraints=cons,
                limit=want,
            ),
        )
    elif req.surface == "trending":
        # Narrowest scope first: the asked category, else the user's region, else everywhere.
        if req.category:
            scope, reason = f"cat:{req.category}", f"trending in {req.category}"
        elif ctx.region:
            scope, reason = f"region:{ctx.region}", "trending in your region"
        else:
            scope, reason = "all", "trending now"
        scopes = [(scope, reason)] + ([("all", "trending now")] if scope != "all" else [])
        for sc, why in scopes:
            if len(found) < want:
                got = retrieval.trending(
                    state.redis,
                    state.keys,
                    items,
                    scope=sc,
                    reason=why,
                    constraints=cons,
                    limit=want,
                )
                retrieval.merge(found, [c for c in got if c.item_id not in found])
    else:
        retrieval.merge(found, _personal(state, ctx, cons, want))
    if len(found) < want:
        # Popular items top up a short list and serve users we know nothing about yet.
        retrieval.merge(
            found,
            [
                c
                for c in retrieval.popular(
                    state.redis, state.keys, items, constraints=cons, limit=want
                )
                if c.item_id not in found
            ],
        )
    return list(found.values())


@dataclass
class Retrieved:
    """Candidates that pass the hard filters, in retrieval order, and the rules applied."""

    candidates: list[Candidate]
    max_maturity: int
    exclude: set[str]
    tombstoned: set[str]


def retrieve(state: AppState, req: RecRequest, ctx: UserContext) -> Retrieved:
    """Candidate generation plus the hard filters (shared by serving and ranker training)."""
    cfg = state.settings.serving
    max_m = ctx.max_maturity(cfg.unknown_age_max_maturity)
    seen = ctx.recent if req.surface in ("homepage", "trending") else []
    exclude = set(seen) | ({req.item_id} if req.item_id else set())
    # Long `not in` lists make Milvus filters slow: the most recent items are excluded there,
    # the rest by the policy, with the search widened by as many.
    in_milvus = seen[: cfg.milvus_exclude_max] + ([req.item_id] if req.item_id else [])
    cons = Constraints(
        max_maturity=max_m, category=req.category, language=req.language, exclude=tuple(in_milvus)
    )
    want = min(
        max(cfg.min_candidates, req.limit * cfg.overfetch) + len(exclude) - len(set(in_milvus)),
        MILVUS_MAX_TOPK,
    )
    cands = _candidates(state, req, ctx, cons, want)
    tomb = _tombstoned(state, [c.item_id for c in cands])
    # Filtered before ranking so the ranker sees the same candidate sets it was trained on.
    kept = apply_policy(
        cands,
        limit=len(cands),
        max_maturity=max_m,
        region=ctx.region,
        tombstoned=tomb,
        exclude=exclude,
    )
    return Retrieved(kept, max_m, exclude, tomb)


def recommend(state: AppState, req: RecRequest) -> dict[str, Any]:
    """Recommendations for one request, as the API returns them.

    Never fails because a dependency did: Redis down -> the in-process popular snapshot;
    Milvus slow or down -> the user's last good list, then the snapshot; ranker failure -> the
    retrieval order. Every fallback passes the same safety policy, and the response says that
    it was degraded and why.
    """
    cfg = state.settings.serving
    br = state.breakers
    try:
        ctx = guarded(
            br.redis,
            load_user_context,
            state.redis,
            state.keys,
            req.user_id,
            recent_n=cfg.history_exclude,
        )
    except DependencyDown as e:
        return _degraded(state, req, None, [e.reason])
    try:
        key = _cache_key(state, req, ctx)
        hit = guarded(br.redis, state.redis.get, key) if cfg.cache_ttl_s > 0 else None
        if hit:
            metrics.CACHE.labels(req.surface, "hit").inc()
            return _from_cache(state, json.loads(hit), ctx)
        metrics.CACHE.labels(req.surface, "miss").inc()
    except DependencyDown as e:
        # The user's context is known: keep their own maturity ceiling and region.
        return _degraded(state, req, ctx, [e.reason])
    try:
        with metrics.stage("retrieval", req.surface):
            got = guarded(br.milvus, retrieve, state, req, ctx)
    except DependencyDown as e:
        return _degraded(state, req, ctx, [e.reason])
    except redis.RedisError:
        return _degraded(state, req, ctx, ["redis_unavailable"])
    reasons: list[str] = []
    cands = got.candidates
    if req.surface in RANKED_SURFACES:
        with metrics.stage("ranking", req.surface):
            cands = ranking.rank(state, ctx, cands)
        # rank() keeps the retrieval order on any failure; a live ranker that scored nothing
        # failed, and the answer says so.
        if len(cands) > 1 and ranking.SCORE not in cands[0].scores and _ranker_live(state):
            reasons.append("ranker_failed")
    with metrics.stage("policy", req.surface):
        final = apply_policy(
            cands,
            limit=req.limit,
            max_maturity=got.max_maturity,
            region=ctx.region,
            tombstoned=got.tombstoned,
            exclude=got.exclude,
        )
    result = _response(req, final, reasons)
    if not reasons:
        _remember(state, req, ctx, key, result, got.max_maturity)
    return result


def _ranker_live(state: AppState) -> bool:
    try:
        return state.models.ranker() is not None
    except Exception:
        return False


def _response(req: RecRequest, final: list[Candidate], reasons: list[str]) -> dict[str, Any]:
    for r in reasons:
        metrics.FALLBACKS.labels(req.surface, r).inc()
    return {
        "recommendation_id": uuid.uuid4().hex,
        "user_id": req.user_id,
        "surface": req.surface,
        "items": [
            {
                "item_id": c.item_id,
                "score": round(c.scores.get(ranking.SCORE, c.score), 6),
                "sources": c.sources,
                "reasons": c.reasons,
            }
            for c in final
        ],
        "generated_at": time.time(),
        "cached": False,
        "degraded": bool(reasons),
        "degraded_reasons": reasons,
    }


def _from_cache(state: AppState, cached: dict[str, Any], ctx: UserContext) -> dict[str, Any]:
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


def _still_allowed(state: AppState, ctx: UserContext, ids: list[str]) -> set[str]:
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
        )
    }


def _stale_parts(req: RecRequest) -> list[Any]:
    return [req.user_id, req.surface, req.item_id, req.category, req.language]


def _remember(
    state: AppState,
    req: RecRequest,
    ctx: UserContext,
    key: str,
    result: dict[str, Any],
    max_maturity: int,
) -> None:
    """Cache the list, and keep it longer as this request's last good list for outages."""
    cfg = state.settings.serving
    try:
        pipe = state.redis.pipeline(transaction=False)
        if cfg.cache_ttl_s > 0:
            pipe.set(key, json.dumps(result), px=int(cfg.cache_ttl_s * 1000))
        if cfg.stale_ttl_s > 0:
            stale = {
                "at": time.time(),
                "items": result["items"],
                "limit": req.limit,
                "max_maturity": max_maturity,
                "region": ctx.region,
            }
            pipe.set(
                fallback.stale_key(state, _stale_parts(req)),
                json.dumps(stale),
                px=int(cfg.stale_ttl_s * 1000),
            )
        guarded(state.breakers.redis, pipe.execute)
    except DependencyDown:
        pass  # the answer is good; only its caching failed


def _degraded(
    state: AppState, req: RecRequest, ctx: UserContext | None, reasons: list[str]
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
    exclude = set(ctx.recent if ctx and req.surface != "related" else [])
    if req.item_id:
        exclude.add(req.item_id)
    tomb: set[str] = set()
    cands: list[Candidate] = []
    if ctx is not None:  # Redis answers: tombstones, the change log and the last list
        try:
            cands, reasons, tomb, changed = _verified_fallbacks(state, req, max_m, region, reasons)
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
    )
    return _response(req, final, reasons)


CHANGE_MARGIN_S = 5.0  # clocks of API hosts and Redis may differ a little


def _verified_fallbacks(
    state: AppState, req: RecRequest, max_m: int, region: str | None, reasons: list[str]
) -> tuple[list[Candidate], list[str], set[str], set[str]]:
    """The user's last good list (if filtered at least as strictly as they need now), the
    tombstoned ids, and the ids written since the list or the snapshot was built."""
    br = state.breakers.redis
    raw = guarded(br, state.redis.get, fallback.stale_key(state, _stale_parts(req)))
    last = json.loads(raw) if raw else None
    cands: list[Candidate] = []
    if last and "at" in last and last["max_maturity"] <= max_m and last["region"] == region:
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
