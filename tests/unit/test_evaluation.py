"""Unit tests for training.evaluation: splits, metrics and baselines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from training.evaluation.baselines import (
    EASE,
    IALS,
    EvalData,
    ItemKNN,
    MostPop,
    run_baselines,
    score_model,
    top_k,
)
from training.evaluation.metrics import evaluate
from training.evaluation.splits import (
    natural_ranks,
    split_indices,
    split_records,
    stratified_split_indices,
    temporal_split_indices,
)

SHARED_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
ML100K = SHARED_DATASETS / "ml-100k"
needs_ml100k = pytest.mark.skipif(
    not ML100K.is_dir(), reason="shared/datasets/ml-100k not available"
)

N_USERS, N_ITEMS = 80, 40  # users 0-39 like items 0-19, users 40-79 like items 20-39


def two_clusters(seed: int = 0) -> sp.csr_matrix:
    """Binary matrix with two taste clusters; every fifth user has one cross-cluster item."""
    rng = np.random.default_rng(seed)
    rows: list[int] = []
    cols: list[int] = []
    for u in range(N_USERS):
        own = 0 if u < N_USERS // 2 else N_ITEMS // 2
        items = rng.choice(N_ITEMS // 2, 8, replace=False) + own
        rows += [u] * 8
        cols += items.tolist()
        if u % 5 == 0:
            rows.append(u)
            cols.append(int(N_ITEMS // 2 - own + rng.integers(N_ITEMS // 2)))
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(N_USERS, N_ITEMS))


# --------------------------------------------------------------------------- metrics


def idcg(n: int) -> float:
    """Ideal binary DCG of n hits."""
    return sum(1 / np.log2(r + 1) for r in range(1, n + 1))


@pytest.fixture()
def toy() -> dict:
    lists = {
        "a": list(range(1, 21)),  # hits at ranks 1, 3 (and 12 within top 20)
        "b": list(range(20, 10, -1)) + list(range(10, 0, -1)),  # hits at 1, 3, then 11-20
        "c": [5],  # short list, no hit
    }
    test = {"a": {1, 3, 12}, "b": {20, 18, *range(1, 11)}, "c": {6}}
    return evaluate(lists, test, n_items=40)


def test_metrics_hand_computed(toy: dict) -> None:
    dcg = 1 + 1 / np.log2(4)
    assert toy["ndcg@10"] == pytest.approx((dcg / idcg(3) + dcg / idcg(10) + 0) / 3)
    assert toy["precision@10"] == pytest.approx((0.2 + 0.2 + 0) / 3)
    assert toy["recall@10"] == pytest.approx((2 / 3 + 2 / 12 + 0) / 3)
    assert toy["recall@20"] == pytest.approx((1 + 1 + 0) / 3)
    ap_sum = 1 + 2 / 3  # precision at the two hit ranks
    assert toy["map@10"] == pytest.approx((ap_sum / 3 + ap_sum / 12 + 0) / 3)
    assert toy["map_capped@10"] == pytest.approx((ap_sum / 3 + ap_sum / 10 + 0) / 3)
    assert toy["hr@10"] == pytest.approx(2 / 3)
    assert toy["coverage@10"] == pytest.approx(20 / 40)  # items 1-20 distinct in top-10s
    assert toy["n_users"] == 3
    assert "diversity@10" not in toy


def test_metrics_exact_values(toy: dict) -> None:
    assert toy["ndcg@10"] == pytest.approx((0.7039180890341347 + 0.33013735045366207) / 3)
    assert toy["map@10"] == pytest.approx(0.2314814814814815)


def test_metrics_missing_user_counts_as_zero_and_empty_truth_skipped() -> None:
    out = evaluate({"a": [1]}, {"a": {1}, "b": {2}, "c": set()}, n_items=3)
    assert out["n_users"] == 2
    assert out["hr@10"] == 0.5
    assert out["ndcg@10"] == 0.5
    with pytest.raises(ValueError):
        evaluate({}, {"a": set()}, n_items=3)


def test_intra_list_diversity() -> None:
    eye = {i: np.eye(3)[i] for i in range(3)}
    same = {i: np.ones(3) for i in range(3)}
    lists, test = {"u": [0, 1, 2]}, {"u": {0}}
    assert evaluate(lists, test, n_items=3, item_vectors=eye)["diversity@10"] == pytest.approx(1.0)
    assert evaluate(lists, test, n_items=3, item_vectors=same)["diversity@10"] == pytest.approx(0.0)
    arr = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # an array indexed by item index
    expected = 1 - (np.sqrt(0.5) + 0 + np.sqrt(0.5)) / 3
    got = evaluate(lists, test, n_items=3, item_vectors=arr)["diversity@10"]
    assert got == pytest.approx(expected)


def reference_metrics(lists: dict, test: dict, k: int) -> dict[str, float]:
    """Slow per-user loops in the shape of recommenders' pandas code (natural-log discount)."""
    ndcg, prec, rec, ap = [], [], [], []
    for user, relevant in test.items():
        ranked = lists.get(user, [])[:k]
        ranks = [i + 1 for i, item in enumerate(ranked) if item in relevant]
        dcg = sum(1 / np.log(1 + r) for r in ranks)
        ideal = sum(1 / np.log(1 + r) for r in range(1, min(k, len(relevant)) + 1))
        ndcg.append(dcg / ideal)
        prec.append(len(ranks) / k)
        rec.append(len(ranks) / len(relevant))
        ap.append(sum((n + 1) / r for n, r in enumerate(ranks)) / len(relevant))
    return {
        f"ndcg@{k}": float(np.mean(ndcg)),
        f"precision@{k}": float(np.mean(prec)),
        f"recall@{k}": float(np.mean(rec)),
        f"map@{k}": float(np.mean(ap)),
    }


