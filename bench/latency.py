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
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._stack import DATASETS, fresh_stack
from indexing.connect import build_stores
from indexing.importer import import_dataset
from vantage.config import Settings
from vantage.stack import free_port, port_open


def _api(settings: Settings, cache_ttl: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "VANTAGE_MILVUS__URI": settings.milvus.uri,
        "VANTAGE_MILVUS__ITEMS_ALIAS": settings.milvus.items_alias,
        "VANTAGE_MILVUS__USERS_COLLECTION": settings.milvus.users_collection,
        "VANTAGE_REDIS__URL": settings.redis.url,
        "VANTAGE_REDIS__KEY_PREFIX": settings.redis.key_prefix,
        "VANTAGE_SERVING__CACHE_TTL_S": str(cache_ttl),
        "VANTAGE_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    deadline = time.monotonic() + 60
    while not port_open("127.0.0.1", port):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("API did not start")
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def _measure(base: str, paths: list[str]) -> dict[str, float]:
    lat, errors = [], 0
    with httpx.Client(base_url=base, timeout=10) as c:
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
            proc, base = _api(settings, ttl)
            try:
                if label == "warm":  # fill the cache, then measure hits
                    _measure(base, home + related)
                out[f"homepage_{label}"] = _measure(base, home)
                out[f"related_{label}"] = _measure(base, related)
            finally:
                proc.terminate()
                proc.wait(10)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
