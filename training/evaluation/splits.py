"""Per-user train/test splits: the ANCHORS "MS-compatible" random split and a temporal split.

Protocols (``split_indices`` / ``split_records``):

* ``"ms"``: recommenders' ``python_stratified_split(filter_by="user", ratio=0.75, seed=42)``,
  reproduced exactly: ``np.random.seed(42); np.random.rand(n)`` over the rows in file order,
  each user's rows sorted by that draw, rows with rank/count <= 0.75 are train.
* ``"ms-round"``: the same draws and order, but each user's last ``round(0.25 n)`` rows
  (numpy round-half-even) are test. This is what the ANCHORS "measured" MS table used: it
  reproduces its MostPop and EASE rows to four decimals. It differs from ``"ms"`` only for
  users whose count is 1 or 2 mod 4 (one row more in train), about 1% of the test rows.
* ``"temporal"``: each user's rows sorted by (timestamp, item id), the last ``round(0.2 n)``
  are test; reproduces the ANCHORS temporal table exactly (ties in time go by item id, and
  ML-100K has many same-second ratings, so the tie rule matters).

All functions return sorted row-index arrays (so they split record lists, DataFrames or
matrices alike). A user left without any train row is moved wholly into train: such a user
cannot be evaluated, and every test user must have history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

Record = Mapping[str, Any]

PROTOCOL_MS = "ms"
PROTOCOL_MS_ROUND = "ms-round"
PROTOCOL_TEMPORAL = "temporal"
PROTOCOLS = (PROTOCOL_MS, PROTOCOL_MS_ROUND, PROTOCOL_TEMPORAL)
MS_RATIO = 0.75
MS_SEED = 42
TEMPORAL_TEST_FRACTION = 0.2
RULE_RATIO = "ratio"  # recommenders: rank / count <= train ratio
RULE_ROUND = "round"  # last round(test_fraction * count) rows are test

IndexPair = tuple[np.ndarray, np.ndarray]


def _per_user_positions(
    users: np.ndarray, keys: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group id, 0-based position within the user's sorted rows, user row count) per row."""
    _, group = np.unique(users, return_inverse=True)
    # lexsort: last key is primary; it is stable, so rows equal on every key keep file order.
    order = np.lexsort((*reversed(keys), group))
    counts = np.bincount(group)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.empty(len(users), dtype=np.int64)
    position[order] = np.arange(len(order)) - starts[group[order]]
    return group, position, counts[group]


def _train_mask(
    users: np.ndarray, keys: Sequence[np.ndarray], test_fraction: float, rule: str
) -> np.ndarray:
    group, position, count = _per_user_positions(users, keys)
    if rule == RULE_RATIO:
        # The same float expression as recommenders, so boundary cases (3/4 <= 0.75) agree.
        in_train = (position + 1) / count <= 1.0 - test_fraction
    elif rule == RULE_ROUND:
        in_train = position < count - np.round(test_fraction * count)
    else:
        raise ValueError(f"unknown split rule {rule!r}")
    has_train = np.bincount(group, weights=in_train)
    # Users with nothing before the cut keep everything in train.
    mask: np.ndarray = in_train | (has_train[group] == 0)
    return mask


def _indices(in_train: np.ndarray) -> IndexPair:
    return np.flatnonzero(in_train), np.flatnonzero(~in_train)


def _empty() -> IndexPair:
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)


def stratified_split_indices(
    users: Sequence[Any] | np.ndarray,
    ratio: float = MS_RATIO,
    seed: int = MS_SEED,
    *,
    rule: str = RULE_RATIO,
) -> IndexPair:
    """(train, test) row indices of a per-user random split (see module doc for the rules)."""
    users = np.asarray(users)
    if len(users) == 0:
        return _empty()
    # The legacy generator, seeded like np.random.seed(seed): what recommenders draws from.
    draws = np.random.RandomState(seed).rand(len(users))
    return _indices(_train_mask(users, [draws], 1.0 - ratio, rule))


def temporal_split_indices(
    users: Sequence[Any] | np.ndarray,
    timestamps: Sequence[float] | np.ndarray,
    test_fraction: float = TEMPORAL_TEST_FRACTION,
    *,
    tiebreak: Sequence[Any] | np.ndarray | None = None,
) -> IndexPair:
    """(train, test) row indices: each user's last ``round(test_fraction n)`` rows by time.

    Rows with equal timestamps are ordered by ``tiebreak`` (then file order), so a test row
    is never earlier than a train row of the same user.
    """
    users = np.asarray(users)
    if len(users) == 0:
        return _empty()
    keys = [np.asarray(timestamps, dtype=np.float64)]
    if tiebreak is not None:
        keys.append(np.asarray(tiebreak))
    return _indices(_train_mask(users, keys, test_fraction, RULE_ROUND))


def natural_ranks(ids: Sequence[str]) -> np.ndarray:
    """Rank of each id in natural order (numeric ids by value, then the rest as strings)."""
    unique = sorted(set(ids), key=natural_key)
    rank = {v: i for i, v in enumerate(unique)}
    return np.fromiter((rank[v] for v in ids), dtype=np.int64, count=len(ids))


def natural_key(value: str) -> tuple[int, int | str]:
    """Sort key putting numeric ids first, by value."""
    return (0, int(value)) if value.isdigit() else (1, value)


def split_indices(records: Sequence[Record], protocol: str, *, seed: int = MS_SEED) -> IndexPair:
    """(train, test) indices into ``records`` for a protocol in ``PROTOCOLS``."""
    users = np.array([str(r["user_id"]) for r in records])
    if protocol == PROTOCOL_MS:
        return stratified_split_indices(users, MS_RATIO, seed, rule=RULE_RATIO)
    if protocol == PROTOCOL_MS_ROUND:
        return stratified_split_indices(users, MS_RATIO, seed, rule=RULE_ROUND)
    if protocol == PROTOCOL_TEMPORAL:
        timestamps = [float(r["timestamp"]) for r in records]
        items = natural_ranks([str(r["item_id"]) for r in records])
        return temporal_split_indices(users, timestamps, tiebreak=items)
    raise ValueError(f"unknown protocol {protocol!r}; known: {PROTOCOLS}")


def split_records(
    records: Sequence[Record], protocol: str, *, seed: int = MS_SEED
) -> tuple[list[Record], list[Record]]:
    """(train, test) record lists for a protocol in ``PROTOCOLS``, each in input order."""
    train, test = split_indices(records, protocol, seed=seed)
    return [records[i] for i in train], [records[i] for i in test]
