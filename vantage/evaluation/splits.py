"""Per-user train/test splits: the ANCHORS "MS-compatible" random split and a temporal split.

Both work on parallel arrays (one entry per interaction, in file order) and return sorted
index arrays, so callers can split record lists, DataFrames or matrices alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

Record = Mapping[str, Any]

PROTOCOL_MS = "ms"
PROTOCOL_TEMPORAL = "temporal"
PROTOCOLS = (PROTOCOL_MS, PROTOCOL_TEMPORAL)
MS_RATIO = 0.75
MS_SEED = 42
TEMPORAL_TEST_FRACTION = 0.2


def _rank_split(users: np.ndarray, order_key: np.ndarray, train_ratio: float) -> np.ndarray:
    """Train mask: within each user, sorted by ``order_key``, rank/count <= train_ratio."""
    _, group = np.unique(users, return_inverse=True)
    # Sort by (user, key); lexsort is stable, so equal keys keep file order.
    order = np.lexsort((order_key, group))
    sorted_group = group[order]
    counts = np.bincount(group)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(len(order)) - starts[sorted_group] + 1
    # Same float expression as recommenders (rank / count <= threshold), so the boundary
    # cases (e.g. 3/4 == 0.75) fall on the same side.
    in_train_sorted = rank / counts[sorted_group] <= train_ratio
    in_train = np.empty(len(order), dtype=bool)
    in_train[order] = in_train_sorted
    return _keep_users_trainable(group, in_train)


def _keep_users_trainable(group: np.ndarray, in_train: np.ndarray) -> np.ndarray:
    """Move all rows of users with no train row into train (they cannot be evaluated)."""
    has_train = np.bincount(group, weights=in_train, minlength=group.max() + 1 if len(group) else 0)
    return in_train | (has_train[group] == 0)


def _to_indices(in_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.flatnonzero(in_train), np.flatnonzero(~in_train)


def stratified_split_indices(
    users: Sequence[Any] | np.ndarray, ratio: float = MS_RATIO, seed: int = MS_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices as recommenders' ``python_stratified_split(filter_by="user")``.

    recommenders draws ``np.random.rand(n)`` after ``np.random.seed(seed)`` in row order,
    sorts each user's rows by that number and keeps ranks with rank/count <= ratio in train;
    we draw the same stream, so on the same row order the split is identical. Users whose
    every row lands in test (only possible with one row) are kept wholly in train.
    """
    users = np.asarray(users)
    if len(users) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    # The legacy global-state generator, because that is what recommenders seeds.
    draws = np.random.RandomState(seed).rand(len(users))
    return _to_indices(_rank_split(users, draws, ratio))


def temporal_split_indices(
    users: Sequence[Any] | np.ndarray,
    timestamps: Sequence[float] | np.ndarray,
    test_fraction: float = TEMPORAL_TEST_FRACTION,
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices: each user's last ``test_fraction`` of rows by time are test.

    Ties in time keep file order, so no test row of a user is earlier than any of their
    train rows. Same rank rule as recommenders' ``python_chrono_split``.
    """
    users = np.asarray(users)
    if len(users) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    ts = np.asarray(timestamps, dtype=np.float64)
    return _to_indices(_rank_split(users, ts, 1.0 - test_fraction))


def split_indices(
    records: Sequence[Record], protocol: str, *, seed: int = MS_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices into ``records`` for protocol "ms" or "temporal"."""
    users = np.array([str(r["user_id"]) for r in records])
    if protocol == PROTOCOL_MS:
        return stratified_split_indices(users, MS_RATIO, seed)
    if protocol == PROTOCOL_TEMPORAL:
        return temporal_split_indices(users, [float(r["timestamp"]) for r in records])
    raise ValueError(f"unknown protocol {protocol!r}; known: {PROTOCOLS}")


def split_records(
    records: Sequence[Record], protocol: str, *, seed: int = MS_SEED
) -> tuple[list[Record], list[Record]]:
    """(train, test) record lists for protocol "ms" or "temporal", each in input order."""
    train, test = split_indices(records, protocol, seed=seed)
    return [records[i] for i in train], [records[i] for i in test]
