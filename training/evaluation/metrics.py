"""Full-ranking top-k metrics with binary relevance, matching recommenders' definitions.

Every metric is averaged over the users of ``test`` (a user with no recommendations scores
0), as recommenders averages over users present in both truth and predictions.

* ``ndcg@k``: binary gains, DCG = sum_{hits} 1/log(1+rank), ideal DCG over min(|rel|, k)
  positions (recommenders ``ndcg_at_k``, score_type="binary"; the log base cancels).
* ``precision@k`` = hits/k, ``recall@k`` = hits/|rel|, ``hr@k`` = 1 if any hit.
* ``map@k``: sum over hits of precision-at-that-rank, divided by |rel|. This is what the
  recommenders README "MAP" column reports (its Spark-style ``map``, which was ``map_at_k``
  before recommenders 1.2); ANCHORS quotes that column.
* ``map_capped@k``: the same sum divided by min(|rel|, k) (recommenders >= 1.2 ``map_at_k``).
* ``coverage@k``: distinct recommended items / catalogue size.
* ``diversity@k``: mean over users of the mean pairwise (1 - cosine) of their top-k vectors
  (multi-hot categories); ``content_diversity@k`` the same over the items' text embeddings,
  which still tells lists apart when items share no category.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, TypeVar

import numpy as np

DEFAULT_K = 10
RECALL_KS = (10, 20)

UserT = TypeVar("UserT", bound=Hashable)
ItemT = TypeVar("ItemT", bound=Hashable)


def hit_matrix(
    top_k_lists: Mapping[UserT, Sequence[ItemT]],
    test: Mapping[UserT, AbstractSet[ItemT]],
    depth: int,
) -> tuple[np.ndarray, np.ndarray, list[list[ItemT]]]:
    """(hits bool [n_users, depth], |relevant| per user, truncated lists) in ``test`` order."""
    hits = np.zeros((len(test), depth), dtype=bool)
    n_rel = np.zeros(len(test), dtype=np.float64)
    lists: list[list[ItemT]] = []
    for row, (user, relevant) in enumerate(test.items()):
        ranked = list(top_k_lists.get(user, ()))[:depth]
        lists.append(ranked)
        n_rel[row] = len(relevant)
        hits[row, : len(ranked)] = [item in relevant for item in ranked]
    return hits, n_rel, lists


def ndcg_at_k(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    """Per-user binary nDCG@k from a hit matrix."""
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits[:, :k] @ discount
    ideal_len = np.minimum(n_rel, k).astype(int)
    idcg = np.concatenate(([0.0], np.cumsum(discount)))[ideal_len]
    ndcg: np.ndarray = np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)
    return ndcg


def average_precision_at_k(
    hits: np.ndarray, n_rel: np.ndarray, k: int, *, capped: bool
) -> np.ndarray:
    """Per-user AP@k; normalised by |rel| (README MAP) or by min(|rel|, k) when ``capped``."""
    h = hits[:, :k].astype(np.float64)
    precision_at_rank = np.cumsum(h, axis=1) / np.arange(1, k + 1)
    total = (precision_at_rank * h).sum(axis=1)
    denom = np.minimum(n_rel, k) if capped else n_rel
    ap: np.ndarray = np.divide(total, denom, out=np.zeros_like(total), where=denom > 0)
    return ap


def intra_list_diversity(lists: Sequence[Sequence[Hashable]], vectors: Any, k: int) -> float:
    """Mean over users of mean pairwise 1 - cosine among their top-k item vectors."""
    values = []
    for ranked in lists:
        vecs = [_vector(vectors, item) for item in ranked[:k]]
        vecs = [v for v in vecs if v is not None]
        if len(vecs) < 2:
            continue
        m = np.asarray(vecs, dtype=np.float64)
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        m = np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)
        sim = m @ m.T
        n = len(m)
        mean_sim = (sim.sum() - np.trace(sim)) / (n * (n - 1))
        values.append(1.0 - mean_sim)
    return float(np.mean(values)) if values else 0.0


def _vector(vectors: Any, item: Hashable) -> np.ndarray | None:
    # A mapping item -> vector, or an array indexed by integer item index.
    vec: np.ndarray | None = vectors.get(item) if isinstance(vectors, Mapping) else vectors[item]
    return vec


def evaluate(
    top_k_lists: Mapping[UserT, Sequence[ItemT]],
    test: Mapping[UserT, AbstractSet[ItemT]],
    *,
    n_items: int,
    item_vectors: Any = None,
    content_vectors: Any = None,
    k: int = DEFAULT_K,
) -> dict[str, float]:
    """Ranking metrics of ranked lists against held-out relevant sets (see module doc)."""
    test = {u: rel for u, rel in test.items() if rel}
    if not test:
        raise ValueError("no test user has a relevant item")
    depth = max(k, *RECALL_KS)
    hits, n_rel, lists = hit_matrix(top_k_lists, test, depth)
    top = hits[:, :k]
    ndcg = ndcg_at_k(hits, n_rel, k)
    out = {
        f"ndcg@{k}": ndcg.mean(),
        # Standard error of that mean over users: with one or two held-out items per user
        # (sparse catalogues) it is a tenth of the mean or more, larger than most gaps.
        f"ndcg@{k}_se": ndcg.std(ddof=1) / np.sqrt(len(ndcg)) if len(ndcg) > 1 else 0.0,
        f"precision@{k}": top.sum(axis=1).mean() / k,
        f"map@{k}": average_precision_at_k(hits, n_rel, k, capped=False).mean(),
        f"map_capped@{k}": average_precision_at_k(hits, n_rel, k, capped=True).mean(),
        f"hr@{k}": top.any(axis=1).mean(),
    }
    for r in sorted({k, *RECALL_KS}):
        out[f"recall@{r}"] = (hits[:, :r].sum(axis=1) / n_rel).mean()
    distinct = {item for ranked in lists for item in ranked[:k]}
    out[f"coverage@{k}"] = len(distinct) / n_items if n_items else 0.0
    if item_vectors is not None:
        out[f"diversity@{k}"] = intra_list_diversity(lists, item_vectors, k)
    if content_vectors is not None:
        out[f"content_diversity@{k}"] = intra_list_diversity(lists, content_vectors, k)
    out["n_users"] = len(test)
    return {name: float(value) for name, value in out.items()}
