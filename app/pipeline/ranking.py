"""Re-ranking: the published XGBoost LambdaMART model scores all candidates in one call.

Any failure (no model, an artefact that does not load, features that do not match, a predict
error) keeps the retrieval order: ranking can cost quality, never availability.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from app.pipeline.context import UserContext
from app.pipeline.features import FEATURE_NAMES, build_features
from app.pipeline.retrieval import Candidate
from app.state import AppState
from indexing.registry import RankerModel

log = logging.getLogger(__name__)

SCORE = "ranker"  # key of the ranker's score in Candidate.scores


def score(model: RankerModel, x: np.ndarray) -> np.ndarray:
    """Ranker scores for a feature matrix whose columns are FEATURE_NAMES."""
    if model.feature_names != FEATURE_NAMES:
        raise ValueError(f"ranker {model.version} was trained on other features")
    return np.asarray(model.booster.inplace_predict(x), dtype=np.float64).reshape(-1)


def rank(
    state: AppState, ctx: UserContext, cands: Sequence[Candidate], version: str = "current"
) -> list[Candidate]:
    """Candidates reordered by a ranker ('current' or a version), or as given without one."""
    out = list(cands)
    if len(out) < 2:
        return out
    try:
        model = state.models.ranker() if version == "current" else state.models.ranker_at(version)
        if model is None:
            return out
        x = build_features(state.redis, state.keys, state.items, ctx, out, cf=state.models.cf())
        scores = score(model, x)
        if len(scores) != len(out) or not np.all(np.isfinite(scores)):
            raise ValueError("ranker returned unusable scores")
    except Exception:
        log.exception("ranking failed for user %s: keeping the retrieval order", ctx.user_id)
        return out
    for c, s in zip(out, scores, strict=True):
        c.scores[SCORE] = float(s)
    order = np.argsort(-scores, kind="stable")
    return [out[i] for i in order]
