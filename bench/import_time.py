"""Time `vantage import` of a data set into a fresh embedded stack. Prints one JSON object.

python bench/import_time.py [DATASET_DIR]   (default: ../shared/datasets/ml-latest-small)
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._stack import DATASETS, fresh_stack
from indexing.connect import build_stores
from indexing.importer import import_dataset


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DATASETS / "ml-latest-small"
    with fresh_stack() as settings:
        t0 = time.perf_counter()
        stores = build_stores(settings)
        load_s = time.perf_counter() - t0
        report = import_dataset(stores, path, progress=sys.stderr.isatty())
        count = stores.items.count()
    print(
        json.dumps(
            {
                "bench": "import",
                "dataset": str(path.name),
                "items": report.items,
                "interactions": report.interactions,
                "skipped": report.skipped,
                "items_in_milvus": count,
                "model_load_s": round(load_s, 2),
                "import_s": report.seconds,
                "items_per_s": round(report.items / report.seconds, 1) if report.seconds else None,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
