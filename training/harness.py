"""Scoring the serving pipeline itself against the baselines, on one split, in one run.

The pipeline is exercised exactly as the API runs it: items are embedded and indexed in
Milvus, train interactions applied through the worker's apply functions, the interaction
model trained by `vantage train`'s code, and every test user's list produced by
`serving.recommend.recommend()` (the function behind `GET /v1/recommendations`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from core.candidate_sets import refresh_queued
from core.settings import Settings
from core.stores.protocols import user_owner
from core.surfaces import PolicySpec
from indexing.connect import build_stores
from indexing.datasets import load_dataset
from indexing.importer import import_records
from serving.recommend import recommend
from serving.request import RecRequest
from serving.sets import current_tag
from serving.state import ServingState, build_state
from training.evaluation.baselines import run_baselines
from training.evaluation.data import EvalData
from training.evaluation.metrics import RECALL_KS, evaluate
from training.evaluation.splits import split_records
from training.interaction import CFParams, TrainReport, train_cf
from training.namespace import drop_namespace, eval_settings
from training.ranker import RankerReport, train_ranker

log = logging.getLogger(__name__)

REPORTED = (
    "ndcg@10",
    "precision@10",
    "recall@10",
    "recall@20",
    "map@10",
    "coverage@10",
    "diversity@10",
    "content_diversity@10",
)


def with_policy(settings: Settings, spec: PolicySpec) -> Settings:
    """The same settings with another homepage policy."""
    home = settings.surfaces["homepage"].model_copy(update={"policy": spec})
    return settings.model_copy(update={"surfaces": {**settings.surfaces, "homepage": home}})


def policy_off(settings: Settings) -> Settings:
    """The same settings with the homepage's policy rules 3-8 off (safety and seen stay)."""
    home = settings.surfaces["homepage"]
    return with_policy(
        settings, PolicySpec(exclude_seen=home.policy.exclude_seen, negative_penalty=0.0)
    )


def other_retrieval(settings: Settings) -> tuple[str, Settings]:
    """The same settings with candidate sets switched the other way, and its variant name:
    the pipeline is scored both ways in one run (the sets hold the same sources, cached)."""
    on = not settings.candidates.enabled
    cands = settings.candidates.model_copy(update={"enabled": on})
    return ("vantage_sets" if on else "vantage_live"), settings.model_copy(
        update={"candidates": cands}
    )


def run_pipeline(
    settings: Settings,
    dataset: Path,
    data: EvalData,
    train: Sequence[Mapping[str, Any]],
    truth: dict[int, set[int]],
    *,
    protocol: str = "temporal",
    progress: bool,
    policies: dict[str, PolicySpec] | None = None,
) -> dict[str, Any]:
    """Load train data into a fresh namespace, train, and recommend for every test user.

    Hyper-parameters are tuned on the protocol's split applied inside train, as the
    baselines' are. The namespace is dropped afterwards.
    """

    ds = load_dataset(dataset)
    stores = build_stores(settings)
    try:
        return _load_train_recommend(
            settings,
            stores,
            ds,
            data,
            train,
            truth,
            protocol=protocol,
            progress=progress,
            policies=policies or {},
        )
    finally:
        # The namespace exists for this run only: leave the servers as they were.
        drop_namespace(settings, stores)
        stores.redis.close()
        stores.items.client.close()


def _load_train_recommend(
    settings: Settings,
    stores: Any,
    ds: Any,
    data: EvalData,
    train: Sequence[Mapping[str, Any]],
    truth: dict[int, set[int]],
    *,
    protocol: str,
    progress: bool,
    policies: dict[str, PolicySpec],
) -> dict[str, Any]:
    """Import the train part, fit both models, and score each policy variant's lists."""
    t0 = time.perf_counter()
    import_records(
        stores,
        name=ds.name,
        items=ds.iter_items(),
        users=ds.iter_users(),
        interactions=train,
        n_items=ds.n_items,
        n_interactions=len(train),
        progress=progress,
    )
    load_s = time.perf_counter() - t0
    vecs: dict[str, np.ndarray] = {}
    for i in range(0, len(data.item_ids), 1000):  # the text embeddings, for content diversity
        vecs.update(stores.items.vectors(data.item_ids[i : i + 1000]))
    data.content_vectors = {data.item_index[i]: v for i, v in vecs.items()}
    report, ranker = _train_models(settings, stores, train, protocol=protocol, progress=progress)
    # Same trained models and namespace: only the homepage's policy settings differ.
    other, other_settings = other_retrieval(settings)
    variants = {
        "vantage": settings,
        "vantage_policy_off": policy_off(settings),
        other: other_settings,
        **{name: with_policy(settings, spec) for name, spec in policies.items()},
    }
    runs: dict[str, dict[str, float]] = {}
    latency: list[float] = []
    for name, run_settings in variants.items():
        runs[name], ms = _score_variant(name, run_settings, data, truth, progress=progress)
        latency.extend(ms if name != other else [])
    on, off = runs["vantage"], runs["vantage_policy_off"]
    return {
        "metrics": on,
        "policy_off": off,
        "policy_cost": _policy_cost(on, off),
        "policy_variants": {k: v for k, v in runs.items() if k in policies},
        "retrieval_variant": {other: runs[other]},
        "load_s": round(load_s, 1),
        "train_s": report.total_s,
        "cf_params": report.params,
        "cf_model": report.version,
        "ranker": ranker.as_dict(),
        "recommend_p50_ms": round(float(np.percentile(latency, 50)), 2),
    }


