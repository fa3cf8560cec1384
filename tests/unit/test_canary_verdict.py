"""A ranker canary's verdict (core.experiments.canary_verdict): promoted when shown no worse
than the margin, rolled back when worse, broken, or out of time."""

from __future__ import annotations

from core.experiments import ArmStats, canary_verdict
from core.settings import ExperimentSettings

CFG = ExperimentSettings()


def _arm(variant: str, imps: int, clicks: int) -> ArmStats:
    return ArmStats(
        variant, imps, clicks, imps // 10, latency={"50": imps // 10}, distinct_items=500
    )


def _verdict(base: ArmStats, arm: ArmStats, *, margin: float = 0.002, expired: bool = False) -> str:
    return canary_verdict(base, arm, CFG, margin=margin, expired=expired)[0]


def test_promoted_when_not_worse_by_the_margin_and_rolled_back_when_worse() -> None:
    base = _arm("default", 200_000, 10_000)
    assert _verdict(base, _arm("canary", 200_000, 11_000)) == "promote"
    assert _verdict(base, _arm("canary", 200_000, 9_000)) == "rollback"
    # Equal CTRs: at 200k impressions a side the interval is still wider than the margin.
    assert _verdict(base, _arm("canary", 200_000, 10_050)) == "continue"
    big = _arm("default", 2_000_000, 100_000)
    assert _verdict(big, _arm("canary", 2_000_000, 100_100)) == "promote"  # within the margin
    assert _verdict(big, _arm("canary", 2_000_000, 100_100), margin=0.0) == "continue"
    timed_out = _verdict(big, _arm("canary", 2_000_000, 100_100), margin=0.0, expired=True)
    assert timed_out == "rollback"
    few = _verdict(_arm("default", 500, 25), _arm("canary", 500, 5))
    assert few == "continue"  # under min_impressions: no call yet


def test_a_broken_guardrail_rolls_back_even_a_better_canary() -> None:
    base = _arm("default", 200_000, 10_000)
    slow = _arm("canary", 200_000, 12_000)
    slow.latency = {"500": slow.lists}
    decision, reason, cmp = canary_verdict(base, slow, CFG, margin=0.002, expired=False)
    assert decision == "rollback" and "p95_latency_ms" in reason
    assert {g["name"]: g["breached"] for g in cmp["guardrails"]}["p95_latency_ms"] is True
