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

from app.errors import NotFound
from app.pipeline import ranking, retrieval
from app.pipeline.context import UserContext, load_user_context
from app.pipeline.policy import apply_policy
from app.pipeline.retrieval import Candidate, Constraints
from app.state import AppState

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
    scores = state.redis.zmscore(state.keys.tombstones, ids)
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
    """Recommendations for one request, as the API returns them."""
    cfg = state.settings.serving
    ctx = load_user_context(state.redis, state.keys, req.user_id, recent_n=cfg.history_exclude)
    key = _cache_key(state, req, ctx)
    if cfg.cache_ttl_s > 0 and (hit := state.redis.get(key)):
        cached: dict[str, Any] = json.loads(hit)
        # Items deleted or hidden since the list was cached are dropped even from a hit.
        gone = _tombstoned(state, [i["item_id"] for i in cached["items"]])
        cached["items"] = [i for i in cached["items"] if i["item_id"] not in gone]
        # Every response is its own impression: attribution needs a fresh id.
        cached["recommendation_id"] = uuid.uuid4().hex
        cached["cached"] = True
        return cached
    got = retrieve(state, req, ctx)
    cands = got.candidates
    if req.surface in RANKED_SURFACES:
        cands = ranking.rank(state, ctx, cands)
    final = apply_policy(
        cands,
        limit=req.limit,
        max_maturity=got.max_maturity,
        region=ctx.region,
        tombstoned=got.tombstoned,
        exclude=got.exclude,
    )
    result = {
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
    }
    if cfg.cache_ttl_s > 0:
        state.redis.set(key, json.dumps(result), px=int(cfg.cache_ttl_s * 1000))
    return result
