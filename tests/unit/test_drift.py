"""Ranker feature drift (serving.drift): reference bins, PSI, and the serving monitor."""

from __future__ import annotations

import numpy as np
import pytest

from serving.drift import MIN_ROWS, DriftMonitor, psi, reference

NAMES = ("a", "b")


def _rows(n: int, shift: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.normal(shift, 1.0, n), rng.integers(0, 2, n)]).astype(np.float32)


def test_reference_bins_hold_the_training_rows() -> None:
    ref = reference(_rows(5000), NAMES)
    assert len(ref["a"]["edges"]) == 9 and sum(ref["a"]["share"]) == pytest.approx(1.0)
    assert all(s == pytest.approx(0.1, abs=0.01) for s in ref["a"]["share"])
    # A binary feature's deciles collapse onto a few edges: a few bins, not ten.
    assert len(ref["b"]["edges"]) <= 3
    assert len(ref["b"]["share"]) == len(ref["b"]["edges"]) + 1


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == pytest.approx(0.0)
    assert psi([0.5, 0.5], [0.6, 0.4]) < psi([0.5, 0.5], [0.9, 0.1])
    assert np.isfinite(psi([0.5, 0.5], [1.0, 0.0]))  # an empty bin is floored, not infinite


def test_monitor_reports_stable_traffic_low_and_shifted_traffic_high() -> None:
    ref = reference(_rows(5000), NAMES)
    same, shifted = DriftMonitor(), DriftMonitor()
    assert same.snapshot()[2] == {}  # nothing scored yet
    for k in range(20):
        same.observe("v1", ref, NAMES, _rows(100, seed=k + 1))
        shifted.observe("v1", ref, NAMES, _rows(100, shift=1.0, seed=k + 1))
    version, rows, stable = same.snapshot()
    assert version == "v1" and rows == 2000 and set(stable) == set(NAMES)
    assert stable["a"] < 0.05 and stable["b"] < 0.05
    moved = shifted.snapshot()[2]
    assert moved["a"] > 0.25 and moved["b"] < 0.05  # only the shifted feature drifts


def test_monitor_starts_over_for_a_new_ranker_and_ignores_rankers_without_reference() -> None:
    ref = reference(_rows(1000), NAMES)
    mon = DriftMonitor()
    mon.observe("v1", ref, NAMES, _rows(MIN_ROWS))
    assert mon.snapshot()[1] == MIN_ROWS
    mon.observe("v2", ref, NAMES, _rows(10))
    assert mon.snapshot()[:2] == ("v2", 10) and mon.snapshot()[2] == {}  # below MIN_ROWS
    mon.observe("v3", None, NAMES, _rows(500))  # saved before drift existed: not counted
    assert mon.snapshot()[:2] == ("v2", 10)
