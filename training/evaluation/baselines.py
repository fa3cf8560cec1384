"""Reference recommenders (MostPop, ItemKNN, EASE, iALS) and the ANCHORS evaluation run.

Every baseline ranks the full catalogue: ``fit(train)`` takes a user x item CSR matrix of
confidence weights (all but iALS binarise it) and ``recommend(user_indices, k)`` returns item
indices, best first, optionally skipping the user's train items. ``run_baselines`` splits a
dataset with an ANCHORS protocol, picks each baseline's hyper-parameters on the same split
applied inside train (never on test), refits on train and scores the test set.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from embeddings.confidence import RATING_SCHEMES, confidence_weight
from embeddings.ease import ease_weights
from embeddings.ials import DEFAULT_THREADS, ALSModel
from embeddings.matrix import InteractionMatrix
from indexing.datasets import load_dataset
from training.evaluation.metrics import RECALL_KS, evaluate
from training.evaluation.splits import natural_key, split_records

log = logging.getLogger(__name__)

Record = Mapping[str, Any]
SELECTION_METRIC = "ndcg@10"
SCORE_BATCH = 1024


def _binary(train: sp.spmatrix) -> sp.csr_matrix:
    x = sp.csr_matrix(train, dtype=np.float32, copy=True)
    x.data[:] = 1.0
    x.eliminate_zeros()
    return x


class ScoringRecommender:
    """Base: subclasses fill ``scores``; ranking and train-item exclusion live here."""

    name = "base"
    train: sp.csr_matrix

    def params(self) -> dict[str, Any]:
        """Hyper-parameters of this instance."""
        return {}

    def fit(self, train: sp.spmatrix) -> ScoringRecommender:
        """Learn from a user x item weight matrix."""
        raise NotImplementedError

    def scores(self, user_indices: np.ndarray) -> np.ndarray:
        """Dense [len(user_indices), n_items] scores, higher is better."""
        raise NotImplementedError

    def recommend(
        self, user_indices: Sequence[int] | np.ndarray, k: int, exclude_train: bool = True
    ) -> np.ndarray:
        """Top-k item indices per user over the full catalogue, best first."""
        users = np.asarray(user_indices, dtype=np.int64)
        out = np.empty((len(users), k), dtype=np.int64)
        for lo in range(0, len(users), SCORE_BATCH):
            batch = users[lo : lo + SCORE_BATCH]
            scores = np.array(self.scores(batch), dtype=np.float64)
            if exclude_train:
                seen = self.train[batch]
                scores[
                    np.repeat(np.arange(len(batch)), np.diff(seen.indptr)), seen.indices
                ] = -np.inf
            out[lo : lo + len(batch)] = top_k(scores, k)
        return out


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Row-wise indices of the k largest scores, sorted descending (ties: lower index first)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part.sort(axis=1)  # so the stable sort below breaks ties by item index
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _active_items(x: sp.csr_matrix) -> np.ndarray:
    """Items with at least one train interaction.

    Item-item models give the others all-zero rows and columns, so leaving them out of the
    dense item x item matrix saves memory and cubic time on long-tail catalogues.
    """
    return np.flatnonzero(np.diff(x.tocsc().indptr))


def _scatter(
    train: sp.csr_matrix, active: np.ndarray, user_indices: np.ndarray, item_item: np.ndarray
) -> np.ndarray:
    """Scores X_u W over active items, placed back into full-catalogue columns."""
    x = train[user_indices][:, active]
    out = np.zeros((len(user_indices), train.shape[1]), dtype=np.float32)
    out[:, active] = np.asarray(x @ item_item)
    return out


class MostPop(ScoringRecommender):
    """Items ranked by how many users interacted with them."""

    name = "MostPop"

    def fit(self, train: sp.spmatrix) -> MostPop:
        """Count users per item."""
        self.train = _binary(train)
        self.popularity = np.asarray(self.train.sum(axis=0)).ravel()
        return self

    def scores(self, user_indices: np.ndarray) -> np.ndarray:
        """The same popularity row for everyone."""
        return np.broadcast_to(self.popularity, (len(user_indices), len(self.popularity)))


class ItemKNN(ScoringRecommender):
    """Item-based cosine kNN on binary interactions; ``neighbours=None`` keeps them all."""

    name = "ItemKNN"

    def __init__(self, neighbours: int | None = 200):
        self.neighbours = neighbours

    def params(self) -> dict[str, Any]:
        """Hyper-parameters of this instance."""
        return {"neighbours": self.neighbours}

    def fit(self, train: sp.spmatrix) -> ItemKNN:
        """Cosine item-item similarity, pruned to the top neighbours of each item."""
        self.train = _binary(train)
        self.active = _active_items(self.train)
        x = self.train[:, self.active]
        counts = np.asarray(x.sum(axis=0)).ravel()
        co = (x.T @ x).toarray().astype(np.float32)
        norm = np.sqrt(counts).astype(np.float32)
        sim = co / norm[:, None] / norm[None, :]
        np.fill_diagonal(sim, 0.0)
        if self.neighbours is not None and self.neighbours < sim.shape[0]:
            # Column j scores item j from the user's items; keep j's top neighbours only.
            cut = np.argpartition(-sim, self.neighbours - 1, axis=0)[self.neighbours :]
            np.put_along_axis(sim, cut, 0.0, axis=0)
        self.similarity = sim
        return self

    def scores(self, user_indices: np.ndarray) -> np.ndarray:
        """Sum of similarities between each candidate and the user's items."""
        return _scatter(self.train, self.active, user_indices, self.similarity)


