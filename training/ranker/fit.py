"""Stage 3: the XGBoost LambdaMART fit, validated on held-out users against the order
serving uses without a ranker."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from training.ranker.candidates import Groups
from training.ranker.params import RankerParams
from training.ranker.report import RankerReport


def ndcg_at(scores: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """NDCG@k of one group ordered by `scores` (ties keep the given order)."""
    order = np.argsort(-scores, kind="stable")[:k]
    gains = labels[order] / np.log2(np.arange(2, len(order) + 2))
    ideal = np.sort(labels)[::-1][:k] / np.log2(np.arange(2, min(k, len(labels)) + 2))
    return float(gains.sum() / ideal.sum()) if ideal.sum() > 0 else 0.0


def paired_t(diffs: Iterable[float]) -> float:
    """t statistic of the mean of paired differences (0 without spread or with < 2 pairs)."""
    d = np.asarray(list(diffs), dtype=np.float64)
    if len(d) < 2:
        return 0.0
    sd = d.std(ddof=1)
    if sd < 1e-12:
        return 0.0 if abs(d.mean()) < 1e-12 else math.copysign(1e9, d.mean())
    return round(float(d.mean() / (sd / math.sqrt(len(d)))), 3)


def _fit(groups: Groups, idx: list[int], params: RankerParams) -> Any:
    import xgboost as xgb

    model = xgb.XGBRanker(
        objective="rank:ndcg",
        n_estimators=params.n_estimators,
        learning_rate=params.learning_rate,
        max_depth=params.max_depth,
        min_child_weight=params.min_child_weight,
        subsample=params.subsample,
        colsample_bytree=params.colsample_bytree,
        tree_method="hist",
        eval_metric="ndcg@10",
        random_state=params.seed,
        n_jobs=2,
    )
    x = np.concatenate([groups.x[i] for i in idx])
    y = np.concatenate([groups.y[i] for i in idx])
    qid = np.concatenate([np.full(len(groups.y[i]), n, dtype=np.int32) for n, i in enumerate(idx)])
    model.fit(x, y, qid=qid)
    return model


def validate_and_fit(
    groups: Groups, fit: list[int], val: list[int], params: RankerParams, report: RankerReport
) -> Any:
    """Fit on `fit`, measure on `val` against the order without a ranker (into `report`),
    then fit the published model on every group."""
    model = _fit(groups, fit, params)
    pred = {i: model.predict(groups.x[i]) for i in val}
    fallback_order = {i: groups.fallback[i] for i in val}

    def mean_ndcg(scores: dict[int, np.ndarray], labels: list[np.ndarray]) -> float:
        vals = [ndcg_at(scores[i], labels[i]) for i in val if labels[i].any()]
        return round(float(np.mean(vals)), 4) if vals else 0.0

    report.val_t = paired_t(
        [ndcg_at(pred[i], groups.y[i]) - ndcg_at(fallback_order[i], groups.y[i]) for i in val]
    )
    report.val_ndcg10_ranker = mean_ndcg(pred, groups.y)
    report.val_ndcg10_fallback = mean_ndcg(fallback_order, groups.y)
    report.val_random_ndcg10_ranker = mean_ndcg(pred, groups.y_random)
    report.val_random_ndcg10_fallback = mean_ndcg(fallback_order, groups.y_random)
    # The published model learns from every group, minus the rows of held-out items (they are
    # unseen positives, not negatives).
    for i in val:
        keep = groups.y_random[i] == 0
        groups.x[i], groups.y[i] = groups.x[i][keep], groups.y[i][keep]
    return _fit(groups, [i for i in range(report.groups) if groups.y[i].any()], params)
