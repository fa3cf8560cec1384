"""Off-policy estimators (core.ope) on simulated logs whose truth is known: a position-based
click model, a logging policy that explores with known per-position propensities, and three
candidate rankings that differ from it."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from core.ope import Logged, estimate, position_model, support

M, L = 20, 5  # items, positions
EPS = 0.5  # the logging policy's share of uniformly random lists
RUNS, LISTS, BOOTS = 30, 3000, 150


def _world() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(0)
    return rng.beta(2, 8, M), 1 / (np.arange(L) + 1) ** 0.7  # attractiveness, position bias


def _log(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], base: npt.NDArray[np.intp], seed: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Lists, propensities and clicks of the logging policy: the base ranking, or with
    probability EPS the first L of a uniform permutation (item i at k: EPS / M)."""
    rng = np.random.default_rng(seed)
    lists = np.asarray(
        [rng.permutation(M)[:L] if rng.random() < EPS else base for _ in range(LISTS)]
    )
    mu = np.where(lists == base[None, :], 1 - EPS, 0.0) + EPS / M
    clicks = (rng.random((LISTS, L)) < a[lists] * b[None, :]).astype(np.float64)
    return lists, mu, clicks


def _logged(
    lists: npt.NDArray[np.intp],
    mu: npt.NDArray[np.float64],
    clicks: npt.NDArray[np.float64],
    cand: npt.NDArray[np.intp],
) -> Logged:
    r = position_model(lists, clicks, M)
    k = np.broadcast_to(np.arange(L), lists.shape)
    pi = (lists == cand[None, :]).astype(np.float64)
    return Logged(mu, pi, clicks, r(lists, k), r(np.broadcast_to(cand, lists.shape), k).sum(axis=1))


def test_the_intervals_cover_the_true_ctr_of_candidates_unlike_the_log() -> None:
    a, b = _world()
    base = np.argsort(a)[5 : 5 + L]  # a middling logging ranking
    cands = {
        "best": np.argsort(-a)[:L],
        "reversed": base[::-1].copy(),
        "random": np.random.default_rng(9).permutation(M)[:L],
    }
    covered = {(n, e): 0 for n in cands for e in ("ips", "snips", "dr")}
    for run in range(RUNS):
        lists, mu, clicks = _log(a, b, base, seed=100 + run)
        for name, cand in cands.items():
            truth = float((a[cand] * b).sum() / L)
            lg = _logged(lists, mu, clicks, cand)
            for est in ("ips", "snips", "dr"):
                got = estimate(lg, est, positions=L, boots=BOOTS, seed=run)
                covered[(name, est)] += got.low <= truth <= got.high
    share = {k: v / RUNS for k, v in covered.items()}
    assert all(v >= 0.85 for v in share.values()), share
    assert np.mean(list(share.values())) >= 0.9, share


def test_refusal_inputs_support_and_effective_sample_size() -> None:
    a, b = _world()
    base = np.argsort(a)[5 : 5 + L]
    lists, mu, clicks = _log(a, b, base, seed=1)
    same = _logged(lists, mu, clicks, base)
    assert support(same) == 1.0  # every choice of the logging ranking is in the logs
    far = _logged(lists, mu, clicks, np.argsort(-a)[:L])
    got = estimate(far, "snips", positions=L, boots=50)
    assert got.ess < estimate(same, "snips", positions=L, boots=50).ess / 5  # rests on few lists
    never = Logged(np.zeros((3, L)), np.ones((3, L)), np.zeros((3, L)))
    assert support(never) == 0.0 and estimate(never, "ips", positions=L, boots=10).ess == 0.0
    with pytest.raises(ValueError):
        estimate(same, "magic", positions=L)


@pytest.mark.parametrize(
    ("share", "start", "pool_size", "odd_fit"),
    [
        (0.3, 1, 12, False),
        (0.2, 4, 12, False),
        (0.5, 2, 12, False),
        (0.5, 1, 3, False),
        (0.4, 1, 12, True),
    ],
)
def test_logged_propensities_are_the_item_position_marginals_of_exploration(
    share: float, start: int, pool_size: int, odd_fit: bool
) -> None:
    """What `explore` logs for each item is the frequency with which it lands at that
    position over many draws (what the item-position estimators divide by): with a pool that
    runs out (3 items), and with a cap that refuses half the pool."""
    import random
    from collections import Counter

    from serving.policy.exploration import explore

    exploit, limit, draws = list(range(8)), 8, 40_000
    pool = list(range(100, 100 + pool_size))

    def fits(x: int, others: Any) -> bool:
        return x % 2 == 0  # a cap that refuses every odd item

    seen: Counter[tuple[int, int]] = Counter()
    logged: dict[tuple[int, int], float] = {}
    for seed in range(draws):
        out = explore(
            exploit,
            pool,
            limit=limit,
            share=share,
            start=start,
            rng=random.Random(seed),
            fits=fits if odd_fit else None,
        )
        for pos, (item, _, prop) in enumerate(out, 1):
            seen[(item, pos)] += 1
            assert logged.setdefault((item, pos), prop) == pytest.approx(prop)
    for key, n in seen.items():
        freq, prop = n / draws, logged[key]
        assert abs(freq - prop) < 4 * (prop * (1 - prop) / draws) ** 0.5 + 1e-4, (key, freq, prop)


def test_snips_counts_each_position_for_the_lists_that_had_it() -> None:
    """Lists of 5 and of 20 items, the candidate is the logging policy itself: SNIPS must
    agree with the plain average (it summed per-position rates as if every list had 20)."""
    rng = np.random.default_rng(3)
    n, k = 400, 20
    length = np.where(np.arange(n) % 2 == 0, 5, 20)
    shown = np.arange(k)[None, :] < length[:, None]
    mu = shown.astype(float)
    clicks = ((rng.random((n, k)) < 0.2) & shown).astype(float)
    lg = Logged(mu, mu.copy(), clicks)
    ips = estimate(lg, "ips", positions=k, boots=50)
    snips = estimate(lg, "snips", positions=k, boots=50)
    assert snips.ctr == pytest.approx(ips.ctr, rel=1e-9)


def test_a_users_lists_are_resampled_together() -> None:
    """Users who click on everything or on nothing, three lists each: drawn by user, the
    interval is as wide as 40 users make it; drawn by list (as if 120 independent lists) it
    is about sqrt(3) narrower, and would cover a population's CTR too rarely."""
    users, per, k = 40, 3, 5
    likes = np.repeat(np.arange(users) % 2, per).astype(float)  # half click on all, half none
    clicks = np.broadcast_to(likes[:, None], (users * per, k)).copy()
    ones = np.ones_like(clicks)
    groups = np.repeat(np.arange(users), per).astype(np.intp)
    by_user = estimate(Logged(ones, ones, clicks, groups=groups), "ips", positions=k, boots=400)
    by_list = estimate(Logged(ones, ones, clicks), "ips", positions=k, boots=400)
    assert by_user.ctr == by_list.ctr == pytest.approx(0.5)
    wide, narrow = by_user.high - by_user.low, by_list.high - by_list.low
    assert 1.4 < wide / narrow < 2.2, (wide, narrow)
