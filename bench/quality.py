"""Quality of the serving pipeline against MostPop, ItemKNN, EASE and iALS, on one split per
protocol, in one run. Prints one JSON object (the results, and the target's verdict per data
set and protocol: `training.targets`); with --markdown also writes the README tables.

    python bench/quality.py [--dataset DIR ...] [--protocol ms|ms-round|temporal ...]
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
from training.harness import evaluate_dataset, markdown_table
from training.targets import verdict, verdict_table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", action="append")
    ap.add_argument("--protocol", action="append", choices=["ms", "ms-round", "temporal"])
    ap.add_argument("--markdown", help="write the markdown table here")
    args = ap.parse_args()
    datasets = args.dataset or [str(DATASETS / "ml-100k")]
    protocols = args.protocol or ["ms", "temporal"]
    results = []
    with fresh_stack() as settings:
        for d in datasets:
            for p in protocols:
                results.append(evaluate_dataset(settings, Path(d), p, progress=sys.stderr.isatty()))
    if args.markdown:
        Path(args.markdown).write_text(markdown_table(results) + "\n" + verdict_table(results))
    verdicts = [verdict(r) for r in results]
    print(json.dumps({"bench": "quality", "results": results, "targets": verdicts}))


if __name__ == "__main__":
    main()
