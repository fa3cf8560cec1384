"""The quality target, row by row: the served pipeline against the best baseline of the run.

Target (per data set and protocol): NDCG@10 at or above the best baseline of the same run and
split, or within 2% of it with coverage@10 and both diversities higher. The gap is also given
in standard errors (`gap_se`: the difference over the combined standard error of the two
means, users taken as independent), because on sparse catalogues one held-out item per user
makes the error of either mean larger than most gaps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

BASELINES = ("MostPop", "ItemKNN", "EASE", "iALS")
SERVED = "vantage"
TOLERANCE = 0.02
METRIC = "ndcg@10"
SPREAD = ("coverage@10", "diversity@10", "content_diversity@10")


def verdict(result: Mapping[str, Any]) -> dict[str, Any]:
    """The target's verdict for one `training.harness.evaluate_dataset` result."""
    models = result["models"]
    served = models[SERVED]
    name = max((b for b in BASELINES if b in models), key=lambda b: models[b][METRIC])
    best = models[name]
    change = served[METRIC] / best[METRIC] - 1 if best[METRIC] else 0.0
    se = math.hypot(served.get(f"{METRIC}_se", 0.0), best.get(f"{METRIC}_se", 0.0))
    wider = all(served.get(k, 0.0) > best.get(k, 0.0) for k in SPREAD)
    if change >= 0:
        met = "at or above"
    elif change >= -TOLERANCE and wider:
        met = "within 2%, wider"
    else:
        met = "below"
    return {
        "dataset": result["dataset"],
        "protocol": result["protocol"],
        "served": round(served[METRIC], 4),
        "best": name,
        "best_value": round(best[METRIC], 4),
        "change": round(change, 4),
        "gap_se": round((served[METRIC] - best[METRIC]) / se, 2) if se else None,
        "spread": {k: (round(served.get(k, 0.0), 3), round(best.get(k, 0.0), 3)) for k in SPREAD},
        "target": met,
    }


def verdict_table(results: Sequence[Mapping[str, Any]]) -> str:
    """One markdown row per (data set, protocol): the numbers behind each verdict."""
    head = (
        "| data set | protocol | vantage | best baseline | vs best | gap / SE | "
        + " | ".join(f"{k} (vantage / best)" for k in SPREAD)
        + " | target |"
    )
    lines = [head, "|" + "---|" * (7 + len(SPREAD))]
    for res in results:
        v = verdict(res)
        spread = " | ".join(f"{a:.3f} / {b:.3f}" for a, b in v["spread"].values())
        lines.append(
            f"| {v['dataset']} | {v['protocol']} | {v['served']:.4f} | {v['best']} "
            f"{v['best_value']:.4f} | {v['change']:+.1%} | {v['gap_se']} | {spread} | "
            f"{v['target']} |"
        )
    return "\n".join(lines) + "\n"
