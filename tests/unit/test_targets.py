"""The quality target's verdict per data set and protocol (training.targets)."""

from __future__ import annotations

from typing import Any

from training.targets import verdict, verdict_table


def _m(ndcg: float, cov: float = 0.1, div: float = 0.5, content: float = 0.5) -> dict[str, float]:
    return {
        "ndcg@10": ndcg,
        "ndcg@10_se": 0.004,
        "coverage@10": cov,
        "diversity@10": div,
        "content_diversity@10": content,
    }


def _result(served: dict[str, float], **baselines: dict[str, float]) -> dict[str, Any]:
    return {"dataset": "d", "protocol": "ms", "models": {"vantage": served, **baselines}}


def test_verdict_compares_with_the_best_baseline() -> None:
    res = _result(_m(0.20), MostPop=_m(0.10), iALS=_m(0.19))
    v = verdict(res)
    assert v["best"] == "iALS" and v["target"] == "at or above"
    assert v["change"] == 0.0526 and v["gap_se"] == 1.77  # 0.01 over hypot(0.004, 0.004)


def test_within_two_percent_needs_more_coverage_and_both_diversities() -> None:
    wider = _result(_m(0.197, cov=0.2, div=0.6, content=0.6), EASE=_m(0.20))
    assert verdict(wider)["target"] == "within 2%, wider"
    narrower = _result(_m(0.197, cov=0.2, div=0.4, content=0.6), EASE=_m(0.20))
    assert verdict(narrower)["target"] == "below"
    far = _result(_m(0.19, cov=0.2, div=0.6, content=0.6), EASE=_m(0.20))
    assert verdict(far)["target"] == "below"


def test_verdict_table_has_a_row_per_result() -> None:
    table = verdict_table([_result(_m(0.2), iALS=_m(0.1)), _result(_m(0.1), iALS=_m(0.2))])
    rows = table.strip().splitlines()
    assert len(rows) == 4
    assert rows[2].endswith("| at or above |") and rows[3].endswith("| below |")
