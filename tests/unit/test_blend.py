"""Unit tests for embeddings.blend and the choice of its weight at training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from embeddings.blend import (
    CF_WEIGHT_GRID,
    blend,
    choose_cf_weight,
    load_blend,
    ndcg_by_weight,
    save_blend,
    zscore,
)
from training.interaction import CFParams, select_blend_weight


def test_zscore_standardises_finite_values_and_zeroes_unknown() -> None:
    z = zscore(np.array([1.0, 2.0, 3.0, np.nan]))
    assert z[3] == 0.0
    assert np.isclose(z[:3].mean(), 0.0) and np.isclose(z[:3].std(), 1.0)
    assert np.all(zscore(np.array([5.0, 5.0])) == 0.0)  # constant: no information
    assert np.all(zscore(np.array([np.nan, 1.0])) == 0.0)  # one known value: nothing to scale


def test_blend_weights_the_two_views() -> None:
    cf = np.array([3.0, 2.0, 1.0])
    nbr = np.array([1.0, 2.0, 3.0])
    assert np.allclose(blend(cf, nbr, 1.0), zscore(cf))
    assert np.allclose(blend(cf, nbr, 0.0), zscore(nbr))
    assert np.allclose(blend(cf, nbr, 0.5), 0.0)  # opposite views cancel
    assert np.allclose(blend(cf, None, 0.3), 0.3 * zscore(cf))  # no neighbours: cf alone


def _world(
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix, sp.csr_matrix, dict[int, set[int]]]:
    """Held-out items that the cf view ranks first and the neighbour view ranks last."""
    rng = np.random.default_rng(seed)
    n_users, n_items, dim = 30, 200, 8
    users = rng.normal(size=(n_users, dim))
    items = rng.normal(size=(n_items, dim))
    train = sp.csr_matrix((n_users, n_items), dtype=np.float32)
    truth = {}
    for u in range(n_users):
        truth[u] = set(np.argsort(-(items @ users[u]))[:5].tolist())
    # Neighbour weights that point away from each user's held-out items.
    nbr = sp.csr_matrix(rng.random((n_items, n_items)).astype(np.float32))
    rows = []
    for u in range(n_users):
        history = rng.choice([i for i in range(n_items) if i not in truth[u]], 3, replace=False)
        rows.append(history)
    train = sp.csr_matrix(
        (np.ones(3 * n_users), (np.repeat(np.arange(n_users), 3), np.concatenate(rows))),
        shape=(n_users, n_items),
    )
    dense = nbr.toarray()
    for u in range(n_users):
        for i in truth[u]:
            dense[rows[u], i] = -5.0
    return users, items, sp.csr_matrix(dense), train, truth


def test_ndcg_by_weight_prefers_the_informative_view() -> None:
    users, items, nbr, train, truth = _world()
    by_weight = ndcg_by_weight(users, items, nbr, train, truth)
    assert by_weight.shape == (len(CF_WEIGHT_GRID),)
    assert by_weight[-1] == pytest.approx(1.0)  # cf alone ranks every held-out item first
    assert by_weight[0] < 0.5  # the neighbour view alone buries them
    assert choose_cf_weight([by_weight])[0] >= 0.5


def test_choose_cf_weight_averages_folds() -> None:
    n = len(CF_WEIGHT_GRID)
    a = np.zeros((3, n))
    b = np.zeros((3, n))
    a[:, 2], b[:, 2], b[0, 7] = 0.5, 0.5, 0.9  # one user's 0.9 at 0.7 loses to 0.5 at 0.2
    weight, means = choose_cf_weight([a, b])
    assert weight == CF_WEIGHT_GRID[2]
    assert means[2] == 0.5 and means[7] == 0.15


def test_choose_cf_weight_keeps_ials_unless_the_blend_leads_clearly() -> None:
    rng = np.random.default_rng(0)
    base = rng.random((40, 1)).repeat(len(CF_WEIGHT_GRID), axis=1)
    noisy = base.copy()
    swing = np.where(np.arange(40) % 2, 0.1, -0.1)  # 0.1 helps half the users, hurts half
    noisy[:, 1] += 0.01 + swing  # ... and wins on the mean, by less than the noise
    weight, means = choose_cf_weight([noisy])
    assert max(means) == means[1]
    assert weight == 1.0  # ... so iALS alone stays
    clear = base.copy()
    clear[:, 1] += 0.05  # every user gains: a lead well beyond its standard error
    assert choose_cf_weight([clear])[0] == CF_WEIGHT_GRID[1]


def test_blend_weight_file_roundtrip(tmp_path: Path) -> None:
    assert load_blend(tmp_path) is None  # a model from before blending: no weight
    save_blend(tmp_path, 0.8)
    assert load_blend(tmp_path) == 0.8
    (tmp_path / "blend.json").write_text('{"cf_weight": 1.5}')
    with pytest.raises(ValueError, match="outside"):
        load_blend(tmp_path)


def _cluster_records(seed: int = 0) -> list[dict[str, object]]:
    """Two taste clusters of 40 users each over 30 + 30 items, 12 ratings per user."""
    rng = np.random.default_rng(seed)
    records = []
    for u in range(80):
        own = 0 if u < 40 else 30
        for k, i in enumerate(rng.choice(30, 12, replace=False)):
            records.append(
                {
                    "user_id": f"u{u}",
                    "item_id": f"i{own + i}",
                    "type": "rate",
                    "value": 4.0,
                    "timestamp": 1_000 + 10 * k,
                }
            )
    return records


@pytest.mark.parametrize("split", ["random", "temporal"])
def test_select_blend_weight_on_held_out_folds(split: str) -> None:
    weight, means = select_blend_weight(
        _cluster_records(), CFParams(regularization=1.0, alpha=5.0), factors=8, split=split
    )
    assert weight in CF_WEIGHT_GRID
    assert len(means) == len(CF_WEIGHT_GRID)
    # The chosen weight is the best one or within noise of it (the one-standard-error rule).
    assert means[CF_WEIGHT_GRID.index(weight)] >= max(means) - 0.05
    # Both views find the user's own cluster (18 unseen items of 48): well above a random
    # order (about 0.12), as high as ordering inside the cluster allows.
    assert max(means) > 0.2


def test_ranker_gate_needs_a_credible_lead() -> None:
    from training.ranker import RankerParams, paired_t

    gate = RankerParams().gate_min_t
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.1, 120)
    assert paired_t(noise - noise.mean() + 0.004) < gate  # a 0.004 lead among noise: refused
    assert paired_t(noise - noise.mean() + 0.05) > gate  # a clear lead: published
    assert paired_t([0.1]) == 0.0 and paired_t([0.0, 0.0]) == 0.0
