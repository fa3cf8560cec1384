"""Policy settings of the homepage scored on the inner split (train only: the test part is never
read), so defaults are chosen without looking at the test set. One training, many policies.
Prints one JSON object: NDCG@10, coverage@10 and diversity@10 per policy, and each one's NDCG
change against the policy off.

    python bench/policy_grid.py [--dataset DIR] [--protocol temporal]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._stack import DATASETS, fresh_stack
from core.surfaces import PolicySpec
from training.harness import evaluate_dataset

GRID = {
    "mmr0.95": {"mmr_lambda": 0.95},
    "mmr0.9": {"mmr_lambda": 0.9},
    "mmr0.8": {"mmr_lambda": 0.8},
    "cap4": {"category_cap": 4},
    "cap6": {"category_cap": 6},
    "explore0.05": {"exploration_share": 0.05, "exploration_start": 6},
    "explore0.1": {"exploration_share": 0.1, "exploration_start": 6},
    "fresh0.05": {"freshness_weight": 0.05},
    "unproven2": {"new_item_cap": 2},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default=str(DATASETS / "ml-100k"))
    ap.add_argument("--protocol", default="temporal")
    ap.add_argument("--extra", help='JSON {"name": {policy settings}} added to the grid')
    args = ap.parse_args()
    grid = {**GRID, **(json.loads(args.extra) if args.extra else {})}
    policies = {name: PolicySpec(**kw) for name, kw in grid.items()}
    with fresh_stack() as settings:
        res = evaluate_dataset(
            settings,
            Path(args.dataset),
            args.protocol,
            inner=True,
            progress=sys.stderr.isatty(),
            policies=policies,
        )
    off = res["models"]["vantage_policy_off"]
    rows = {"off": off, "default": res["models"]["vantage"], **res["vantage"]["policy_variants"]}
    keys = ("ndcg@10", "coverage@10", "diversity@10")
    out = {
        name: {
            **{k: round(m[k], 4) for k in keys},
            "ndcg_change": round(m["ndcg@10"] / off["ndcg@10"] - 1, 4),
        }
        for name, m in rows.items()
    }
    print(json.dumps({"bench": "policy_grid", "dataset": res["dataset"], "policies": out}))


if __name__ == "__main__":
    main()
