"""Unit tests for the interaction model maths: matrix, iALS with fold-in, projection, EASE."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from embeddings.confidence import CONFIDENCE_WEIGHTS, RATING_SCHEMES, confidence_weight
from embeddings.ease import ItemNeighbours, ease_weights, spd_inverse
from embeddings.ials import ALSModel, forget_user
from embeddings.matrix import InteractionMatrix
from embeddings.projection import ContentProjection

SHARED_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
ML100K = SHARED_DATASETS / "ml-100k"

N_USERS, N_ITEMS = 80, 40  # users 0-39 like items 0-19 (cluster A), users 40-79 items 20-39


def two_clusters(seed: int = 0) -> sp.csr_matrix:
    """Binary user x item matrix with two taste clusters and a little cross-cluster noise."""
    rng = np.random.default_rng(seed)
    half_u, half_i = N_USERS // 2, N_ITEMS // 2
    rows: list[int] = []
    cols: list[int] = []
    for u in range(N_USERS):
        own = 0 if u < half_u else half_i
        items = rng.choice(half_i, 8, replace=False) + own
        rows += [u] * len(items)
        cols += items.tolist()
        if u % 5 == 0:  # every fifth user also touched one item of the other cluster
            rows.append(u)
            cols.append(int(half_i - own + rng.integers(half_i)))
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(N_USERS, N_ITEMS))


def in_own_cluster(user: int, items: np.ndarray) -> bool:
    """True when every item is in the user's cluster."""
    return bool(
        (items < N_ITEMS // 2).all() if user < N_USERS // 2 else (items >= N_ITEMS // 2).all()
    )


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors."""
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def unseen_top(scores: np.ndarray, seen: np.ndarray, k: int) -> np.ndarray:
    """Top-k item indices of one score row, skipping seen items."""
    s = scores.astype(np.float64).copy()
    s[seen] = -np.inf
    return np.argsort(-s, kind="stable")[:k]


# --------------------------------------------------------------------------- confidence


def test_event_confidence_order_and_exclusions() -> None:
    w = [confidence_weight(k, None) for k in ("purchase", "like", "watch", "click", "view")]
    assert w == sorted(w, reverse=True) and len(set(w)) == 5 and w[-1] > 0
    assert confidence_weight("dislike", None) == 0.0
    assert confidence_weight("skip", None) == 0.0
    assert confidence_weight("unknown-kind", None) == 0.0
    assert set(CONFIDENCE_WEIGHTS) >= {"purchase", "like", "watch", "click", "view"}


@pytest.mark.parametrize("scheme", sorted(RATING_SCHEMES))
def test_every_rating_is_a_positive(scheme: str) -> None:
    values = [confidence_weight("rate", v, rating_scheme=scheme) for v in (1, 2, 3, 4, 5, None)]
    assert all(v > 0 for v in values)
    assert values[:5] == sorted(values[:5])  # never prefers a lower rating


def test_unknown_rating_scheme_rejected() -> None:
    with pytest.raises(ValueError, match="rating scheme"):
        confidence_weight("rate", 4.0, rating_scheme="nope")


# --------------------------------------------------------------------------- matrix


def rec(user: str, item: str, kind: str = "view", value: float | None = None) -> dict:
    """One INTERACTION record."""
    return {"user_id": user, "item_id": item, "type": kind, "value": value, "timestamp": 0.0}


def test_from_records_sums_duplicates_and_drops_negatives() -> None:
    records = [
        rec("u1", "a", "view"),
        rec("u1", "a", "view"),
        rec("u1", "b", "purchase"),
        rec("u2", "b", "dislike"),
        rec("u2", "c", "rate", 2.0),
        rec("u3", "c", "skip"),
    ]
    m = InteractionMatrix.from_records(records)
    assert m.user_ids == ["u1", "u2"]  # u3 only skipped: no positive, no row
    assert m.item_ids == ["a", "b", "c"]
    dense = m.matrix.toarray()
    assert dense[0, 0] == pytest.approx(2 * CONFIDENCE_WEIGHTS["view"])
    assert dense[0, 1] == pytest.approx(CONFIDENCE_WEIGHTS["purchase"])
    assert dense[1, 1] == 0.0
    assert dense[1, 2] == pytest.approx(2.0 / 3.5)  # linear scheme: a 2-star rating still counts
    assert m.matrix.dtype == np.float32


def test_from_records_fixed_catalogue_order() -> None:
    records = [rec("u1", "b"), rec("u1", "zzz"), rec("u2", "a", "like")]
    m = InteractionMatrix.from_records(records, item_ids=["a", "b", "c"], user_ids=["u2", "u1"])
    assert m.matrix.shape == (2, 3)
    assert m.item_index == {"a": 0, "b": 1, "c": 2}
    assert m.matrix[0, 0] == pytest.approx(CONFIDENCE_WEIGHTS["like"])
    assert m.matrix[1, 1] == pytest.approx(CONFIDENCE_WEIGHTS["view"])
    assert m.matrix.nnz == 2  # the unknown item "zzz" is ignored
    idx, w = m.user_history("u1")
    assert idx.tolist() == [1] and w.tolist() == [pytest.approx(0.5)]
    assert len(m.user_history("nobody")[0]) == 0
    assert m.items_with_interactions().tolist() == [0, 1]


def test_from_records_rating_scheme_and_custom_weights() -> None:
    records = [rec("u", "a", "rate", 5.0), rec("u", "b", "rate", 3.0), rec("u", "c", "click")]
    m = InteractionMatrix.from_records(records, rating_scheme="boost", weights={"click": 7.0})
    assert m.matrix.toarray()[0].tolist() == pytest.approx([3.0, 1.0, 7.0])


# --------------------------------------------------------------------------- ALS


@pytest.fixture(scope="module")
def clusters() -> sp.csr_matrix:
    return two_clusters()


@pytest.fixture(scope="module")
def model(clusters: sp.csr_matrix) -> ALSModel:
    return ALSModel(8, regularization=10.0, alpha=5.0, iterations=20).fit(clusters)


def test_als_shapes_and_dim(model: ALSModel) -> None:
    assert model.dim == 8
    assert model.user_factors.shape == (N_USERS, 8)
    assert model.item_factors.shape == (N_ITEMS, 8)
    assert model.user_factors.dtype == np.float32


@pytest.mark.parametrize("backend", ["auto", "numpy"])
def test_als_recommends_own_cluster_first(clusters: sp.csr_matrix, backend: str) -> None:
    m = ALSModel(8, regularization=10.0, alpha=5.0, iterations=20, backend=backend).fit(clusters)
    scores = m.scores(np.arange(N_USERS))
    for u in range(N_USERS):
        assert in_own_cluster(u, unseen_top(scores[u], clusters[u].indices, 5)), u


def test_fold_in_equals_trained_user_factor(model: ALSModel, clusters: sp.csr_matrix) -> None:
    for u in range(N_USERS):
        row = clusters[u]
        assert cosine(model.fold_in(row.indices, row.data), model.user_factors[u]) > 0.999


def test_fold_in_agrees_with_full_retrain(clusters: sp.csr_matrix) -> None:
    # Rank 2 is the true rank of the data, so the factorisation is well determined and a
    # user left out of training must land where retraining with them would put them.
    params = {"factors": 2, "regularization": 1.0, "alpha": 5.0, "iterations": 30}
    full = ALSModel(**params).fit(clusters)
    for u in (0, 1, 45):
        without = clusters.tolil()
        without[u, :] = 0
        partial = ALSModel(**params).fit(without.tocsr())
        row = clusters[u]
        folded = partial.fold_in(row.indices, row.data)
        assert cosine(folded, full.user_factors[u]) > 0.99
        scores_folded = partial.item_factors @ folded
        scores_full = full.item_factors @ full.user_factors[u]
        assert np.corrcoef(scores_folded, scores_full)[0, 1] > 0.99


def test_fold_in_new_user_gets_own_cluster(model: ALSModel) -> None:
    history = np.array([0, 3, 5, 7, 11])
    vec = model.fold_in(history, np.ones(len(history)))
    assert in_own_cluster(0, unseen_top(model.item_factors @ vec, history, 5))


def test_fold_in_sums_duplicates_and_ignores_zero_weights(model: ALSModel) -> None:
    a = model.fold_in([1, 2, 2, 9], [1.0, 0.5, 0.5, 0.0])
    b = model.fold_in([1, 2], [1.0, 1.0])
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not model.fold_in([], []).any()


def test_fold_in_many_equals_one_at_a_time(model: ALSModel) -> None:
    """Batched solves (padded histories of different lengths, empty ones) give each user the
    vector `fold_in` gives them alone."""
    rng = np.random.default_rng(3)
    n_items = len(model.item_factors)
    histories = [
        (rng.integers(0, n_items, size=n), rng.random(n) * 3) for n in [1, 5, 0, 40, 2, 7] * 7
    ]
    histories.append(([1, 2, 2], [0.0, 0.0, 0.0]))  # no positive weight: the zero vector
    many = model.fold_in_many(histories)
    one = np.stack([model.fold_in(i, w) for i, w in histories])
    np.testing.assert_allclose(many, one, rtol=1e-4, atol=1e-6)
    assert not many[-1].any() and not many[2].any()
    assert model.fold_in_many([]).shape == (0, model.item_factors.shape[1])


def test_fold_in_rejects_bad_input(model: ALSModel) -> None:
    with pytest.raises(ValueError):
        model.fold_in([1, 2], [1.0])
    with pytest.raises(IndexError):
        model.fold_in([N_ITEMS], [1.0])
    with pytest.raises(ValueError):
        model.fold_in([1], [-1.0])


def test_als_save_load_roundtrip(tmp_path: Path) -> None:
    records = [rec("u1", "a", "like"), rec("u1", "b"), rec("u2", "b", "purchase"), rec("u2", "c")]
    matrix = InteractionMatrix.from_records(records)
    m = ALSModel(4, regularization=1.0, alpha=2.0, iterations=5).fit(matrix)
    loaded = ALSModel.load(m.save(tmp_path / "als"))
    # No per-user row or id by default: serving folds users in; an erasure has nothing to edit.
    assert loaded.user_factors.shape == (0, 4) and loaded.user_ids is None
    np.testing.assert_array_equal(loaded.item_factors, m.item_factors)
    assert loaded.params() == m.params()
    assert loaded.item_ids == ["a", "b", "c"]
    np.testing.assert_allclose(loaded.fold_in([0, 2], [1, 1]), m.fold_in([0, 2], [1, 1]))
    full = ALSModel.load(m.save(tmp_path / "with-users", with_users=True))
    np.testing.assert_array_equal(full.user_factors, m.user_factors)
    assert full.user_ids == ["u1", "u2"]


def test_forget_user_removes_one_row(tmp_path: Path) -> None:
    records = [rec("u1", "a", "like"), rec("u2", "b"), rec("u3", "c", "purchase")]
    m = ALSModel(4, regularization=1.0, alpha=2.0, iterations=5).fit(
        InteractionMatrix.from_records(records)
    )
    path = m.save(tmp_path / "als", with_users=True)
    assert forget_user(path, "u2") and not forget_user(path, "u2")
    assert not forget_user(tmp_path / "missing", "u1")
    loaded = ALSModel.load(path)
    assert loaded.user_ids == ["u1", "u3"]
    np.testing.assert_array_equal(loaded.user_factors, m.user_factors[[0, 2]])
    assert "u2" not in (path / "meta.json").read_text()


def test_als_load_rejects_other_versions(tmp_path: Path) -> None:
    m = ALSModel(2, iterations=2).fit(sp.csr_matrix(np.eye(3, dtype=np.float32)))
    root = m.save(tmp_path / "als")
    meta = json.loads((root / "meta.json").read_text())
    meta["version"] = 999
    (root / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="version"):
        ALSModel.load(root)


# --------------------------------------------------------------------------- projection


def unit_rows(x: np.ndarray) -> np.ndarray:
    """L2-normalise rows."""
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_content_projection_recovers_linear_map() -> None:
    rng = np.random.default_rng(7)
    w_true = rng.normal(size=(384, 16))
    b_true = rng.normal(size=16)
    content = unit_rows(rng.normal(size=(1500, 384)))
    cf = content @ w_true + b_true
    proj = ContentProjection().fit(content, cf, alpha=1e-6)
    unseen = unit_rows(rng.normal(size=(50, 384)))
    np.testing.assert_allclose(proj.project(unseen), unseen @ w_true + b_true, atol=1e-3)
    np.testing.assert_allclose(proj.weights, w_true, atol=1e-3)


def test_content_projection_ridge_shrinks_and_roundtrips(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    content = unit_rows(rng.normal(size=(100, 384)))
    cf = rng.normal(size=(100, 8))
    weak = ContentProjection().fit(content, cf, alpha=0.1)
    strong = ContentProjection().fit(content, cf, alpha=1e4)
    assert np.linalg.norm(strong.weights) < np.linalg.norm(weak.weights)
    # Heavy shrinkage leaves the mean cf vector (the bias), the right guess with no signal.
    np.testing.assert_allclose(strong.project(content).mean(axis=0), cf.mean(axis=0), atol=0.05)
    loaded = ContentProjection.load(weak.save(tmp_path / "proj"))
    np.testing.assert_array_equal(loaded.project(content), weak.project(content))
    assert loaded.alpha == 0.1


def test_content_projection_errors() -> None:
    with pytest.raises(RuntimeError):
        ContentProjection().project(np.zeros((1, 4)))
    with pytest.raises(ValueError):
        ContentProjection().fit(np.zeros((3, 4)), np.zeros((2, 2)))
    with pytest.raises(ValueError):
        ContentProjection().fit(np.zeros((3, 4)), np.zeros((3, 2)), alpha=0.0)


# --------------------------------------------------------------------------- real data


@pytest.mark.datasets
@pytest.mark.skipif(not ML100K.is_dir(), reason="shared/datasets/ml-100k not available")
def test_ml100k_fold_in_reproduces_trained_users() -> None:
    # Speed (training under 60 s, fold-in under 5 ms) is measured by bench/training.py.
    from indexing.datasets import load_dataset

    matrix = InteractionMatrix.from_records(load_dataset(ML100K).iter_interactions())
    m = ALSModel(64, regularization=50.0, alpha=5.0).fit(matrix)
    cosines = []
    for u in range(0, matrix.n_users, 10):
        idx, w = matrix.user_history(matrix.user_ids[u])
        cosines.append(cosine(m.fold_in(idx, w), m.user_factors[u]))
    assert min(cosines) > 0.999


# --------------------------------------------------------------------------- neighbours


def _ease_dense(x: np.ndarray, l2: float) -> np.ndarray:
    """EASE written out from the paper, for comparison."""
    g = x.T @ x + l2 * np.eye(x.shape[1])
    p = np.linalg.inv(g)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b


def test_ease_weights_are_the_closed_form() -> None:
    rng = np.random.default_rng(7)
    x = (rng.random((50, 9)) < 0.3).astype(np.float32)
    got = ease_weights(sp.csr_matrix(x), 3.0)
    assert got.dtype == np.float32 and got.shape == (9, 9)
    assert np.allclose(got, _ease_dense(x.astype(np.float64), 3.0), atol=1e-5)
    assert not np.diag(got).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spd_inverse_works_in_its_input_precision(dtype: type[np.floating]) -> None:
    rng = np.random.default_rng(8)
    a = rng.random((6, 6))
    spd = (a @ a.T + 6 * np.eye(6)).astype(dtype)
    inv = spd_inverse(spd.copy())
    assert inv.dtype == dtype
    assert np.allclose(inv @ spd, np.eye(6), atol=1e-4)
    with pytest.raises(np.linalg.LinAlgError):
        spd_inverse(-np.eye(3, dtype=dtype))


def test_neighbours_equal_ease_when_nothing_is_pruned() -> None:
    rng = np.random.default_rng(3)
    x = (rng.random((40, 12)) < 0.3).astype(np.float32)
    x[:, 11] = 0  # an item nobody has: no neighbours, scores 0
    nb = ItemNeighbours(l2=2.0, k=100).fit(sp.csr_matrix(x * 2.5))  # weights are binarised
    want = np.zeros((12, 12))
    want[:11, :11] = _ease_dense(x[:, :11].astype(np.float64), 2.0)
    assert np.allclose(nb.weights.toarray(), want, atol=1e-5)
    hist = np.flatnonzero(x[0])
    assert np.allclose(nb.scores(hist, np.arange(12)), x[0] @ want, atol=1e-5)
    assert nb.scores([], [1, 2]).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("max_bincount", [0, 10**9])  # scipy's row sum, then bincount
def test_neighbour_scores_of_a_history_and_its_head_read_the_rows_once(
    max_bincount: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("embeddings.ease.BINCOUNT_MAX", max_bincount)
    rng = np.random.default_rng(7)
    w = sp.random(300, 300, density=0.05, random_state=8, dtype=np.float32, format="csr")
    nb = ItemNeighbours(l2=1.0, k=15)
    nb.weights = w
    dense = w.toarray()
    hist, items = rng.choice(300, 40, replace=False), rng.choice(300, 60, replace=False)
    for head in (0, 1, 10, 40, 99):
        whole, recent = nb.scores_and_head(hist, head, items)
        assert np.allclose(whole, dense[hist].sum(axis=0)[items], atol=1e-5)
        assert np.allclose(recent, dense[hist[:head]].sum(axis=0)[items], atol=1e-5)
        assert whole.dtype == recent.dtype == np.float32
    indices, weights = nb.row(17)
    assert np.array_equal(dense[17][indices], weights) and set(np.flatnonzero(dense[17])) == set(
        indices.tolist()
    )


def test_neighbours_prune_by_magnitude_keeping_negative_weights() -> None:
    rng = np.random.default_rng(5)
    x = (rng.random((60, 15)) < 0.3).astype(np.float64)
    full = _ease_dense(x, 2.0)
    got = ItemNeighbours(l2=2.0, k=4).fit(sp.csr_matrix(x)).weights.toarray()
    for j in range(15):
        kept = np.flatnonzero(got[:, j])
        strongest = np.argsort(-np.abs(full[:, j]))[:4]
        assert set(kept) == set(strongest)
        assert np.allclose(got[kept, j], full[kept, j], atol=1e-5)
    assert (got < 0).any()  # "watched X, so probably not Y" survives the pruning


def test_neighbours_keep_top_k_per_item_and_recommend_own_cluster(
    clusters: sp.csr_matrix,
) -> None:
    nb = ItemNeighbours(l2=10.0, k=5).fit(clusters)
    w = nb.weights.toarray()
    assert ((w != 0).sum(axis=0) <= 5).all()
    for u in range(N_USERS):
        if u % 5 == 0:
            continue  # these users also touched the other cluster
        seen = clusters[u].indices
        scores = nb.scores(seen, np.arange(N_ITEMS))
        assert in_own_cluster(u, unseen_top(scores, seen, 5)), u


def test_neighbours_save_load_roundtrip(tmp_path: Path) -> None:
    x = sp.csr_matrix(
        np.eye(5, dtype=np.float32)[[0, 1, 1, 2, 3, 4]] + np.eye(5)[[1, 0, 2, 1, 4, 3]]
    )
    nb = ItemNeighbours(l2=0.5, k=2).fit(x)
    back = ItemNeighbours.load(nb.save(tmp_path / "n"))
    assert (back.l2, back.k) == (0.5, 2)
    assert np.array_equal(back.weights.toarray(), nb.weights.toarray())
    (tmp_path / "n" / "meta.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError):
        ItemNeighbours.load(tmp_path / "n")
    with pytest.raises(ValueError):
        ItemNeighbours(l2=0.0)
