"""A surface variant against `default`: its guardrails and the decision (continue, ship, stop).

The primary metric is CTR (attributed clicks / items served), compared with the always-valid
interval of `core.sequential`, so the decision may be read at any time. Guardrails, each judged
only once both arms served `min_lists` lists (None = not judged yet):

- latency: the arm's p95 (from the latency buckets of `core.served_list.LATENCY_BUCKETS_MS`,
  so a bucket's upper bound) above default's times `max_latency_ratio` and 10 ms more;
- degraded lists (a dependency failed and a fallback answered: the API's answer to what would
  elsewhere be a 5xx) more than `max_degraded_increase` above default's share;
- coverage: distinct items served under `min_coverage_ratio` of default's. Distinct items grow
  with traffic, so it is judged only while the arms' impressions are within 25% of each other;
- safety filter hits: candidates the sources returned that the safety net (status, maturity,
  region) then dropped, per list computed afresh, over default's times 1.5 plus one. The
  sources filter these themselves, so it is near 0; a variant raising it has a source that
  reaches for items its users may not see (caught before serving, but a misconfiguration).

A ranker canary (`canary_verdict`) is promoted when its CTR is shown no worse than a
non-inferiority margin below the current version's, and rolled back when worse or a guardrail
breaks.

Decision: `stop` when a guardrail breaks or the variant's CTR is shown lower; `ship` when it is
shown higher and no guardrail breaks; else `continue` (too few impressions, or an interval that
still contains 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.sequential import Arm, interval
from core.served_list import LATENCY_BUCKETS_MS
from core.settings import ExperimentSettings

LATENCY_SLACK_MS = 10.0
COMPARABLE_TRAFFIC = 1.25  # coverage is judged while impressions differ by at most this ratio
SAFETY_RATIO = 1.5  # safety filter hits per list: over default's times this, plus one


@dataclass
class ArmStats:
    """What one arm served over the window."""

    variant: str
    impressions: int = 0
    clicks: int = 0
    lists: int = 0
    degraded: int = 0
    latency: dict[str, int] = field(default_factory=dict)  # bucket ("10" ... "inf") -> lists
    distinct_items: int = 0
    fresh: int = 0  # lists computed afresh (not from the cache)
    safety: int = 0  # candidates the safety rule dropped in those lists

    def add(self, kind: str, source: str, n: int) -> None:
        """Count one hourly `surface_stats` field of this arm (`kind|surface|source|variant`)."""
        if kind == "imp" and source == "*":
            self.impressions += n
        elif kind == "click" and source == "*":
            self.clicks += n
        elif kind == "list":
            self.lists += n
        elif kind == "degraded":
            self.degraded += n
        elif kind == "lat":
            self.latency[source] = self.latency.get(source, 0) + n
        elif kind in ("fresh", "safety"):
            setattr(self, kind, getattr(self, kind) + n)

    def absorb(self, other: ArmStats) -> None:
        """Add `other`'s counts (distinct items excepted: a union is not a sum)."""
        for name in ("impressions", "clicks", "lists", "degraded", "fresh", "safety"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for bucket, n in other.latency.items():
            self.latency[bucket] = self.latency.get(bucket, 0) + n

    @property
    def arm(self) -> Arm:
        return Arm(self.impressions, self.clicks)

    @property
    def safety_per_list(self) -> float:
        """Candidates the safety rule dropped per list computed afresh."""
        return self.safety / self.fresh if self.fresh else 0.0

    @property
    def degraded_share(self) -> float:
        return self.degraded / self.lists if self.lists else 0.0

    @property
    def p95_ms(self) -> float | None:
        """Upper bound of the bucket holding the 95th percentile (None: beyond the last one,
        or no list timed)."""
        total = sum(self.latency.values())
        if not total:
            return None
        seen = 0
        for bound in LATENCY_BUCKETS_MS:
            seen += self.latency.get(str(bound), 0)
            if seen >= 0.95 * total:
                return float(bound)
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "ctr": round(self.arm.ctr, 6),
            "lists": self.lists,
            "degraded_share": round(self.degraded_share, 6),
            "p95_ms": self.p95_ms,
            "distinct_items": self.distinct_items,
            "safety_per_list": round(self.safety_per_list, 4),
        }


def _guard(
    name: str, value: float | None, base: float | None, limit: float | None, above: bool = True
) -> dict[str, Any]:
    """A guardrail's figures; it breaks when `value` passes `limit` (above it, or below it
    with `above=False`); not judged (None) without a limit."""
    breached = None
    if value is not None and limit is not None:
        breached = value > limit if above else value < limit
    return {"name": name, "value": value, "default": base, "limit": limit, "breached": breached}


