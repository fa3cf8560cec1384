"""Interaction-model training and fold-in speed on a data set. Prints one JSON object.

python bench/training.py [DATASET_DIR]   (default: ../shared/datasets/ml-100k)

Times the pieces `vantage train` runs before the re-ranker (hyper-parameter and blend-weight
selection on inner splits, the iALS fit, the item neighbours) and the worker's fold-in of one
user against the fitted model (every user's own history, median and p95). The issue's
targets: training on ML-100K under 60 s on 2 cores (the whole `vantage train`, re-ranker
included, is reported by bench/quality.py as train_s + ranker.total_s), fold-in under 5 ms.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import DATASETS
from embeddings.confidence import confidence_weight
from embeddings.ease import ItemNeighbours
from embeddings.ials import ALSModel
from embeddings.matrix import InteractionMatrix
from indexing.datasets import load_dataset
from training.interaction import select_cf_params

FACTORS = 64


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DATASETS / "ml-100k"
    records = list(load_dataset(path).iter_interactions())
    positives = [r for r in records if confidence_weight(r["type"], r.get("value")) > 0]
    with threadpool_limits(2):
        t0 = time.perf_counter()
        params, trials = select_cf_params(positives, factors=FACTORS, split="temporal")
        select_s = time.perf_counter() - t0
        matrix = InteractionMatrix.from_records(records, rating_scheme=params.rating_scheme)
        als = ALSModel(FACTORS, params.regularization, params.alpha, params.iterations)
        als.fit(matrix)
        nbr = ItemNeighbours(params.neighbour_l2, params.neighbour_k).fit(matrix)
    times = []
    for u in range(matrix.n_users):
        idx, w = matrix.user_history(matrix.user_ids[u])
        start = time.perf_counter()
        als.fold_in(idx, w)
        times.append((time.perf_counter() - start) * 1000)
    print(
        json.dumps(
            {
                "bench": "training",
                "dataset": path.name,
                "users": matrix.n_users,
                "items": matrix.n_items,
                "interactions": len(records),
                "select_s": round(select_s, 2),
                "trials": len(trials),
                "params": params.__dict__,
                "als_fit_s": round(als.fit_seconds, 2),
                "neighbours_fit_s": round(nbr.fit_seconds, 2),
                "total_s": round(select_s + als.fit_seconds + nbr.fit_seconds, 2),
                "fold_in_ms_p50": round(float(np.median(times)), 3),
                "fold_in_ms_p95": round(float(np.percentile(times, 95)), 3),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