def test_metrics_match_reference_on_random_lists() -> None:
    rng = np.random.default_rng(3)
    lists, test = {}, {}
    for u in range(200):
        lists[u] = rng.permutation(60)[:20].tolist()
        test[u] = set(rng.choice(60, rng.integers(1, 25), replace=False).tolist())
    got = evaluate(lists, test, n_items=60)
    for name, value in reference_metrics(lists, test, 10).items():
        assert got[name] == pytest.approx(value, rel=1e-12)


# --------------------------------------------------------------------------- splits


def pandas_stratified(users: np.ndarray, ratio: float, seed: int) -> np.ndarray:
    """recommenders' _do_stratification(filter_by="user", is_random=True), transcribed."""
    pd = pytest.importorskip("pandas")
    data = pd.DataFrame({"userID": users})
    np.random.seed(seed)
    data["random"] = np.random.rand(data.shape[0])
    data = data.sort_values(["userID", "random"])
    groups = data.groupby("userID")
    data["count"] = groups["userID"].transform("count")
    data["rank"] = (groups.cumcount() + 1) / data["count"]
    return np.sort(data.index[data["rank"] <= ratio].to_numpy())


def random_users(n_rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Counts 2..40 in shuffled row order: exercises every count mod 4.
    counts = np.arange(2, 41)
    return rng.permutation(np.repeat(np.arange(len(counts)), counts))[:n_rows]


def test_ms_split_matches_recommenders() -> None:
    users = random_users(10_000)
    train, test = stratified_split_indices(users)
    np.testing.assert_array_equal(train, pandas_stratified(users, 0.75, 42))
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(users)


def test_ms_split_sizes_and_determinism() -> None:
    users = random_users(10_000)
    train, _ = stratified_split_indices(users)
    counts = np.bincount(users)
    n_train = np.bincount(users[train], minlength=len(counts))
    np.testing.assert_array_equal(n_train, np.floor(0.75 * counts + 1e-9))
    again = stratified_split_indices(users)
    np.testing.assert_array_equal(train, again[0])
    assert not np.array_equal(train, stratified_split_indices(users, seed=7)[0])


def test_ms_round_split_sizes_and_nesting() -> None:
    users = random_users(10_000)
    _, test = stratified_split_indices(users, rule="round")
    counts = np.bincount(users)
    n_test = np.bincount(users[test], minlength=len(counts))
    np.testing.assert_array_equal(n_test, np.round(0.25 * counts))  # half to even
    # Same draws and order as "ms": the round rule only moves rows from test to train.
    assert set(test) <= set(stratified_split_indices(users)[1])


def test_single_row_user_stays_in_train() -> None:
    users = np.array(["solo", "a", "a", "a", "a"])
    for rule in ("ratio", "round"):
        train, test = stratified_split_indices(users, rule=rule)
        assert 0 in train
        assert {users[i] for i in test} <= {"a"}


def test_temporal_split_respects_time() -> None:
    rng = np.random.default_rng(5)
    users = random_users(5000, seed=1)
    ts = rng.integers(0, 50, size=len(users)).astype(float)  # many ties
    items = rng.integers(0, 500, size=len(users))
    train, test = temporal_split_indices(users, ts, tiebreak=items)
    counts = np.bincount(users)
    np.testing.assert_array_equal(
        np.bincount(users[test], minlength=len(counts)), np.round(0.2 * counts)
    )
    for u in np.unique(users):
        tr = train[users[train] == u]
        te = test[users[test] == u]
        if len(te):
            assert ts[tr].max() <= ts[te].min()
            # On a tie in time the lower item id is the earlier one.
            last = max(tr, key=lambda i: (ts[i], items[i]))
            first = min(te, key=lambda i: (ts[i], items[i]))
            assert (ts[last], items[last]) <= (ts[first], items[first])


def test_split_records_protocols() -> None:
    records = [
        {"user_id": str(u), "item_id": str(i), "type": "rate", "value": 4.0, "timestamp": float(t)}
        for t, (u, i) in enumerate((u, i) for u in range(5) for i in range(10))
    ]
    for protocol in ("ms", "ms-round", "temporal"):
        train, test = split_records(records, protocol)
        assert len(train) + len(test) == 50
        assert {r["user_id"] for r in test} <= {r["user_id"] for r in train}
        assert train == sorted(train, key=records.index)  # input order kept
    train, test = split_records(records, "temporal")
    assert all(r["timestamp"] % 10 >= 8 for r in test)  # the last 2 of each user's 10
    with pytest.raises(ValueError, match="protocol"):
        split_indices(records, "random")


def test_natural_ranks() -> None:
    assert natural_ranks(["10", "9", "b", "a", "9"]).tolist() == [1, 0, 3, 2, 0]


# --------------------------------------------------------------------------- baselines


def test_top_k_order_and_ties() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.9, -1.0]])
    assert top_k(scores, 3).tolist() == [[1, 3, 2]]


