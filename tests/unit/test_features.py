"""Ranker features: fixed named columns and the values of a small known case."""

from __future__ import annotations

import math

import numpy as np

from app.pipeline.features import FEATURE_NAMES, FeatureInputs, feature_matrix
from app.pipeline.retrieval import Candidate

DAY = 86_400.0


def _cand(item_id: str, score: float, category: str, published: int, sources: list[str]):
    return Candidate(
        item_id, {"category": category, "published_at": published}, sources, {sources[0]: score}
    )


def _inputs(**over: object) -> FeatureInputs:
    base = dict(
        user_cf=np.array([1.0, 0.0], np.float32),
        user_content=np.array([0.0, 1.0, 0.0], np.float32),
        history_len=3,
        last_ts=100 * DAY,
        recent_content=np.array([[1, 0, 0], [0, 0, 1]], np.float32),
        recent_categories=["drama", "drama", "comedy", "drama"],
        item_content=np.array([[1, 0, 0], [0, 1, 0], [np.nan] * 3], np.float32),
        cf_scores=np.array([0.5, 0.9, 0.1], np.float32),
        popularity=np.array([0.0, 9.0, 3.0], np.float32),
        top_popularity=19.0,
    )
    base.update(over)
    return FeatureInputs(**base)  # type: ignore[arg-type]


CANDS = [
    _cand("a", 0.5, "drama", int(90 * DAY), ["collaborative"]),
    _cand("b", 0.4, "comedy", 0, ["collaborative", "popular"]),
    _cand("c", 0.3, "horror", int(10 * DAY), ["popular"]),
]


def test_columns_are_fixed_and_named() -> None:
    assert FEATURE_NAMES == (
        "retrieval_score",
        "retrieval_rank",
        "from_popular",
        "cf_score",
        "cf_rank",
        "content_score",
        "content_recent_max",
        "log_popularity",
        "item_age_days",
        "log_history_len",
        "category_share",
    )
    x = feature_matrix(CANDS, _inputs())
    assert x.dtype == np.float32 and x.shape == (3, len(FEATURE_NAMES))
    assert feature_matrix([], _inputs()).shape == (0, len(FEATURE_NAMES))


def test_known_values() -> None:
    x = feature_matrix(CANDS, _inputs())
    f = {name: x[:, j].tolist() for j, name in enumerate(FEATURE_NAMES)}
    assert np.allclose(f["retrieval_score"], [0.5, 0.4, 0.3])
    assert f["retrieval_rank"] == [0, 1, 2]
    assert f["from_popular"] == [0, 0, 1]
    assert np.allclose(f["cf_score"], [0.5, 0.9, 0.1])
    assert f["cf_rank"] == [1, 0, 2]
    assert f["content_score"][:2] == [0, 1] and math.isnan(f["content_score"][2])
    assert f["content_recent_max"][:2] == [1, 0] and math.isnan(f["content_recent_max"][2])
    assert np.allclose(f["log_popularity"], np.log1p([0, 9, 3]) - np.log1p(19))
    # Age is measured from the user's last interaction, not from now; unknown dates are NaN.
    assert f["item_age_days"][0] == 10 and math.isnan(f["item_age_days"][1])
    assert f["item_age_days"][2] == 90
    assert np.allclose(f["log_history_len"], np.log1p(3))
    assert f["category_share"] == [0.75, 0.25, 0]


def test_missing_user_state_gives_nan_not_errors() -> None:
    x = feature_matrix(
        CANDS,
        _inputs(
            user_cf=None,
            user_content=None,
            last_ts=None,
            recent_content=np.zeros((0, 1), np.float32),
            recent_categories=[],
            history_len=0,
        ),
    )
    col = {n: j for j, n in enumerate(FEATURE_NAMES)}
    for name in (
        "cf_score",
        "cf_rank",
        "content_score",
        "content_recent_max",
        "item_age_days",
        "category_share",
    ):
        assert np.isnan(x[:, col[name]]).all(), name
    assert np.isfinite(x[:, col["log_popularity"]]).all()
