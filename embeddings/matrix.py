"""The user x item matrix of confidence weights every interaction model is fitted on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from embeddings.confidence import (
    CONFIDENCE_WEIGHTS,
    DEFAULT_RATING_SCHEME,
    RatingScheme,
    rating_fn,
)

Record = Mapping[str, Any]


@dataclass
class InteractionMatrix:
    """A user x item CSR matrix of confidence weights plus the id <-> index maps."""

    user_ids: list[str]
    item_ids: list[str]
    matrix: sp.csr_matrix
    user_index: dict[str, int] = field(default_factory=dict)
    item_index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.matrix.shape != (len(self.user_ids), len(self.item_ids)):
            raise ValueError(
                f"matrix shape {self.matrix.shape} != ({len(self.user_ids)}, {len(self.item_ids)})"
            )
        if not self.user_index:
            self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        if not self.item_index:
            self.item_index = {it: i for i, it in enumerate(self.item_ids)}

    @classmethod
    def from_records(
        cls,
        records: Iterable[Record],
        *,
        item_ids: Sequence[str] | None = None,
        user_ids: Sequence[str] | None = None,
        weights: Mapping[str, float] = CONFIDENCE_WEIGHTS,
        rating_scheme: RatingScheme = DEFAULT_RATING_SCHEME,
    ) -> InteractionMatrix:
        """Build the matrix; repeated (user, item) events add up, zero-weight events are dropped.

        With ``item_ids`` / ``user_ids`` the index order is fixed (e.g. the whole catalogue)
        and records for ids outside them are ignored; otherwise ids are added as first seen.
        """
        rate = rating_fn(rating_scheme)
        fixed_items, fixed_users = item_ids is not None, user_ids is not None
        items = list(item_ids) if item_ids is not None else []
        users = list(user_ids) if user_ids is not None else []
        item_index = {it: i for i, it in enumerate(items)}
        user_index = {u: i for i, u in enumerate(users)}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for rec in records:
            kind = rec["type"]
            w = rate(rec.get("value")) if kind == "rate" else float(weights.get(kind, 0.0))
            if w <= 0.0:
                continue
            col = _lookup(item_index, items, str(rec["item_id"]), grow=not fixed_items)
            row = _lookup(user_index, users, str(rec["user_id"]), grow=not fixed_users)
            if col < 0 or row < 0:
                continue
            rows.append(row)
            cols.append(col)
            vals.append(w)
        coo = sp.coo_matrix(
            (np.asarray(vals, dtype=np.float32), (np.asarray(rows), np.asarray(cols))),
            shape=(len(users), len(items)),
        )
        matrix = coo.tocsr()  # tocsr sums duplicates
        matrix.sort_indices()
        return cls(users, items, matrix, user_index, item_index)

    @property
    def n_users(self) -> int:
        """Number of user rows."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of item columns."""
        return len(self.item_ids)

    def items_with_interactions(self) -> npt.NDArray[np.intp]:
        """Indices of items with at least one positive (what ContentProjection is fitted on)."""
        return np.flatnonzero(np.bincount(self.matrix.indices, minlength=self.n_items))

    def user_history(
        self, user_id: str
    ) -> tuple[npt.NDArray[np.signedinteger[Any]], npt.NDArray[np.float32]]:
        """(item indices, weights) of one user's row; empty arrays for an unknown user."""
        row = self.user_index.get(user_id)
        if row is None:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32)
        lo, hi = self.matrix.indptr[row], self.matrix.indptr[row + 1]
        return self.matrix.indices[lo:hi].copy(), self.matrix.data[lo:hi].copy()


def _lookup(index: dict[str, int], ids: list[str], key: str, *, grow: bool) -> int:
    pos = index.get(key)
    if pos is None:
        if not grow:
            return -1
        pos = index[key] = len(ids)
        ids.append(key)
    return pos


def as_csr(matrix: InteractionMatrix | sp.spmatrix) -> sp.csr_matrix:
    """A float32 CSR copy of the weights (what the models fit on)."""
    csr = matrix.matrix if isinstance(matrix, InteractionMatrix) else sp.csr_matrix(matrix)
    return csr.astype(np.float32)
