"""Latency of one recommendation call over HTTP on the embedded stack. Prints one JSON object.

Imports a data set (default ml-latest-small: 9,742 items, 610 users) into a fresh stack, starts
the API with uvicorn in its own process, and sends sequential requests from this process:
`cold` with the result cache off (every call runs the pipeline), `warm` with it on.

    python bench/latency.py [DATASET_DIR] [--requests N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._stack import DATASETS, admin_headers, fresh_stack, start_api
from indexing.connect import build_stores
from indexing.importer import import_dataset


def _measure(base: str, paths: list[str], headers: dict[str, str]) -> dict[str, float]:
    lat, errors = [], 0
    with httpx.Client(base_url=base, timeout=10, headers=headers) as c:
        for p in paths[:20]:
            c.get(p)  # connection and first-call warm-up
        for p in paths:
            t = time.perf_counter()
            r = c.get(p)
            lat.append((time.perf_counter() - t) * 1000)
            errors += r.status_code != 200
    a = np.array(lat)
    return {
        "requests": len(a),
        "errors": errors,
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p95_ms": round(float(np.percentile(a, 95)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", nargs="?", default=str(DATASETS / "ml-latest-small"))
    ap.add_argument("--requests", type=int, default=500)
    args = ap.parse_args()
    rng = random.Random(42)
    out: dict[str, object] = {"bench": "latency", "dataset": Path(args.dataset).name}
    with fresh_stack() as settings:
        stores = build_stores(settings)
        report = import_dataset(stores, args.dataset, progress=sys.stderr.isatty())
        out["items"] = report.items
        out["import_s"] = report.seconds
        users = sorted(m.decode() for m in stores.redis.smembers(stores.keys.users_index))
        items = stores.redis.zrevrange(stores.keys.popularity, 0, 999)
        del stores
        headers = admin_headers(settings)
        home = [
            f"/v1/recommendations?user_id={rng.choice(users)}&surface=homepage&limit=20"
            for _ in range(args.requests)
        ]
        related = [
            f"/v1/recommendations?user_id={rng.choice(users)}&surface=related"
            f"&item_id={rng.choice(items).decode()}&limit=20"
            for _ in range(args.requests)
        ]
        for label, ttl in (("cold", 0.0), ("warm", 300.0)):
            # The serving TTL caps each surface's own: raise both for the warm run.
            proc, base = start_api(
                settings,
                VANTAGE_SERVING__CACHE_TTL_S=str(ttl),
                VANTAGE_SURFACES__HOMEPAGE__CACHE_TTL_S=str(ttl),
                VANTAGE_SURFACES__RELATED__CACHE_TTL_S=str(ttl),
            )
            try:
                if label == "warm":  # fill the cache, then measure hits
                    _measure(base, home + related, headers)
                out[f"homepage_{label}"] = _measure(base, home, headers)
                out[f"related_{label}"] = _measure(base, related, headers)
            finally:
                proc.terminate()
                proc.wait(10)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
