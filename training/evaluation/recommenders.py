"""The reference recommenders the pipeline is compared with: MostPop, ItemKNN, EASE, iALS.

Every one ranks the full catalogue: ``fit(train)`` takes a user x item CSR matrix of
confidence weights (all but iALS binarise it) and ``recommend(user_indices, k)`` returns item
indices, best first, optionally skipping the user's train items. ``DEFAULT_GRIDS`` holds the
hyper-parameters `training.evaluation.baselines` selects from.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from embeddings.confidence import RATING_SCHEMES
from embeddings.ease import ease_weights
from embeddings.ials import DEFAULT_THREADS, ALSModel

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

    def __init__(self, l2: float = 500.0, max_items: int | None = None):
        self.l2 = l2
        # The dense inverse costs items² memory and items³ time: with a cap, only the most
        # interacted-with items get weights (as the service's item neighbours do).
        self.max_items = max_items

    def params(self) -> dict[str, Any]:
        """Hyper-parameters of this instance."""
        return {"lambda": self.l2, "max_items": self.max_items}

    def fit(self, train: sp.spmatrix) -> EASE:
        """B = I - P diagMat(1/diag(P)), P = (XᵀX + λI)⁻¹, over items seen in train."""
        self.train = _binary(train)
        self.active = _active_items(self.train)
        if self.max_items is not None and len(self.active) > self.max_items:
            counts = np.asarray(self.train[:, self.active].sum(axis=0)).ravel()
            top = np.argsort(-counts, kind="stable")[: self.max_items]
            self.active = np.sort(self.active[top])
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
