"""The re-ranker's training run: split -> candidates -> validate and fit -> gate and publish."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from core.settings import Settings
from indexing.apply import Stores
from serving.drift import reference
from serving.features import FEATURE_NAMES
from training.interaction import CFParams
from training.ranker.candidates import Groups, GroupSpec, candidate_groups
from training.ranker.fit import validate_and_fit
from training.ranker.gate import gate_and_publish
from training.ranker.params import RankerParams
from training.ranker.report import RankerReport, StageTimer, not_trained
from training.ranker.split import (
    hold_out_random,
    mirror_tune_split,
    sample_users,
    split_labels,
    validation_users,
)


def train_ranker(
    settings: Settings,
    stores: Stores,
    records: Iterable[Mapping[str, Any]],
    *,
    params: RankerParams = RankerParams(),
    tune_split: str = "temporal",
    cf_params: CFParams | None = None,
    progress: bool = True,
    publish_if_worse: bool = False,
    check_leakage: bool = True,
) -> RankerReport:
    """Fit the re-ranker on `records` (the same ones the interaction model saw) and publish it.

    `tune_split` is the interaction model's ("temporal" or "random"): with "random" the labels
    are a random share of each user's items and the gate checks on such items only; with
    "temporal" they are the newest items, and the gate also checks randomly held-out items.
    `cf_params` are the live interaction model's hyper-parameters (reused for the
    feature-period model; without them they are selected again on the feature period).
    Without `publish_if_worse`, a ranker that does not beat the fallback order on held-out
    users is saved but not published, and a previously published ranker is withdrawn (the
    blend then orders the surfaces).
    """
    if stores.registry is None:
        raise ValueError("training needs a model registry (Stores.registry)")
    started = time.perf_counter()
    params = mirror_tune_split(params, tune_split)
    report = RankerReport(version=None, params=asdict(params))
    # 1. split: feature period and labels, the users to learn from, the validation users.
    split = split_labels(records, params)
    rng = np.random.default_rng(params.seed)
    users = sample_users(split, params, rng)
    if len(users) < 4:
        return not_trained(report, f"too few users with labels ({len(users)})")
    # Validation users, chosen before loading: a random share of their feature-period
    # positives is kept out of the temporary namespace to check the ranker does no harm there.
    val_users = validation_users(users, params, rng)
    split, random_labels = hold_out_random(split, val_users, params, rng)
    # 2. candidates: serving's own retrieval on the feature period, in a temporary namespace.
    timer = StageTimer(report)
    leakage = check_leakage and params.label_split == "time"
    spec = GroupSpec(cf_params, tune_split, progress, leakage, random_labels)
    groups = candidate_groups(settings, stores, split, users, spec, report, timer)
    _count(report, users, groups)
    if report.groups < 4:
        return not_trained(
            report, f"too few users with a label among their candidates ({report.groups})"
        )
    fit, val = _fit_and_validation(groups, val_users)
    if not val or len(fit) < 2:
        return not_trained(report, "too few groups to validate the ranker")
    # 3. fit, validated on held-out users against the order without a ranker.
    model = validate_and_fit(groups, fit, val, params, report)
    timer("fit")
    # 4. gate, then publish (or save only, and withdraw the live ranker), with drift baseline.
    report.total_s = round(time.perf_counter() - started, 2)
    ref = reference(np.vstack([groups.x[i] for i in fit]), FEATURE_NAMES)
    held = bool(random_labels)
    gate_and_publish(stores.registry, model, report, params, held, publish_if_worse, ref)
    return report


def _fit_and_validation(groups: Groups, val_users: Collection[str]) -> tuple[list[int], list[int]]:
    """Indices of the groups to fit on, and of the validation users' groups."""
    val = [i for i, u in enumerate(groups.users) if u in val_users]
    return [i for i, u in enumerate(groups.users) if u not in val_users], val


def _count(report: RankerReport, users: list[str], groups: Groups) -> None:
    """The training set's size, into `report`."""
    report.users = len(users)
    report.groups = len(groups.users)
    report.rows = int(sum(len(y) for y in groups.y))
    report.positives = int(sum(y.sum() for y in groups.y))