@pytest.fixture(scope="module")
def clusters() -> sp.csr_matrix:
    return two_clusters()


@pytest.mark.parametrize(
    "model",
    [EASE(10.0), ItemKNN(10), ItemKNN(None), IALS(8, 10.0, 5.0, 20)],
    ids=["EASE", "ItemKNN-10", "ItemKNN-all", "iALS"],
)
def test_baselines_recommend_own_cluster_first(model, clusters: sp.csr_matrix) -> None:
    recs = model.fit(clusters).recommend(np.arange(N_USERS), 5)
    for u in range(N_USERS):
        own = recs[u] < N_ITEMS // 2 if u < N_USERS // 2 else recs[u] >= N_ITEMS // 2
        assert own.all(), (u, recs[u])
        assert not set(recs[u]) & set(clusters[u].indices)  # train items excluded


def test_most_pop_and_exclude_flag(clusters: sp.csr_matrix) -> None:
    model = MostPop().fit(clusters)
    pop = np.asarray((clusters > 0).sum(axis=0)).ravel()
    top = model.recommend([0], N_ITEMS, exclude_train=False)[0]
    assert pop[top].tolist() == sorted(pop, reverse=True)
    excluded = model.recommend([0], N_ITEMS - clusters[0].nnz)[0]
    assert set(excluded) == set(range(N_ITEMS)) - set(clusters[0].indices)


def test_ease_ignores_items_without_interactions() -> None:
    x = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 0, 1], [0, 1, 0, 1]], dtype=np.float32))
    model = EASE(1.0).fit(x)
    assert model.active.tolist() == [0, 1, 3]
    assert (model.scores(np.arange(3))[:, 2] == 0).all()