class EASE(ScoringRecommender):
    """EASE (Steck 2019): closed-form item-item weights with a zero diagonal."""

    name = "EASE"

    def __init__(self, l2: float = 500.0):
        self.l2 = l2

    def params(self) -> dict[str, Any]:
        """Hyper-parameters of this instance."""
        return {"lambda": self.l2}

    def fit(self, train: sp.spmatrix) -> EASE:
        """B = I - P diagMat(1/diag(P)), P = (XᵀX + λI)⁻¹, over items seen in train."""
        self.train = _binary(train)
        self.active = _active_items(self.train)
        self.weights = ease_weights(self.train[:, self.active], self.l2)
        return self

    def scores(self, user_indices: np.ndarray) -> np.ndarray:
        """X_u B (items without train interactions score 0)."""
        return _scatter(self.train, self.active, user_indices, self.weights)


class IALS(ScoringRecommender):
    """The service's own ``ALSModel`` as a baseline (uses the confidence weights as given)."""

    name = "iALS"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 10.0,
        alpha: float = 10.0,
        iterations: int = 15,
        *,
        rating_scheme: str = "flat",
        num_threads: int = DEFAULT_THREADS,
    ):
        self.model = ALSModel(factors, regularization, alpha, iterations, num_threads=num_threads)
        # Recorded only: the caller builds the train matrix with this scheme.
        self.rating_scheme = rating_scheme

    def params(self) -> dict[str, Any]:
        """Hyper-parameters of this instance."""
        p = self.model.params()
        p.pop("random_state")
        return {**p, "rating_scheme": self.rating_scheme}

    def fit(self, train: sp.spmatrix) -> IALS:
        """Train the ALS model on the weight matrix."""
        self.train = sp.csr_matrix(train, dtype=np.float32)
        self.model.fit(self.train)
        return self

    def scores(self, user_indices: np.ndarray) -> np.ndarray:
        """Dot products of user and item factors."""
        return self.model.scores(user_indices)


# --------------------------------------------------------------------------- grids

