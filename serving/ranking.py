"""Re-ranking: the published XGBoost LambdaMART model scores all candidates in one call.

Without a ranker (none published, an artefact that does not load, features that do not match,
a predict error) the candidates are ordered by the blend of the interaction model's two views
(`embeddings.blend`: iALS and item neighbours, weighted as chosen at training); without that
either (a model too old or too small to have a weight, a user without a collaborative vector)
the fused retrieval order stays. Ranking can cost quality, never availability.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from core.context import UserContext
from core.stores.registry import CFModel, RankerModel
from embeddings.blend import blend
from serving.drift import MONITOR
from serving.features import FEATURE_NAMES, build_features, neighbour_scores
from serving.retrieval import Candidate
from serving.state import ServingState

log = logging.getLogger(__name__)

SCORE = "ranker"  # key of the ranker's score in Candidate.scores
BLEND = "blend"  # key of the blended collaborative score (the order without a ranker)
COLLABORATIVE = "collaborative"  # the personal source's score (user . item cf_vec in Milvus)


def columns(model: RankerModel, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The columns of a FEATURE_NAMES matrix `model` was trained on, in its order: a ranker
    trained before a feature was added keeps scoring; one that needs a feature serving no
    longer computes is refused."""
    if model.feature_names == FEATURE_NAMES:
        return x
    unknown = set(model.feature_names) - set(FEATURE_NAMES)
    if unknown:
        raise ValueError(f"ranker {model.version} was trained on other features: {unknown}")
    return x[:, [FEATURE_NAMES.index(name) for name in model.feature_names]]


def predict(model: RankerModel, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Ranker scores for a feature matrix in the model's own columns (`columns`)."""
    return np.asarray(model.booster.inplace_predict(x), dtype=np.float64).reshape(-1)


def reads(state: ServingState, version: str) -> frozenset[str] | None:
    """The columns the ranker `version` ('current' or a version) scores on: empty without
    one, None when it cannot be known now (a registry read failed)."""
    try:
        model = state.models.ranker() if version == "current" else state.models.ranker_at(version)
    except Exception:
        return None
    return frozenset(model.feature_names) if model is not None else frozenset()


def rank(
    state: ServingState, ctx: UserContext, cands: Sequence[Candidate], version: str = "current"
) -> list[Candidate]:
    """Candidates reordered by a ranker ('current' or a version), else by the blend."""
    out = list(cands)
    if len(out) < 2:
        return out
    if ctx.picks and not ctx.recent:
        return picks_first(ctx, out)
    try:
        model = state.models.ranker() if version == "current" else state.models.ranker_at(version)
        if model is not None:
            x = columns(model, build_features(state, ctx, out, cf=state.models.cf()))
            scores = predict(model, x)
            if len(scores) != len(out) or not np.all(np.isfinite(scores)):
                raise ValueError("ranker returned unusable scores")
            MONITOR.observe(model.version, model.reference, model.feature_names, x)
            for c, s in zip(out, scores, strict=True):
                c.scores[SCORE] = float(s)
            order = np.argsort(-scores, kind="stable")
            return [out[i] for i in order]
    except Exception:
        log.exception("ranking failed for user %s: falling back to the blend", ctx.user_id)
    return without_ranker(state, ctx, out)


def picks_first(ctx: UserContext, cands: Sequence[Candidate]) -> list[Candidate]:
    """A user who picked categories and has no history yet: items of the picks first, each
    part in the fused order. The ranker is skipped: every user feature is empty then, so it
    scores by item features alone (measured: 12 of 13 items tied, the picked category's first
    at position 14)."""
    picks = set(ctx.picks)
    mine = [c for c in cands if c.fields.get("category") in picks]
    return mine + [c for c in cands if c.fields.get("category") not in picks]


def without_ranker(
    state: ServingState, ctx: UserContext, cands: Sequence[Candidate]
) -> list[Candidate]:
    """The blended order when the model has a blend weight, else the order given."""
    try:
        ordered = blend_order(state.models.cf(), ctx, cands)
    except Exception:
        log.exception("blending failed for user %s: keeping the fused order", ctx.user_id)
        return list(cands)
    return list(cands) if ordered is None else ordered


def blend_order(
    cf: CFModel | None, ctx: UserContext, cands: Sequence[Candidate]
) -> list[Candidate] | None:
    """Candidates by the blended iALS + item-neighbour score; None where it does not apply.

    Items the model does not know (added since it was trained) use their retrieval
    collaborative score when they have one, so projected cf vectors still count; with
    neither they score as the average candidate.
    """
    if cf is None or cf.blend_cf_weight is None or ctx.cf_vec is None:
        return None
    factors = cf.als.item_factors
    if len(ctx.cf_vec) != factors.shape[1]:
        return None
    ids = [c.item_id for c in cands]
    pos = np.asarray([cf.item_index.get(i, -1) for i in ids], dtype=np.int64)
    known = pos >= 0
    cf_scores = np.asarray([c.scores.get(COLLABORATIVE, np.nan) for c in cands], np.float64)
    cf_scores[known] = factors[pos[known]] @ ctx.cf_vec.astype(np.float32)
    nbr, _ = neighbour_scores(cf, ctx.recent, ids)
    blended = blend(cf_scores, nbr, cf.blend_cf_weight)
    for c, s in zip(cands, blended, strict=True):
        c.scores[BLEND] = float(s)
    order = np.argsort(-blended, kind="stable")
    return [cands[i] for i in order]
