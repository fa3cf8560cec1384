"""Feature drift of the live ranker: the population stability index (PSI) of every feature,
the rows this process scored against the rows the ranker was trained on.

Training stores, with the ranker, each feature's decile edges over its training rows and the
share of rows per bin (`reference`). Serving counts the rows it scores into the same bins
(`DriftMonitor.observe`, a `searchsorted` per column: microseconds per request), halving the
counts whenever they pass `DECAY_ROWS` so the figure follows recent traffic. PSI =
sum((served - trained) * ln(served / trained)) over bins; the usual reading: < 0.1 stable,
0.1-0.25 a shift worth a look, > 0.25 the ranker scores a population it was not trained on
(retrain). `/metrics` exports it per feature (`vantage_ranker_feature_psi`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

BINS = 10
DECAY_ROWS = 50_000  # counts are halved past this many rows: recent traffic weighs most
FLOOR = 1e-4  # share given to an empty bin (PSI is infinite otherwise)
MIN_ROWS = 200  # fewer scored rows than this: no figure yet


def reference(x: npt.NDArray[Any], names: Sequence[str], bins: int = BINS) -> dict[str, Any]:
    """Per feature: inner decile edges of the training rows `x` and the share of rows per bin."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float64))
    out: dict[str, Any] = {}
    for j, name in enumerate(names):
        col = x[:, j]
        qs = np.linspace(0, 1, bins + 1)[1:-1]
        edges: npt.NDArray[np.float64] = np.unique(np.quantile(col, qs)) if len(col) else qs[:0]
        counts = np.bincount(np.searchsorted(edges, col, side="right"), minlength=len(edges) + 1)
        out[name] = {
            "edges": [float(e) for e in edges],
            "share": [round(float(c) / max(len(col), 1), 6) for c in counts],
        }
    return out


def psi(expected: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    """Population stability index of bin shares `actual` against `expected`."""
    p = np.maximum(np.asarray(actual, dtype=np.float64), FLOOR)
    q = np.maximum(np.asarray(expected, dtype=np.float64), FLOOR)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((p - q) * np.log(p / q)))


class DriftMonitor:
    """Bin counts of the rows this process scored, for the ranker version that scored them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: str | None = None
        self._ref: Mapping[str, Any] = {}
        self._edges: list[npt.NDArray[np.float64]] = []
        self._counts: list[npt.NDArray[np.float64]] = []
        self._names: tuple[str, ...] = ()
        self.rows = 0.0

    def observe(
        self, version: str, ref: Mapping[str, Any] | None, names: Sequence[str], x: npt.NDArray[Any]
    ) -> None:
        """Count the feature rows `x` (columns `names`) a ranker `version` just scored."""
        if not ref or len(x) == 0:
            return
        cols = np.nan_to_num(np.asarray(x, dtype=np.float64))
        with self._lock:
            if version != self._version:
                self._start(version, ref, names)
            for j, edges in enumerate(self._edges):
                if len(self._counts[j]):  # features without a reference are skipped
                    idx = np.searchsorted(edges, cols[:, j], side="right")
                    self._counts[j] += np.bincount(idx, minlength=len(self._counts[j]))
            self.rows += len(x)
            if self.rows > DECAY_ROWS:
                self._counts = [c / 2 for c in self._counts]
                self.rows /= 2

    def _start(self, version: str, ref: Mapping[str, Any], names: Sequence[str]) -> None:
        self._version, self._ref, self._names = version, ref, tuple(names)
        self._edges = [np.asarray(ref.get(n, {}).get("edges", []), np.float64) for n in names]
        self._counts = [np.zeros(len(ref.get(n, {}).get("share", []))) for n in names]
        self.rows = 0.0

    def snapshot(self) -> tuple[str | None, float, dict[str, float]]:
        """The ranker version, rows counted, and PSI per feature (empty below MIN_ROWS)."""
        with self._lock:
            if self.rows < MIN_ROWS:
                return self._version, self.rows, {}
            out = {}
            for name, counts in zip(self._names, self._counts, strict=True):
                share = self._ref.get(name, {}).get("share")
                if share and len(share) == len(counts):
                    out[name] = round(psi(share, counts / counts.sum()), 4)
            return self._version, self.rows, out


def drift_level(value: float) -> str:
    """The usual reading of a PSI: stable, a shift worth a look, or drift (retrain)."""
    return "stable" if value < 0.1 else "shift" if value <= 0.25 else "drift"


MONITOR = DriftMonitor()  # the process's monitor: serving.ranking feeds it, /metrics reads it

__all__ = ["MONITOR", "DriftMonitor", "drift_level", "psi", "reference"]
