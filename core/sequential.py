"""Always-valid inference on a difference of two click-through rates (sequential A/B tests).

A fixed-horizon test is valid once, at its planned sample size; looking at it every day and
stopping at the first "significant" answer inflates its false positives several-fold. The
mixture sequential probability ratio test (mSPRT; Johari, Pekelis & Walsh, "Always valid
inference", 2017/2022, the test behind Optimizely's stats engine) gives a confidence interval
that holds at every look at once: with probability >= 1 - alpha the true difference is inside
every interval ever shown, however often and whenever one looks, so a decision may be taken at
any time.

With the normal approximation of the difference d^ = ctr_b - ctr_a (variance
V = p_a(1 - p_a)/n_a + p_b(1 - p_b)/n_b) and a normal mixture of alternatives with standard
deviation `tau` (the size of effect the test is tuned to find fastest), the likelihood ratio
against d = d0 is

    L(d0) = sqrt(V / (V + tau^2)) * exp(tau^2 (d^ - d0)^2 / (2 V (V + tau^2)))

and {d0 : L(d0) < 1/alpha} is the always-valid interval, d^ +/- half_width with

    half_width = sqrt(2 V (V + tau^2) / tau^2 * (log(1/alpha) + log((V + tau^2) / V) / 2)).

The p-value is min(1, 1/L(0)). Counts are impressions and clicks: items of one list (and lists
of one user) are not independent, so the variance is somewhat understated; `min_impressions`
guards the normal approximation at small counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Arm:
    """Impressions and clicks of one experiment arm."""

    impressions: int
    clicks: int

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0


@dataclass(frozen=True)
class Interval:
    """The always-valid interval on ctr_b - ctr_a, and the always-valid p-value of d = 0."""

    diff: float
    low: float
    high: float
    p_value: float


def _variance(a: Arm, b: Arm) -> float:
    # A rate of exactly 0 or 1 has no variance in the plug-in estimate: floor it at half a
    # click so an arm with no clicks yet still gets an honest (wide) interval.
    def var(arm: Arm) -> float:
        p = min(max(arm.ctr, 0.5 / arm.impressions), 1 - 0.5 / arm.impressions)
        return p * (1 - p) / arm.impressions

    return var(a) + var(b)


def interval(a: Arm, b: Arm, *, alpha: float = 0.05, tau: float = 0.01) -> Interval:
    """Always-valid (1 - alpha) interval on b's CTR minus a's (mSPRT, normal mixture `tau`)."""
    if not (0 < alpha < 1) or tau <= 0:
        raise ValueError("alpha must be in (0, 1) and tau > 0")
    if a.impressions <= 0 or b.impressions <= 0:
        return Interval(b.ctr - a.ctr, -1.0, 1.0, 1.0)
    v, t2 = _variance(a, b), tau * tau
    diff = b.ctr - a.ctr
    half = math.sqrt(2 * v * (v + t2) / t2 * (math.log(1 / alpha) + math.log((v + t2) / v) / 2))
    log_lr = 0.5 * math.log(v / (v + t2)) + t2 * diff * diff / (2 * v * (v + t2))
    p_value = 1.0 if log_lr <= 0 else min(1.0, math.exp(-log_lr))
    return Interval(diff, max(diff - half, -1.0), min(diff + half, 1.0), p_value)


__all__ = ["Arm", "Interval", "interval"]
