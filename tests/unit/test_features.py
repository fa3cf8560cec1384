"""Ranker features: fixed named columns and the values of a small known case."""

from __future__ import annotations

import math

import numpy as np

from serving.features import FEATURE_NAMES, FeatureInputs, feature_matrix
from serving.retrieval import Candidate

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
        nbr_scores=np.array([0.2, 0.6, np.nan], np.float32),
        nbr_recent=np.array([0.3, 0.3, 0.3], np.float32),
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
        "retrieval_rank",
        "from_popular",
        "cf_rank",
        "cf_z",
        "nbr_rank",
        "nbr_z",
        "nbr_recent_z",
        "content_score",
        "content_recent_max",
        "log_popularity",
        "item_age_days",
        "log_history_len",
        "category_share",
        "hour_sin",
        "hour_cos",
        "hour_category_share",
        "device_category_share",
    )
    x = feature_matrix(CANDS, _inputs())
    assert x.dtype == np.float32 and x.shape == (3, len(FEATURE_NAMES))
    assert feature_matrix([], _inputs()).shape == (0, len(FEATURE_NAMES))


def test_known_values() -> None:
    x = feature_matrix(CANDS, _inputs())
    f = {name: x[:, j].tolist() for j, name in enumerate(FEATURE_NAMES)}
    assert f["retrieval_rank"] == [0, 1, 2]
    assert f["from_popular"] == [0, 0, 1]
    assert f["cf_rank"] == [1, 0, 2]
    cf = np.array([0.5, 0.9, 0.1])
    assert np.allclose(f["cf_z"], (cf - cf.mean()) / cf.std(), atol=1e-6)
    # Neighbour scores: NaN (an item the model does not know) ranks last and stays NaN.
    assert f["nbr_rank"] == [1, 0, 2]
    assert np.allclose(f["nbr_z"][:2], [-1, 1]) and math.isnan(f["nbr_z"][2])
    assert f["nbr_recent_z"] == [0, 0, 0]  # a constant column carries no information
    assert f["content_score"][:2] == [0, 1] and math.isnan(f["content_score"][2])
    assert f["content_recent_max"][:2] == [1, 0] and math.isnan(f["content_recent_max"][2])
    assert np.allclose(f["log_popularity"], np.log1p([0, 9, 3]) - np.log1p(19))
    # Age is measured from the user's last interaction, not from now; unknown dates are NaN.
    assert f["item_age_days"][0] == 10 and math.isnan(f["item_age_days"][1])
    assert f["item_age_days"][2] == 90
    assert np.allclose(f["log_history_len"], np.log1p(3))
    assert f["category_share"] == [0.75, 0.25, 0]
    # Without a local hour or items used at this time of day, the context columns are NaN.
    for name in ("hour_sin", "hour_cos", "hour_category_share", "device_category_share"):
        assert all(math.isnan(v) for v in f[name]), name


def test_request_hour_and_the_users_habits_at_that_hour() -> None:
    col = {n: j for j, n in enumerate(FEATURE_NAMES)}
    x = feature_matrix(CANDS, _inputs(local_hour=18, hour_categories=["horror", None, "comedy"]))
    assert np.allclose(x[:, col["hour_sin"]], -1) and np.allclose(x[:, col["hour_cos"]], 0)
    assert x[:, col["hour_category_share"]].tolist() == [0, 0.5, 0.5]
    midnight = feature_matrix(CANDS, _inputs(local_hour=0))
    assert np.allclose(midnight[:, col["hour_sin"]], 0) and np.allclose(
        midnight[:, col["hour_cos"]], 1
    )


def test_the_users_habits_on_the_requests_device() -> None:
    col = {n: j for j, n in enumerate(FEATURE_NAMES)}
    x = feature_matrix(CANDS, _inputs(device_categories=["horror", "horror", "drama", None]))
    assert np.allclose(x[:, col["device_category_share"]], [1 / 3, 0, 2 / 3])


def test_at_this_hour_wraps_around_midnight() -> None:
    from serving.features import HOUR_WINDOW_S, at_this_hour

    at = 10 * DAY + 23.5 * 3600  # 23:30 on day 10
    times = [3 * DAY + 1 * 3600, 9 * DAY + 21.5 * 3600, 9 * DAY + 21.4 * 3600, at + 7 * DAY]
    assert at_this_hour(times, at) == [True, True, False, True]
    assert HOUR_WINDOW_S == 2 * 3600


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
            nbr_scores=None,
            nbr_recent=None,
        ),
    )
    col = {n: j for j, n in enumerate(FEATURE_NAMES)}
    for name in (
        "cf_rank",
        "cf_z",
        "nbr_rank",
        "nbr_z",
        "nbr_recent_z",
        "content_score",
        "content_recent_max",
        "item_age_days",
        "category_share",
        "hour_category_share",
        "device_category_share",
    ):
        assert np.isnan(x[:, col[name]]).all(), name
    assert np.isfinite(x[:, col["log_popularity"]]).all()


def test_neighbour_scores_from_history_most_recent_first() -> None:
    import scipy.sparse as sp

    from core.stores.registry import CFModel
    from embeddings.ease import ItemNeighbours
    from embeddings.ials import ALSModel
    from serving.features import RECENT_NBR, neighbour_scores

    n = RECENT_NBR + 3
    ids = [f"i{k}" for k in range(n)]
    nb = ItemNeighbours(l2=1.0, k=n)
    # Item k points at item n-1 with weight k+1: easy sums to check.
    rows, cols = np.arange(n - 1), np.full(n - 1, n - 1)
    nb.weights = sp.csr_matrix((np.arange(1.0, n), (rows, cols)), shape=(n, n), dtype=np.float32)
    cf = CFModel("v", ALSModel(2), {i: k for k, i in enumerate(ids)}, nb)
    history = ids[: n - 1]  # most recent first
    whole, recent = neighbour_scores(cf, history, [ids[-1], ids[0], "new"])
    assert whole is not None and recent is not None
    assert whole[:2].tolist() == [sum(range(1, n)), 0.0] and math.isnan(whole[2])
    assert recent[0] == sum(range(1, RECENT_NBR + 1))
    assert neighbour_scores(cf, [], ids) == (None, None)
    assert neighbour_scores(CFModel("v", ALSModel(2), {}, None), history, ids) == (None, None)