def write_generic(root: Path) -> Path:
    """A tiny generic-format dataset with the two-cluster structure."""
    x = two_clusters()
    root.mkdir()
    items = [
        {
            "item_id": f"i{j}",
            "title": f"Item {j}",
            "categories": ["a" if j < 20 else "b", f"g{j % 3}"],
        }
        for j in range(N_ITEMS)
    ]
    (root / "items.jsonl").write_text("\n".join(json.dumps(it) for it in items) + "\n")
    lines = ["user_id,item_id,type,value,timestamp"]
    rows, cols = x.nonzero()
    for n, (u, j) in enumerate(zip(rows, cols, strict=True)):
        kind = ("view", "click", "like", "purchase")[n % 4]
        lines.append(f"u{u},i{j},{kind},,{1_600_000_000 + n}")
    lines.append("u0,i39,dislike,,1700000000")  # never a positive, never relevant
    (root / "interactions.csv").write_text("\n".join(lines) + "\n")
    return root


def test_run_baselines_end_to_end(tmp_path: Path) -> None:
    root = write_generic(tmp_path / "tiny")
    grids = {
        "ItemKNN": [{"neighbours": 5}, {"neighbours": None}],
        "EASE": [{"l2": 1.0}, {"l2": 10.0}],
        "iALS": [{"factors": 4, "regularization": 5.0, "alpha": 2.0, "rating_scheme": "flat"}],
    }
    for protocol in ("ms", "temporal"):
        result = run_baselines(root, protocol, grids=grids)
        assert result["n_users"] == N_USERS and result["n_items"] == N_ITEMS
        assert set(result["baselines"]) == {"MostPop", "ItemKNN", "EASE", "iALS"}
        for name, entry in result["baselines"].items():
            m = entry["metrics"]
            assert 0 <= m["ndcg@10"] <= 1 and 0 < m["diversity@10"] <= 1, name
            assert entry["params"] in [dict(g) for g in grids.get(name, [{}])]
        assert len(result["baselines"]["EASE"]["trials"]) == 2
        # Cluster structure is learnable: every personalised model beats popularity.
        for name in ("ItemKNN", "EASE", "iALS"):
            assert (
                result["baselines"][name]["metrics"]["ndcg@10"]
                > result["baselines"]["MostPop"]["metrics"]["ndcg@10"]
            )


def test_eval_data_drops_non_positive_and_train_items(tmp_path: Path) -> None:
    data = EvalData.load(write_generic(tmp_path / "tiny"))
    assert all(r["type"] != "dislike" for r in data.records)
    train = data.matrix(data.records[:5])
    truth = data.truth(data.records[:8], train)
    assert sum(len(v) for v in truth.values()) == 3


# --------------------------------------------------------------------------- ML-100K anchors


@pytest.fixture(scope="module")
def ml100k() -> EvalData:
    return EvalData.load(ML100K)


def anchor_metrics(data: EvalData, protocol: str, model) -> dict[str, float]:
    train_records, test_records = split_records(data.records, protocol)
    train = data.matrix(train_records)
    return score_model(
        model.fit(train), data.truth(test_records, train), n_items=len(data.item_ids)
    )


@pytest.mark.datasets
@needs_ml100k
def test_ml100k_ms_split_matches_recommenders(ml100k: EvalData) -> None:
    users = np.array([r["user_id"] for r in ml100k.records])
    np.testing.assert_array_equal(
        stratified_split_indices(users)[0], pandas_stratified(users, 0.75, 42)
    )


@pytest.mark.datasets
@needs_ml100k
@pytest.mark.parametrize(
    ("protocol", "model", "ndcg", "recall"),
    [
        ("ms-round", MostPop(), 0.2498, 0.1101),
        ("ms-round", EASE(500.0), 0.4799, 0.2230),
        ("temporal", MostPop(), 0.1132, 0.0591),
        ("temporal", EASE(300.0), 0.1953, 0.1154),
    ],
    ids=["ms-MostPop", "ms-EASE", "temporal-MostPop", "temporal-EASE"],
)
def test_ml100k_reproduces_anchors(
    ml100k: EvalData, protocol: str, model, ndcg: float, recall: float
) -> None:
    m = anchor_metrics(ml100k, protocol, model)
    assert m["ndcg@10"] == pytest.approx(ndcg, abs=6e-4)
    assert m["recall@10"] == pytest.approx(recall, abs=6e-4)
