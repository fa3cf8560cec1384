"""Guardrails and decisions of a variant against default (core.experiments)."""

from __future__ import annotations

from core.experiments import ArmStats, compare
from core.settings import ExperimentSettings

CFG = ExperimentSettings()


def _arm(variant: str, imps: int, clicks: int, **kw: object) -> ArmStats:
    lists = int(kw.pop("lists", imps // 10))
    latency = kw.pop("latency", {"50": lists})
    return ArmStats(variant, imps, clicks, lists, latency=latency, **kw)  # type: ignore[arg-type]


def _guards(result: dict) -> dict:  # type: ignore[type-arg]
    return {g["name"]: g["breached"] for g in result["guardrails"]}


def test_decisions_follow_the_interval() -> None:
    base = _arm("default", 40_000, 2_000, distinct_items=900)
    assert compare(base, _arm("b", 40_000, 2_400, distinct_items=900), CFG)["decision"] == "ship"
    assert compare(base, _arm("b", 40_000, 1_600, distinct_items=900), CFG)["decision"] == "stop"
    same = compare(base, _arm("b", 40_000, 2_010, distinct_items=900), CFG)
    assert same["decision"] == "continue" and "contains 0" in same["reason"]
    few = compare(_arm("default", 500, 20), _arm("b", 500, 60), CFG)
    assert few["decision"] == "continue" and few["reason"].startswith("collecting: 500 of 1000")
    assert set(_guards(few).values()) == {None}  # 50 lists each: no guardrail judged yet


def test_each_guardrail_stops_a_better_variant() -> None:
    base = _arm("default", 40_000, 2_000, distinct_items=900)
    better = {"imps": 40_000, "clicks": 2_400, "distinct_items": 900}
    slow = compare(base, _arm("b", **better, latency={"50": 3000, "200": 1000}), CFG)  # type: ignore[arg-type]
    assert slow["decision"] == "stop" and _guards(slow)["p95_latency_ms"] is True
    failing = compare(base, _arm("b", **better, degraded=200), CFG)  # type: ignore[arg-type]
    assert failing["decision"] == "stop" and _guards(failing)["degraded_share"] is True
    narrow = compare(base, _arm("b", 40_000, 2_400, distinct_items=500), CFG)
    assert narrow["decision"] == "stop" and _guards(narrow)["coverage"] is True
    # Coverage grows with traffic: a 10% arm is not judged on it.
    small = compare(base, _arm("b", 4_000, 400, distinct_items=300), CFG)
    assert _guards(small)["coverage"] is None
    reckless = _arm("b", **better, fresh=1000, safety=5000)  # type: ignore[arg-type]
    careful = _arm("default", 40_000, 2_000, distinct_items=900, fresh=1000, safety=1000)
    unsafe = compare(careful, reckless, CFG)
    assert unsafe["decision"] == "stop" and _guards(unsafe)["safety_filter_hits"] is True
    beyond = compare(base, _arm("b", **better, latency={"inf": 4000}), CFG)  # type: ignore[arg-type]
    assert _guards(beyond)["p95_latency_ms"] is True  # past the last bucket still counts


def test_p95_reads_the_bucket_bounds() -> None:
    assert _arm("a", 10, 0, latency={"10": 95, "500": 5}).p95_ms == 10.0
    assert _arm("a", 10, 0, latency={"10": 90, "500": 10}).p95_ms == 500.0
    assert _arm("a", 10, 0, latency={"inf": 1}).p95_ms is None
    assert _arm("a", 10, 0, latency={}).p95_ms is None
