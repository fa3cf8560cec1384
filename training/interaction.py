"""Training the interaction model from the durable event log (`vantage train`).

1. Read every logged interaction (deduplicated by event id).
2. Fit iALS on confidence weights (purchase > like > watch > click > view; ratings positive),
   and EASE item-item neighbours (top-k per item) that the re-ranker's features read.
3. Give every catalogue item a `cf_vec`: its iALS factor when it has interactions, else its
   content vector projected by a ridge map learned on the items that do (cold items stay
   reachable by collaborative retrieval).
4. Store user factors as the users' `cf_vec` (Redis hot copy + Milvus) and their confidence
   histories, so later events fold in against the same model.
5. Save the artefact under `<data_dir>/models/cf/<version>/` and publish the version: workers
   pick it up on their next batch, without a restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.domain import UserInteraction
from core.events import INTERACTION_LOGGED
from core.redis_typed import text
from core.stores.erasures import ErasureRecords
from core.stores.eventlog import iter_log
from embeddings.blend import CF_WEIGHT_GRID, choose_cf_weight, ndcg_table, save_blend
from embeddings.confidence import DEFAULT_RATING_SCHEME, confidence_weight
from embeddings.ease import ItemNeighbours
from embeddings.ials import ALSModel
from embeddings.matrix import InteractionMatrix
from embeddings.projection import ContentProjection
from indexing.apply import Stores, persist_users
from training.evaluation.baselines import select_params
from training.evaluation.data import EvalData
from training.evaluation.splits import PROTOCOLS, split_indices, stratified_split_indices
from training.item_vectors import write_item_vectors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CFParams:
    """iALS hyper-parameters (chosen on ML-100K inner splits; see training.evaluation)."""

    regularization: float = 50.0
    alpha: float = 5.0
    iterations: int = 15
    rating_scheme: str = DEFAULT_RATING_SCHEME  # the worker folds in with the same scheme
    projection_alpha: float = 1.0
    neighbour_l2: float = 500.0  # EASE regularisation of the item neighbours
    # Neighbours kept per item (by |weight|). Inner ms splits, EASE NDCG@10 at k = 200 / 500 /
    # all: ML-100K 0.2648 / 0.2687 / 0.2689, ml-latest-small 0.2079 / 0.2106 / 0.2156; 500
    # costs ~40 MB per API process on a 10k-item catalogue.
    neighbour_k: int = 500
    # Weight of iALS against the neighbours in the blended order serving uses without a
    # re-ranker (embeddings.blend); None: not chosen (too little data), the fused order stays.
    blend_cf_weight: float | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CFParams:
        """The parameters found in a dict with possibly more keys (e.g. a TrainReport's)."""
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


@dataclass
class TrainReport:
    version: str
    users: int = 0
    items_trained: int = 0
    items_projected: int = 0
    interactions: int = 0
    fit_s: float = 0.0
    total_s: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    # Quality on the inner split the hyper-parameters were chosen on (empty if not tuned).
    metrics: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def logged_interactions(
    log_root: Path, resets: Mapping[str, float] | None = None
) -> list[dict[str, Any]]:
    """The interaction payloads of the durable log, each event once; with `resets` (user ->
    when they reset their history, `history_resets`), not a user's events from before it."""
    resets = resets or {}
    # As a user's interaction: a merge's copy of a guest session's event names the session
    # (`merged_from`), which training does not need and a bulk import does not accept.
    fields = UserInteraction.model_fields
    return [
        {k: v for k, v in rec["data"].items() if k in fields}
        for rec in iter_log(log_root, types=[INTERACTION_LOGGED])
        if float(rec.get("t") or 0) >= resets.get(str(rec["data"].get("user_id")), 0.0)
    ]


def history_resets(stores: Stores) -> dict[str, float]:
    """When each user who reset their history last did (`POST .../history/reset`)."""
    raw = stores.redis.hgetall(stores.keys.history_resets)
    return {text(k): float(text(v)) for k, v in raw.items()}


# What the hyper-parameters are chosen for (`vantage train --tune-split`, or
# VANTAGE_MODELS__TUNE_SPLIT): "temporal" holds out each user's newest 20% (predict what people
# do next: the production default); "random" holds out a random 25% of each user's items
# (complete a profile). The re-ranker learns on, and is gated by, the same kind of holdout.
TUNE_SPLITS: dict[str, str] = {"temporal": "temporal", "random": "ms"}


def split_protocol(tune_split: str) -> str:
    """The `training.evaluation.splits` protocol of a tune split ("random" is the MS split)."""

    if tune_split in TUNE_SPLITS:
        return TUNE_SPLITS[tune_split]
    if tune_split in PROTOCOLS:
        return tune_split
    raise ValueError(f"unknown tune split {tune_split!r}; known: {sorted(TUNE_SPLITS)}")


def is_random_split(tune_split: str) -> bool:
    """True when the tune split holds out random items rather than the newest ones."""
    return split_protocol(tune_split) != "temporal"


# Searched on an inner split of the training data itself, never on an evaluation test split.
CF_GRID: tuple[dict[str, float], ...] = tuple(
    {"regularization": r, "alpha": a} for r in (10.0, 20.0, 50.0) for a in (3.0, 5.0, 10.0)
)
# The EASE baseline's grid (same budget as the baseline gets).
NEIGHBOUR_GRID: tuple[float, ...] = (100.0, 300.0, 500.0, 1000.0)
TUNE_MAX_ITEMS = 10_000  # items the neighbours' penalty is selected on (the most active)
# Below this many positives the inner split is too thin to tune on: the defaults serve, with
# iALS's own order (`UNTUNED_BLEND_CF_WEIGHT`). A young shop (1,400 customers x ~5 ratings:
# 4,500 positives in train) used to fall below the old bound of 5,000 and was served the fused
# retrieval order: 15-31% below iALS in NDCG@10 (bench/sparse_data.py, ml-100k-sparse).
MIN_RECORDS_TO_TUNE = 2_000
UNTUNED_BLEND_CF_WEIGHT = 1.0


def select_cf_params(
    records: Sequence[Mapping[str, Any]],
    *,
    factors: int,
    base: CFParams = CFParams(),
    grid: Sequence[Mapping[str, float]] = CF_GRID,
    neighbour_grid: Sequence[float] = NEIGHBOUR_GRID,
    split: str = "temporal",
) -> tuple[CFParams, list[dict[str, Any]]]:
    """The grid points with the best NDCG@10 on an inner split of `records` (`base` if tiny).

    `split` is a tune split ("temporal" or "random") or a `training.evaluation.splits`
    protocol. iALS and the item neighbours are each chosen on that split.
    """

    protocol = split_protocol(split)
    positives = [r for r in records if confidence_weight(r["type"], r.get("value")) > 0]
    if len(positives) < MIN_RECORDS_TO_TUNE:
        weight = UNTUNED_BLEND_CF_WEIGHT if base.blend_cf_weight is None else base.blend_cf_weight
        return replace(base, blend_cf_weight=weight), []
    data = EvalData(positives, sorted({str(r["item_id"]) for r in positives}), {})
    full = [
        {
            "factors": factors,
            "iterations": base.iterations,
            "rating_scheme": base.rating_scheme,
            **g,
        }
        for g in grid
    ]
    best, trials = select_params(data, "iALS", full, positives, protocol)
    # On the most interacted-with items only: the neighbours' penalty is chosen on the items
    # that carry most interactions, in a fraction of the time (a dense 37k-item inverse, as
    # a 100k catalogue's inner split asks for, crashed training; 10k items take ~11 s).
    l2, l2_trials = select_params(
        data,
        "EASE",
        [{"l2": v, "max_items": TUNE_MAX_ITEMS} for v in neighbour_grid],
        positives,
        protocol,
    )
    chosen = replace(
        base,
        regularization=best["regularization"],
        alpha=best["alpha"],
        neighbour_l2=float(l2["l2"]),
    )
    weight, means = select_blend_weight(positives, chosen, factors=factors, split=split)
    blend_trials = [
        {"params": {"blend_cf_weight": w}, "blend_ndcg@10": m}
        for w, m in zip(CF_WEIGHT_GRID, means, strict=True)
    ]
    return replace(chosen, blend_cf_weight=weight), trials + l2_trials + blend_trials


# Folds the blend weight is chosen on. With a random tune split each fold holds out 10% of
# every user's items, not the protocol's 25%: the models then see 90% of the training data,
# close to what they serve with, and the weight transfers (on ML-100K `ms` the 25% inner split
# picks iALS alone, 0.4907 on test, while three 10% folds pick 0.8, 0.4963).
BLEND_FOLDS = 3
BLEND_HOLDOUT = 0.1


def select_blend_weight(
    positives: Sequence[Mapping[str, Any]],
    params: CFParams,
    *,
    factors: int,
    split: str = "temporal",
) -> tuple[float, list[float]]:
    """The iALS weight of the served blend (`choose_cf_weight`), and the mean NDCG@10 per grid
    weight over the folds' held-out users."""

    users = np.array([str(r["user_id"]) for r in positives])
    if is_random_split(split):
        folds = [
            stratified_split_indices(users, 1.0 - BLEND_HOLDOUT, seed=42 + f)
            for f in range(BLEND_FOLDS)
        ]
    else:
        folds = [split_indices(positives, split_protocol(split))]
    user_ids = sorted(set(users.tolist()))
    item_ids = sorted({str(r["item_id"]) for r in positives})
    scores = []
    for train_idx, test_idx in folds:
        matrix = InteractionMatrix.from_records(
            (positives[i] for i in train_idx),
            item_ids=item_ids,
            user_ids=user_ids,
            rating_scheme=params.rating_scheme,
        )
        als = ALSModel(factors, params.regularization, params.alpha, params.iterations)
        als.fit(matrix)
        nbr = ItemNeighbours(params.neighbour_l2, params.neighbour_k).fit(matrix)
        truth: dict[int, set[int]] = {}
        for i in test_idx:
            rec = positives[i]
            truth.setdefault(matrix.user_index[str(rec["user_id"])], set()).add(
                matrix.item_index[str(rec["item_id"])]
            )
        x = matrix.matrix
        for u, items in truth.items():
            items.difference_update(x.indices[x.indptr[u] : x.indptr[u + 1]].tolist())
        scores.append(ndcg_table(als.user_factors, als.item_factors, nbr.weights, x, truth))
    weight, means = choose_cf_weight(scores)
    log.debug("blend cf weight %.1f (inner NDCG@10 by weight %s)", weight, means)
    return weight, means


def train_cf(
    stores: Stores,
    records: Iterable[Mapping[str, Any]],
    *,
    params: CFParams | None = None,
    tune_split: str = "temporal",
    progress: bool = True,
    read_at: float | None = None,
) -> TrainReport:
    """Fit the interaction model on `records`, write cf vectors, publish the new version.

    Without `params`, hyper-parameters are selected on an inner `tune_split` of `records`.
    `read_at`: when `records` were read from the log (default: now); users erased since
    get no vector.
    """
    since = time.time() if read_at is None else read_at
    if stores.registry is None:
        raise ValueError("training needs a model registry (Stores.registry)")
    started = time.perf_counter()
    registry = stores.registry
    version = registry.new_version()
    records = list(records)
    trials: list[dict[str, Any]] = []
    if params is None:
        params, trials = select_cf_params(records, factors=stores.cf_dim, split=tune_split)
        log.debug("cf hyper-parameters %s (from %d trials)", params, len(trials))
    matrix = InteractionMatrix.from_records(records, rating_scheme=params.rating_scheme)
    if matrix.n_users == 0 or matrix.n_items == 0:
        raise ValueError("no positive interactions to train on: import data or log events first")
    als = ALSModel(
        factors=stores.cf_dim,
        regularization=params.regularization,
        alpha=params.alpha,
        iterations=params.iterations,
    ).fit(matrix)
    neighbours = ItemNeighbours(params.neighbour_l2, params.neighbour_k).fit(matrix)
    report = TrainReport(
        version=version,
        users=matrix.n_users,
        interactions=len(records),
        fit_s=round(als.fit_seconds + neighbours.fit_seconds, 2),
        params={**als.params(), **params.__dict__, "tune_split": tune_split},
    )
    if trials:
        report.metrics = _inner_metrics(trials, tune_split)
    projection = _write_item_vectors(stores, matrix, als, params, report, progress)
    _write_user_vectors(stores, matrix, als, since)
    stores.mark_written()
    stores.flush_if_due(force=True)
    _save_artefacts(registry.cf_dir(version), als, neighbours, params, projection)
    report.total_s = round(time.perf_counter() - started, 2)
    registry.publish("cf", version, report.as_dict())
    # The one INFO line per training run; the fits and trials behind it log at DEBUG.
    log.info("cf model %s published: %s", version, report.as_dict())
    return report


def _inner_metrics(trials: Sequence[Mapping[str, Any]], tune_split: str) -> dict[str, Any]:
    """The best inner-split quality among the selection's trials."""
    metric = next(k for k in trials[0] if k != "params")
    metrics: dict[str, Any] = {
        f"inner_{metric}": round(max(t[metric] for t in trials if metric in t), 4),
        "inner_split": tune_split,
        "trials": len(trials),
    }
    blended = [t["blend_ndcg@10"] for t in trials if "blend_ndcg@10" in t]
    if blended:
        metrics["inner_blend_ndcg@10"] = round(max(blended), 4)
    return metrics


def _save_artefacts(
    path: Path,
    als: ALSModel,
    neighbours: ItemNeighbours,
    params: CFParams,
    projection: ContentProjection | None,
) -> None:
    """The model version's files: iALS, the neighbours, the blend weight, the projection."""
    als.save(path)
    neighbours.save(path / "neighbours")
    if params.blend_cf_weight is not None:
        save_blend(path, params.blend_cf_weight)
    if projection is not None:
        projection.save(path / "projection")


def _write_item_vectors(
    stores: Stores,
    matrix: InteractionMatrix,
    als: ALSModel,
    params: CFParams,
    report: TrainReport,
    progress: bool,
) -> ContentProjection | None:
    """Give every item its new cf_vec (trained, or projected from its content vector)."""
    written = write_item_vectors(
        stores,
        matrix,
        als.item_factors,
        projection_alpha=params.projection_alpha,
        progress=progress,
    )
    report.items_trained += written.trained
    report.items_projected += written.projected
    return written.projection


def _write_user_vectors(
    stores: Stores, matrix: InteractionMatrix, als: ALSModel, since: float
) -> None:
    """User factors become the users' cf_vec; confidence histories feed later fold-ins.

    Users erased, or who reset their history, since the log was read (`since`) are left out:
    writing them would bring back what the erasure or the reset removed."""
    r, keys = stores.redis, stores.keys
    erasures = ErasureRecords(r, keys)
    reset = {u for u, at in history_resets(stores).items() if at >= since}  # reset meanwhile
    for start in range(0, matrix.n_users, 500):
        chunk = matrix.user_ids[start : start + 500]
        erased = erasures.requested_since(chunk, since)
        users = [u for u in chunk if u not in erased and u not in reset]
        pipe = r.pipeline(transaction=False)
        for uid in users:
            row = matrix.user_index[uid]
            lo, hi = matrix.matrix.indptr[row], matrix.matrix.indptr[row + 1]
            items = [matrix.item_ids[j] for j in matrix.matrix.indices[lo:hi]]
            conf = matrix.matrix.data[lo:hi]
            # Rebuilt from the log, the system of record, so it cannot drift from training.
            pipe.delete(keys.confidence(uid))
            pipe.hset(keys.confidence(uid), mapping=dict(zip(items, map(float, conf), strict=True)))
            pipe.hset(keys.user(uid), "cfvec", als.user_factors[row].astype(np.float32).tobytes())
            pipe.hincrby(keys.user(uid), "ver", 1)
        pipe.execute()
        persist_users(stores, users)