# Small on purpose: the ML-100K run (both tuning and final fits) must stay within minutes
# on two cores. Each list brackets the values that won on inner splits during development.
DEFAULT_GRIDS: dict[str, list[dict[str, Any]]] = {
    "MostPop": [{}],
    "ItemKNN": [{"neighbours": n} for n in (50, 100, 200, 400, None)],
    "EASE": [{"l2": v} for v in (100.0, 300.0, 500.0, 1000.0)],
    "iALS": [
        {"factors": f, "regularization": r, "alpha": a, "rating_scheme": s}
        for f, r, a, s in itertools.product(
            (64, 128), (20.0, 50.0), (3.0, 5.0, 10.0), tuple(RATING_SCHEMES)
        )
    ],
}
BASELINES: dict[str, type[ScoringRecommender]] = {
    "MostPop": MostPop,
    "ItemKNN": ItemKNN,
    "EASE": EASE,
    "iALS": IALS,
}


def make_baseline(
    name: str, params: Mapping[str, Any], *, num_threads: int = DEFAULT_THREADS
) -> ScoringRecommender:
    """Instantiate a baseline by name with grid parameters."""
    if name == "iALS":
        return IALS(**params, num_threads=num_threads)
    return BASELINES[name](**params)


# --------------------------------------------------------------------------- evaluation data


class EvalData:
    """Interactions of one dataset as index maps plus records, ready to split and score."""

    def __init__(
        self,
        records: Sequence[Record],
        item_ids: list[str],
        item_categories: dict[str, list[str]],
    ):
        self.records = records
        self.item_ids = item_ids
        self.user_ids = sorted({str(r["user_id"]) for r in records}, key=natural_key)
        self.item_index = {it: i for i, it in enumerate(item_ids)}
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.item_vectors = _category_vectors(item_ids, item_categories)

    @classmethod
    def load(cls, dataset_path: str | Path) -> EvalData:
        """Read a dataset; keep interactions that count as positives (all ratings)."""

        ds = load_dataset(dataset_path)
        categories = {
            str(it["item_id"]): list(it.get("categories") or []) for it in ds.iter_items()
        }
        records = [
            r for r in ds.iter_interactions() if confidence_weight(r["type"], r["value"]) > 0
        ]
        item_ids = list(categories)
        known = set(item_ids)
        for r in records:  # interactions on items missing from the catalogue still count
            if str(r["item_id"]) not in known:
                known.add(str(r["item_id"]))
                item_ids.append(str(r["item_id"]))
        return cls(records, item_ids, categories)

    def matrix(self, records: Iterable[Record], rating_scheme: str = "flat") -> sp.csr_matrix:
        """All-users x catalogue weight matrix of ``records``."""
        return InteractionMatrix.from_records(
            records, item_ids=self.item_ids, user_ids=self.user_ids, rating_scheme=rating_scheme
        ).matrix

    def truth(self, test: Iterable[Record], train: sp.csr_matrix) -> dict[int, set[int]]:
        """user index -> relevant test item indices, minus items already in that user's train."""
        out: dict[int, set[int]] = {}
        for r in test:
            out.setdefault(self.user_index[str(r["user_id"])], set()).add(
                self.item_index[str(r["item_id"])]
            )
        for u, items in out.items():
            items.difference_update(train.indices[train.indptr[u] : train.indptr[u + 1]].tolist())
        return {u: items for u, items in out.items() if items}


def _category_vectors(item_ids: list[str], categories: Mapping[str, list[str]]) -> np.ndarray:
    """Multi-hot category vectors: the cheap, model-free basis for intra-list diversity."""
    names = sorted({c for cats in categories.values() for c in cats})
    col = {c: j for j, c in enumerate(names)}
    vecs = np.zeros((len(item_ids), max(len(names), 1)), dtype=np.float32)
    for i, it in enumerate(item_ids):
        for c in categories.get(it, ()):
            vecs[i, col[c]] = 1.0
    return vecs


