"""The ANCHORS evaluation of the reference recommenders (`training.evaluation.recommenders`).

``run_baselines`` splits a dataset with an ANCHORS protocol, picks each baseline's
hyper-parameters on the same split applied inside train (never on test), refits on train and
scores the test set.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.confidence import RATING_SCHEMES
from embeddings.ials import DEFAULT_THREADS
from training.evaluation.data import EvalData, Record
from training.evaluation.metrics import RECALL_KS, evaluate
from training.evaluation.recommenders import (
    BASELINES,
    DEFAULT_GRIDS,
    EASE,
    IALS,
    ItemKNN,
    MostPop,
    ScoringRecommender,
    make_baseline,
    top_k,
)
from training.evaluation.splits import split_records

log = logging.getLogger(__name__)

SELECTION_METRIC = "ndcg@10"


def score_model(
    model: ScoringRecommender,
    truth: Mapping[int, set[int]],
    *,
    n_items: int,
    item_vectors: np.ndarray | None = None,
    content_vectors: Mapping[int, np.ndarray] | None = None,
    k: int = 10,
) -> dict[str, float]:
    """Recommend for every test user and compute all metrics."""
    users = np.fromiter(truth, dtype=np.int64, count=len(truth))
    depth = max(k, *RECALL_KS)
    recs = model.recommend(users, depth, exclude_train=True)
    lists = {int(u): row.tolist() for u, row in zip(users, recs, strict=True)}
    return evaluate(
        lists,
        truth,
        n_items=n_items,
        item_vectors=item_vectors,
        content_vectors=content_vectors,
        k=k,
    )


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
    content = data.content_vectors if with_vectors else None
    metrics = score_model(
        model, truth, n_items=len(data.item_ids), item_vectors=vectors, content_vectors=content
    )
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
    content_vectors: Mapping[int, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Tune on an inner split, refit on train, score on test; metrics per baseline
    (`content_vectors`: item index -> text embedding, for content diversity)."""
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    grids = {**DEFAULT_GRIDS, **(grids or {})}
    names = list(baselines or BASELINES)
    data = EvalData.load(dataset_path)
    data.content_vectors = content_vectors
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


# The evaluation's public names, wherever they are defined (callers import them from here).
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
