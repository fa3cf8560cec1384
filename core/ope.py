"""Off-policy evaluation of ranked lists from logged per-position propensities.

The logs hold, for every served list, each shown item's position `k`, the propensity
`mu(i, k)` with which the logging policy showed item `i` at `k`, and whether it was clicked.
A candidate policy would have shown, on the same request, item `i` at position `k` with
probability `pi(i, k)` (1 or 0 for a deterministic candidate). Under a position-based click
model (a click depends on the item and its position only), the item-position estimators are
unbiased for the candidate's clicks per list (Li et al., "Offline evaluation of ranking
policies with click models", KDD 2018):

- IPS:  mean over lists of sum_k w_lk c_lk, with w_lk = pi(a_lk, k) / mu(a_lk, k);
- SNIPS: per position, sum_l w_lk c_lk / sum_l w_lk, summed over positions (biased but far
  less variable when weights are large);
- DR: the reward model's value of the candidate's list plus the weighted residuals of the
  logged clicks: sum_k [sum_i pi(i, k) r(i, k)] + w_lk (c_lk - r(a_lk, k)).

CTR is clicks per list / list length. Intervals: percentile bootstrap over users (each
user's lists drawn together; over lists when the users are not given). The effective
sample size (sum w)^2 / sum w^2 says how many logged item-positions the estimate really rests
on; below `min_ess`, or when the logs show few of the candidate's choices at all, the answer is
a refusal, not a number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F = npt.NDArray[np.float64]
ESTIMATORS = ("ips", "snips", "dr")


@dataclass(frozen=True)
class Logged:
    """Logged lists as (n_lists, n_positions) arrays; positions a list did not fill hold
    `mu` 0 and weight 0."""

    mu: F  # logging propensity of the item shown at each position
    pi: F  # candidate's probability of showing that same item at that position
    clicks: F  # 1 clicked, 0 not
    # Reward model: its value at each logged item-position, and its value of the candidate's
    # own list per list (sum over positions); zeros without a model (DR is then IPS).
    r_logged: F | None = None
    r_candidate: F | None = None
    # Who each list was served to (any int per user): a user's lists are resampled together.
    groups: npt.NDArray[np.intp] | None = None

    @property
    def weights(self) -> F:
        w: F = np.divide(self.pi, self.mu, out=np.zeros_like(self.pi), where=self.mu > 0)
        return w


@dataclass(frozen=True)
class Estimate:
    estimator: str
    ctr: float
    low: float
    high: float
    ess: float
    lists: int


def _value(est: str, lg: Logged, idx: npt.NDArray[np.intp]) -> float:
    """Clicks per list of the candidate, from the lists `idx`."""
    w, c = lg.weights[idx], lg.clicks[idx]
    if est == "ips":
        return float((w * c).sum(axis=1).mean())
    if est == "snips":
        den = w.sum(axis=0)
        per_pos = np.divide((w * c).sum(axis=0), den, out=np.zeros(w.shape[1]), where=den > 0)
        # Lists of different lengths: each position counts for the share of lists that had it.
        had = (lg.mu[idx] > 0).mean(axis=0)
        return float((per_pos * had).sum())
    r_log = lg.r_logged[idx] if lg.r_logged is not None else np.zeros_like(c)
    r_cand = lg.r_candidate[idx] if lg.r_candidate is not None else np.zeros(len(idx))
    return float((r_cand + (w * (c - r_log)).sum(axis=1)).mean())


def estimate(
    lg: Logged,
    estimator: str,
    *,
    positions: int,
    alpha: float = 0.05,
    boots: int = 500,
    seed: int = 0,
) -> Estimate:
    """The candidate's CTR (clicks per list / `positions`) with a bootstrap interval."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}")
    n = lg.mu.shape[0]
    every = np.arange(n)
    point = _value(estimator, lg, every) / positions
    rng = np.random.default_rng(seed)
    samples = _resamples(lg.groups, n, boots, rng)
    draws = np.asarray([_value(estimator, lg, idx) for idx in samples], dtype=np.float64)
    low, high = np.quantile(draws / positions, [alpha / 2, 1 - alpha / 2])
    w = lg.weights
    ess = float(w.sum() ** 2 / (w * w).sum()) if (w * w).sum() > 0 else 0.0
    return Estimate(estimator, point, float(low), float(high), ess, n)


def _resamples(
    groups: npt.NDArray[np.intp] | None, n: int, boots: int, rng: np.random.Generator
) -> list[npt.NDArray[np.intp]]:
    """Bootstrap samples of list indexes: lists drawn with replacement, or, with `groups`,
    whole groups (users) drawn with replacement: one user's lists share the user's tastes,
    so they vary together and a list-level bootstrap would make the interval too narrow."""
    if groups is None:
        return [np.asarray(rng.integers(0, n, size=n), dtype=np.intp) for _ in range(boots)]
    order = np.argsort(groups, kind="stable")
    _, starts = np.unique(groups[order], return_index=True)
    members = np.split(order, starts[1:])
    out = []
    for _ in range(boots):
        picked = rng.integers(0, len(members), size=len(members))
        out.append(np.concatenate([members[g] for g in picked]).astype(np.intp))
    return out


def support(lg: Logged) -> float:
    """Share of the candidate's item-positions (by probability) the logs showed at all."""
    shown = lg.pi[lg.mu > 0].sum()
    return float(shown / lg.pi.sum()) if lg.pi.sum() > 0 else 0.0


def position_model(items: npt.NDArray[np.intp], clicks: F, n_items: int) -> Callable[..., F]:
    """A position-based reward model fitted on the logs: r(i, k) = attractiveness(i) x
    bias(k), both as smoothed click rates (the DR estimator's model). `items`: (n, K) item
    index per logged position, -1 where none."""
    mask = items >= 0
    pos_ctr = clicks.sum(axis=0) / np.maximum(mask.sum(axis=0), 1)
    bias = pos_ctr / max(pos_ctr[0], 1e-9)
    seen = np.bincount(
        items[mask], weights=np.broadcast_to(bias, items.shape)[mask], minlength=n_items
    )
    hits = np.bincount(items[mask], weights=clicks[mask], minlength=n_items)
    prior = hits.sum() / max(seen.sum(), 1e-9)
    attract = (hits + prior) / (seen + 1.0)

    def r(i: npt.NDArray[np.intp], k: npt.NDArray[np.intp]) -> F:
        out: F = np.where(i >= 0, attract[np.maximum(i, 0)] * bias[k], 0.0)
        return out

    return r


__all__ = ["ESTIMATORS", "Estimate", "Logged", "estimate", "position_model", "support"]
