"""The last step of every path through the pipeline: candidates in, the typed answer out."""

from __future__ import annotations

import time
import uuid

from serving import metrics, ranking, scoring
from serving.request import RecItem, RecRequest, RecResult
from serving.retrieval import Candidate


def final_score(c: Candidate) -> float:
    """The score that ordered the item: the ranker's, the blend's, the fused one, its source's."""
    for key in (ranking.SCORE, ranking.BLEND, scoring.FUSED):
        if key in c.scores:
            return c.scores[key]
    return c.score


def response(
    req: RecRequest,
    final: list[Candidate],
    reasons: list[str],
    variant: str,
    rec_id: str | None = None,
) -> RecResult:
    """The answer for `final` (in order); `reasons` non-empty marks it degraded."""
    for r in reasons:
        metrics.FALLBACKS.labels(req.surface, r).inc()
    metrics.diversity(req.surface, [c.fields.get("category") or None for c in final])
    items: list[RecItem] = [
        {
            "item_id": c.item_id,
            "score": round(final_score(c), 6),
            "sources": c.sources,
            "reasons": c.reasons,
            "position": pos,
            "explored": c.explored,
            "propensity": c.propensity,
        }
        for pos, c in enumerate(final, 1)
    ]
    return {
        "recommendation_id": rec_id or uuid.uuid4().hex,
        "user_id": req.user_id,
        "surface": req.surface,
        "variant": variant,
        "items": items,
        "generated_at": time.time(),
        "cached": False,
        "degraded": bool(reasons),
        "degraded_reasons": reasons,
    }