def guardrails(base: ArmStats, arm: ArmStats, cfg: ExperimentSettings) -> list[dict[str, Any]]:
    """Each guardrail: the arm's value, default's, the limit and whether it broke (None: not
    judged yet)."""
    judged = min(base.lists, arm.lists) >= cfg.min_lists
    # Beyond the last bucket reads as twice its bound: slow enough to compare, never missing.
    slowest = 2.0 * LATENCY_BUCKETS_MS[-1]
    p_base = base.p95_ms if base.p95_ms is not None or not base.lists else slowest
    p_arm = arm.p95_ms if arm.p95_ms is not None or not arm.lists else slowest
    lat_limit = None
    if judged and p_base is not None:
        lat_limit = max(p_base * cfg.max_latency_ratio, p_base + LATENCY_SLACK_MS)
    deg_limit = base.degraded_share + cfg.max_degraded_increase if judged else None
    fresh = min(base.fresh, arm.fresh) >= cfg.min_lists
    safety_limit = base.safety_per_list * SAFETY_RATIO + 1.0 if fresh else None
    low, high = sorted((base.impressions, arm.impressions))
    comparable = judged and low > 0 and high / low <= COMPARABLE_TRAFFIC
    cov_limit = cfg.min_coverage_ratio * base.distinct_items if comparable else None
    return [
        _guard("p95_latency_ms", p_arm, p_base, lat_limit),
        _guard("degraded_share", arm.degraded_share, base.degraded_share, deg_limit),
        _guard("coverage", arm.distinct_items, base.distinct_items, cov_limit, above=False),
        _guard("safety_filter_hits", arm.safety_per_list, base.safety_per_list, safety_limit),
    ]


def compare(base: ArmStats, arm: ArmStats, cfg: ExperimentSettings) -> dict[str, Any]:
    """The variant against default: the CTR difference with its always-valid interval, the
    guardrails and the decision with its reason."""
    iv = interval(base.arm, arm.arm, alpha=cfg.alpha, tau=cfg.mixing_sd)
    guards = guardrails(base, arm, cfg)
    broken = [g["name"] for g in guards if g["breached"]]
    fewest = min(base.impressions, arm.impressions)
    shown = f"difference in [{iv.low:.5f}, {iv.high:.5f}]"
    if broken:
        decision, reason = "stop", f"guardrail broken: {', '.join(broken)}"
    elif fewest < cfg.min_impressions:
        decision = "continue"
        reason = f"collecting: {fewest} of {cfg.min_impressions} impressions in the smaller arm"
    elif iv.high < 0:
        decision, reason = "stop", f"CTR lower than default: {shown}"
    elif iv.low > 0:
        decision, reason = "ship", f"CTR higher than default: {shown}"
    else:
        decision = "continue"
        reason = f"no difference shown yet: {shown} contains 0"
    return {
        "variant": arm.variant,
        "ctr_diff": round(iv.diff, 6),
        "ctr_diff_low": round(iv.low, 6),
        "ctr_diff_high": round(iv.high, 6),
        "p_value": round(iv.p_value, 6),
        "decision": decision,
        "reason": reason,
        "guardrails": guards,
    }


def canary_verdict(
    base: ArmStats, arm: ArmStats, cfg: ExperimentSettings, *, margin: float, expired: bool
) -> tuple[str, str, dict[str, Any]]:
    """(promote | rollback | continue, reason, the comparison) of a canary against the
    current version: promoted once its CTR is shown no worse than `margin` below (the
    interval's low end above -margin) with no guardrail broken; rolled back when a guardrail
    breaks or its CTR is shown lower, or when still undecided at `expired`."""
    cmp = compare(base, arm, cfg)
    broken = [g["name"] for g in cmp["guardrails"] if g["breached"]]
    low, high = cmp["ctr_diff_low"], cmp["ctr_diff_high"]
    fewest = min(base.impressions, arm.impressions)
    shown = f"CTR difference in [{low:.5f}, {high:.5f}], margin {margin:g}"
    if broken:
        return "rollback", f"guardrail broken: {', '.join(broken)}", cmp
    if fewest >= cfg.min_impressions and high < 0:
        return "rollback", f"worse than the current version: {shown}", cmp
    if fewest >= cfg.min_impressions and low > -margin:
        return "promote", f"not worse than the current version: {shown}", cmp
    if expired:
        return "rollback", f"undecided when its time ran out: {shown}", cmp
    if fewest < cfg.min_impressions:
        return (
            "continue",
            f"collecting: {fewest} of {cfg.min_impressions} impressions; {shown}",
            cmp,
        )
    return "continue", f"not shown either way yet: {shown}", cmp


__all__ = ["ArmStats", "canary_verdict", "compare", "guardrails"]