def score_model(
    model: ScoringRecommender,
    truth: Mapping[int, set[int]],
    *,
    n_items: int,
    item_vectors: np.ndarray | None = None,
    k: int = 10,
) -> dict[str, float]:
    """Recommend for every test user and compute all metrics."""
    users = np.fromiter(truth, dtype=np.int64, count=len(truth))
    depth = max(k, *RECALL_KS)
    recs = model.recommend(users, depth, exclude_train=True)
    lists = {int(u): row.tolist() for u, row in zip(users, recs, strict=True)}
    return evaluate(lists, truth, n_items=n_items, item_vectors=item_vectors, k=k)


def _fit_and_score(
    data: EvalData,
    name: str,
    params: Mapping[str, Any],
    train_records: Sequence[Record],
    test_records: Sequence[Record],
    *,
    num_threads: int,
    with_vectors: bool = False,
) -> tuple[dict[str, float], float]:
    scheme = params.get("rating_scheme", "flat")
    train = data.matrix(train_records, scheme)
    model = make_baseline(name, params, num_threads=num_threads)
    start = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - start
    truth = data.truth(test_records, train)
    vectors = data.item_vectors if with_vectors else None
    metrics = score_model(model, truth, n_items=len(data.item_ids), item_vectors=vectors)
    return metrics, fit_seconds


def select_params(
    data: EvalData,
    name: str,
    grid: Sequence[Mapping[str, Any]],
    train_records: Sequence[Record],
    protocol: str,
    *,
    num_threads: int = DEFAULT_THREADS,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Best grid point by inner-split nDCG@10 (the protocol's split applied to train)."""
    if len(grid) == 1:
        return dict(grid[0]), []
    inner_train, inner_valid = split_records(train_records, protocol)
    trials: list[dict[str, Any]] = []
    for params in grid:
        metrics, _ = _fit_and_score(
            data, name, params, inner_train, inner_valid, num_threads=num_threads
        )
        trials.append({"params": dict(params), SELECTION_METRIC: metrics[SELECTION_METRIC]})
        log.debug("%s %s inner %s=%.4f", name, params, SELECTION_METRIC, metrics[SELECTION_METRIC])
    best = max(trials, key=lambda t: t[SELECTION_METRIC])
    return dict(best["params"]), trials


def run_baselines(
    dataset_path: str | Path,
    protocol: str = "ms",
    *,
    baselines: Sequence[str] | None = None,
    grids: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    num_threads: int = DEFAULT_THREADS,
) -> dict[str, Any]:
    """Tune on an inner split, refit on train, score on test; metrics per baseline."""
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    grids = {**DEFAULT_GRIDS, **(grids or {})}
    names = list(baselines or BASELINES)
    data = EvalData.load(dataset_path)
    train_records, test_records = split_records(data.records, protocol)
    result: dict[str, Any] = {
        "dataset": str(dataset_path),
        "protocol": protocol,
        "n_users": len(data.user_ids),
        "n_items": len(data.item_ids),
        "n_train": len(train_records),
        "n_test": len(test_records),
        "selection_metric": SELECTION_METRIC,
        "baselines": {},
    }
    with threadpool_limits(num_threads):
        for name in names:
            t0 = time.perf_counter()
            params, trials = select_params(
                data, name, grids[name], train_records, protocol, num_threads=num_threads
            )
            metrics, fit_seconds = _fit_and_score(
                data, name, params, train_records, test_records,
                num_threads=num_threads, with_vectors=True,
            )  # fmt: skip
            result["baselines"][name] = {
                "params": params,
                "metrics": metrics,
                "fit_seconds": round(fit_seconds, 3),
                "total_seconds": round(time.perf_counter() - t0, 3),
                "trials": trials,
            }
            log.info("%s %s: %s", name, params, metrics)
    result["elapsed_seconds"] = round(time.perf_counter() - start, 3)
    return result


__all__ = [
    "DEFAULT_GRIDS",
    "EASE",
    "IALS",
    "RATING_SCHEMES",
    "EvalData",
    "ItemKNN",
    "MostPop",
    "ScoringRecommender",
    "make_baseline",
    "run_baselines",
    "score_model",
    "select_params",
    "top_k",
]