def _train_models(
    settings: Settings,
    stores: Any,
    train: Sequence[Mapping[str, Any]],
    *,
    protocol: str,
    progress: bool,
) -> tuple[TrainReport, RankerReport]:
    """The interaction model, then the re-ranker, as `vantage train` fits them."""
    # `vantage train --tune-split` mirrors the protocol: random for ms, temporal for temporal.
    tune_split = "temporal" if protocol == "temporal" else "random"
    report = train_cf(stores, train, tune_split=tune_split, progress=progress)
    ranker = train_ranker(
        settings,
        stores,
        train,
        tune_split=tune_split,
        cf_params=CFParams.from_dict(report.params),
        progress=progress,
    )
    return report, ranker


def _score_variant(
    name: str,
    settings: Settings,
    data: EvalData,
    truth: dict[int, set[int]],
    *,
    progress: bool,
) -> tuple[dict[str, float], list[float]]:
    """Every test user's homepage list as the API serves it: its metrics and the latencies."""
    depth = max(10, *RECALL_KS)
    state: ServingState = build_state(settings)
    lists: dict[int, list[int]] = {}
    latency: list[float] = []
    try:
        if settings.candidates.enabled:  # served from sets: build them as the workers would
            _build_sets(state, [data.user_ids[u] for u in sorted(truth)])
        for u in tqdm(sorted(truth), desc=name, unit="user", disable=not progress):
            t = time.perf_counter()
            user = data.user_ids[u]
            res = recommend(
                state,
                RecRequest(user_id=user, surface="homepage", limit=depth),
                rec_id=list_id(user),
            )
            latency.append((time.perf_counter() - t) * 1000)
            lists[u] = [data.item_index[i["item_id"]] for i in res["items"]]
    finally:
        state.close()
    metrics = evaluate(
        lists,
        truth,
        n_items=len(data.item_ids),
        item_vectors=data.item_vectors,
        content_vectors=data.content_vectors,
    )
    return metrics, latency


def list_id(user_id: str) -> str:
    """One list id per test user, the same in every variant: exploration then draws alike
    for every policy scored in a run, so variants differ only by their policy (paired)."""
    return hashlib.blake2b(user_id.encode(), digest_size=16).hexdigest()


def _build_sets(state: ServingState, user_ids: Sequence[str]) -> None:
    state.candidates.mark_stale([user_owner(u) for u in user_ids], time.time())
    while refresh_queued(
        state.items,
        state.users,
        state.candidates,
        settings=state.settings,
        tag=current_tag(state),
        n=state.settings.candidates.refresh_batch,
    )[0]:
        pass


def _policy_cost(on: Mapping[str, float], off: Mapping[str, float]) -> dict[str, float | None]:
    """What policy rules 3-8 change: relative NDCG@10, absolute coverage and diversity."""
    return {
        "ndcg@10_change": round(on["ndcg@10"] / off["ndcg@10"] - 1, 4) if off["ndcg@10"] else None,
        "coverage@10_change": round(on["coverage@10"] - off["coverage@10"], 4),
        "diversity@10_change": round(on["diversity@10"] - off["diversity@10"], 4),
    }


def evaluate_dataset(
    settings: Settings,
    dataset: Path,
    protocol: str,
    *,
    baselines: bool = True,
    progress: bool = True,
    inner: bool = False,
    serving: dict[str, Any] | None = None,
    policies: dict[str, PolicySpec] | None = None,
) -> dict[str, Any]:
    """One JSON-able result: the pipeline and (optionally) every baseline on the same split.

    With `inner`, the protocol's split is applied again inside train and the test part is
    never read: that is where serving settings may be tuned.
    """
    started = time.perf_counter()
    data = EvalData.load(dataset)
    train, test = split_records(data.records, protocol)
    if inner:
        train, test = split_records(train, protocol)
    truth = data.truth(test, data.matrix(train))
    out: dict[str, Any] = {
        "dataset": Path(dataset).name,
        "protocol": protocol,
        "split": "inner (train only)" if inner else "test",
        "n_users": len(truth),
        "n_items": len(data.item_ids),
        "n_train": len(train),
        "n_test": len(test),
        "models": {},
    }
    pipe = run_pipeline(
        eval_settings(settings, serving),
        Path(dataset),
        data,
        list(train),
        truth,
        protocol=protocol,
        progress=progress,
        policies=policies,
    )
    out["models"]["vantage"] = pipe["metrics"]
    out["models"]["vantage_policy_off"] = pipe["policy_off"]
    out["models"].update(pipe["retrieval_variant"])
    out["vantage"] = {
        k: v for k, v in pipe.items() if k not in ("metrics", "policy_off", "retrieval_variant")
    }
    if baselines and not inner:
        base = run_baselines(dataset, protocol, content_vectors=data.content_vectors)
        for name, res in base["baselines"].items():
            out["models"][name] = res["metrics"]
        out["baseline_params"] = {n: r["params"] for n, r in base["baselines"].items()}
    out["elapsed_s"] = round(time.perf_counter() - started, 1)
    return out


def markdown_table(results: list[dict[str, Any]]) -> str:
    """The README quality table: one row per (data set, protocol, model)."""
    head = "| data set | protocol | model | " + " | ".join(REPORTED) + " |"
    lines = [head, "|" + "---|" * (3 + len(REPORTED))]
    for res in results:
        for model, m in res["models"].items():
            cells = " | ".join(f"{m.get(k, float('nan')):.4f}" for k in REPORTED)
            name = f"**{model}**" if model == "vantage" else model
            lines.append(f"| {res['dataset']} | {res['protocol']} | {name} | {cells} |")
    return "\n".join(lines) + "\n"
