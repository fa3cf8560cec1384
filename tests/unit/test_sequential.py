"""The always-valid interval (core.sequential): it holds at every look, where a fixed-horizon
interval looked at repeatedly does not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.sequential import Arm, interval

LOOKS = 40
PER_LOOK = 500  # impressions per arm between looks


def _runs(p_a: float, p_b: float, runs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative clicks per arm at each look, for `runs` simulated experiments."""
    rng = np.random.default_rng(seed)
    a = rng.binomial(PER_LOOK, p_a, size=(runs, LOOKS)).cumsum(axis=1)
    b = rng.binomial(PER_LOOK, p_b, size=(runs, LOOKS)).cumsum(axis=1)
    return a, b


def _misses(p_a: float, p_b: float, runs: int, seed: int, *, fixed: bool) -> float:
    """Share of runs whose interval excluded the true difference at any of the looks."""
    a, b = _runs(p_a, p_b, runs, seed)
    missed = 0
    for r in range(runs):
        for k in range(LOOKS):
            n = PER_LOOK * (k + 1)
            arm_a, arm_b = Arm(n, int(a[r, k])), Arm(n, int(b[r, k]))
            if fixed:  # the usual 95% interval, read at every look
                d = arm_b.ctr - arm_a.ctr
                se = math.sqrt(arm_a.ctr * (1 - arm_a.ctr) / n + arm_b.ctr * (1 - arm_b.ctr) / n)
                low, high = d - 1.96 * se, d + 1.96 * se
            else:
                iv = interval(arm_a, arm_b)
                low, high = iv.low, iv.high
            if not low <= p_b - p_a <= high:
                missed += 1
                break
    return missed / runs


def test_the_interval_holds_at_every_look_where_the_fixed_one_does_not() -> None:
    always = _misses(0.05, 0.05, runs=300, seed=1, fixed=False)
    peeking = _misses(0.05, 0.05, runs=300, seed=1, fixed=True)
    assert always <= 0.05, always  # alpha, over all 40 looks at once
    assert peeking > 0.15, peeking  # peeking at a fixed-horizon interval: several times alpha
    assert _misses(0.05, 0.06, runs=200, seed=2, fixed=False) <= 0.05


def test_a_real_difference_is_found_and_equal_arms_are_not() -> None:
    better = interval(Arm(40_000, 2_000), Arm(40_000, 2_400))
    assert better.low > 0 and better.p_value < 0.05 and better.diff == pytest.approx(0.01)
    same = interval(Arm(40_000, 2_000), Arm(40_000, 2_010))
    assert same.low < 0 < same.high and same.p_value > 0.05
    worse = interval(Arm(40_000, 2_400), Arm(40_000, 2_000))
    assert worse.high < 0


def test_edges_give_wide_honest_intervals() -> None:
    assert interval(Arm(0, 0), Arm(10, 1)) == interval(Arm(0, 0), Arm(10, 1))
    empty = interval(Arm(0, 0), Arm(10, 1))
    assert (empty.low, empty.high, empty.p_value) == (-1.0, 1.0, 1.0)
    no_clicks = interval(Arm(1000, 0), Arm(1000, 0))
    assert no_clicks.low < 0 < no_clicks.high and no_clicks.p_value == 1.0
    with pytest.raises(ValueError):
        interval(Arm(1, 0), Arm(1, 0), alpha=0)
