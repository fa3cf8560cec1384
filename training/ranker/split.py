"""Stage 1: the feature period and the labels, the users to learn from, the validation users."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from embeddings.confidence import DEFAULT_RATING_SCHEME, confidence_weight
from training.interaction import is_random_split
from training.ranker.params import RankerParams


@dataclass
class TimeSplit:
    """Feature-period records, label items per user and the time labels start at (and the
    device of the first label-period event that names one)."""

    features: list[dict[str, Any]]
    labels: dict[str, set[str]]
    label_start: dict[str, float]
    label_device: dict[str, str] = field(default_factory=dict)


def _ts(rec: Mapping[str, Any]) -> float:
    return float(rec.get("timestamp") or 0.0)


def _is_positive(rec: Mapping[str, Any]) -> bool:
    weight = confidence_weight(
        str(rec["type"]), rec.get("value"), rating_scheme=DEFAULT_RATING_SCHEME
    )
    return weight > 0


def split_by_time(
    records: Iterable[Mapping[str, Any]],
    *,
    label_share: float,
    min_interactions: int,
    random_seed: int | None = None,
) -> TimeSplit:
    """Per user: interactions before the cut time feed features; positives after it are labels.

    The cut is a timestamp, so ties never straddle it: every feature-period interaction of a
    user is strictly older than that user's first label interaction.
    """
    by_user: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for rec in records:
        by_user[str(rec["user_id"])].append(rec)
    features: list[dict[str, Any]] = []
    labels: dict[str, set[str]] = {}
    start: dict[str, float] = {}
    device: dict[str, str] = {}
    rng = np.random.default_rng(random_seed) if random_seed is not None else None
    for uid, recs in by_user.items():
        recs.sort(key=_ts)
        n_labels = max(1, math.ceil(len(recs) * label_share))
        cut_at = len(recs) - n_labels
        cut_ts = _ts(recs[cut_at]) if len(recs) >= min_interactions else None
        if rng is not None and cut_ts is not None:
            held = set(rng.choice(len(recs), n_labels, replace=False).tolist())
            past = [r for k, r in enumerate(recs) if k not in held]
            future = [r for k, r in enumerate(recs) if k in held]
            cut_ts = min(_ts(r) for r in future)
        else:
            past = [r for r in recs if cut_ts is None or _ts(r) < cut_ts]
            future = [r for r in recs if cut_ts is not None and _ts(r) >= cut_ts]
        positives = {str(r["item_id"]) for r in future if _is_positive(r)}
        if cut_ts is None or not past or not positives:
            features.extend(dict(r) for r in recs)  # too short or all at one time: no labels
            continue
        features.extend(dict(r) for r in past)
        labels[uid] = positives - {str(r["item_id"]) for r in past}
        start[uid] = float(cut_ts)
        on = next((str(r["device"]) for r in sorted(future, key=_ts) if r.get("device")), None)
        if on is not None:
            device[uid] = on
    labels = {u: items for u, items in labels.items() if items}
    on_device = {u: device[u] for u in labels if u in device}
    return TimeSplit(features, labels, {u: start[u] for u in labels}, on_device)


def split_labels(records: Iterable[Mapping[str, Any]], params: RankerParams) -> TimeSplit:
    """`split_by_time` with the label share, minimum and label draw of `params`."""
    return split_by_time(
        records,
        label_share=params.label_share,
        min_interactions=params.min_interactions,
        random_seed=params.seed if params.label_split == "random" else None,
    )


def mirror_tune_split(params: RankerParams, tune_split: str) -> RankerParams:
    """`params` with the labels drawn the way the interaction model's tune split draws them."""
    if not is_random_split(tune_split):
        return params
    # Mirror the tune split: random labels, and the gate checks on those (an extra random
    # holdout would measure the same thing again).
    return replace(
        params,
        label_split="random",
        label_share=params.random_label_share,
        random_holdout_share=0.0,
    )


def sample_users(split: TimeSplit, params: RankerParams, rng: np.random.Generator) -> list[str]:
    """The users whose candidates become training groups (at most `params.max_users`)."""
    users = sorted(split.labels)
    if len(users) > params.max_users:
        users = sorted(rng.choice(users, params.max_users, replace=False).tolist())
    return users


def validation_users(users: list[str], params: RankerParams, rng: np.random.Generator) -> set[str]:
    """The share of `users` held out to check the ranker beats the order without one."""
    return set(rng.permutation(users)[: max(1, int(len(users) * params.val_share))].tolist())


def hold_out_random(
    split: TimeSplit, val_users: set[str], params: RankerParams, rng: np.random.Generator
) -> tuple[TimeSplit, dict[str, set[str]]]:
    """Take a random share of the validation users' feature-period positives out of the
    split: the gate checks the ranker on them too (unseen items, not only the newest)."""
    random_labels: dict[str, set[str]] = {}
    if params.random_holdout_share <= 0:
        return split, random_labels
    feature_items: dict[str, list[int]] = defaultdict(list)
    for k, rec in enumerate(split.features):
        positive = _is_positive(rec)  # every record: a malformed one fails whoever it is of
        if str(rec["user_id"]) in val_users and positive:
            feature_items[str(rec["user_id"])].append(k)
    dropped: set[int] = set()
    for uid, ks in feature_items.items():
        n_hold = int(len(ks) * params.random_holdout_share)
        if n_hold < 1 or len(ks) - n_hold < 2:
            continue
        held = rng.choice(ks, n_hold, replace=False).tolist()
        dropped.update(held)
        random_labels[uid] = {str(split.features[k]["item_id"]) for k in held}
    kept = [r for k, r in enumerate(split.features) if k not in dropped]
    return replace(split, features=kept), random_labels
