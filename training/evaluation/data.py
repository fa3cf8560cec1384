"""One data set's positive interactions as user and item index maps, ready to split and score."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from embeddings.confidence import confidence_weight
from embeddings.matrix import InteractionMatrix
from indexing.datasets import load_dataset
from training.evaluation.splits import natural_key

Record = Mapping[str, Any]


class EvalData:
    """Interactions of one dataset as index maps plus records, ready to split and score."""

    def __init__(
        self,
        records: Sequence[Record],
        item_ids: list[str],
        item_categories: dict[str, list[str]],
    ):
        self.records = records
        self.item_ids = item_ids
        self.user_ids = sorted({str(r["user_id"]) for r in records}, key=natural_key)
        self.item_index = {it: i for i, it in enumerate(item_ids)}
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.item_vectors = _category_vectors(item_ids, item_categories)
        # item index -> text embedding, once the pipeline has embedded the catalogue.
        self.content_vectors: Mapping[int, np.ndarray] | None = None

    @classmethod
    def load(cls, dataset_path: str | Path) -> EvalData:
        """Read a dataset; keep interactions that count as positives (all ratings)."""

        ds = load_dataset(dataset_path)
        categories = {
            str(it["item_id"]): list(it.get("categories") or []) for it in ds.iter_items()
        }
        records = [
            r for r in ds.iter_interactions() if confidence_weight(r["type"], r["value"]) > 0
        ]
        item_ids = list(categories)
        known = set(item_ids)
        for r in records:  # interactions on items missing from the catalogue still count
            if str(r["item_id"]) not in known:
                known.add(str(r["item_id"]))
                item_ids.append(str(r["item_id"]))
        return cls(records, item_ids, categories)

    def matrix(self, records: Iterable[Record], rating_scheme: str = "flat") -> sp.csr_matrix:
        """All-users x catalogue weight matrix of ``records``."""
        return InteractionMatrix.from_records(
            records, item_ids=self.item_ids, user_ids=self.user_ids, rating_scheme=rating_scheme
        ).matrix

    def truth(self, test: Iterable[Record], train: sp.csr_matrix) -> dict[int, set[int]]:
        """user index -> relevant test item indices, minus items already in that user's train."""
        out: dict[int, set[int]] = {}
        for r in test:
            out.setdefault(self.user_index[str(r["user_id"])], set()).add(
                self.item_index[str(r["item_id"])]
            )
        for u, items in out.items():
            items.difference_update(train.indices[train.indptr[u] : train.indptr[u + 1]].tolist())
        return {u: items for u, items in out.items() if items}


def _category_vectors(item_ids: list[str], categories: Mapping[str, list[str]]) -> np.ndarray:
    """Multi-hot category vectors: the cheap, model-free basis for intra-list diversity."""
    names = sorted({c for cats in categories.values() for c in cats})
    col = {c: j for j, c in enumerate(names)}
    vecs = np.zeros((len(item_ids), max(len(names), 1)), dtype=np.float32)
    for i, it in enumerate(item_ids):
        for c in categories.get(it, ()):
            vecs[i, col[c]] = 1.0
    return vecs
