"""Events applied per second by one worker, and items embedded + indexed per second.
Prints one JSON object.

`--redis both` measures the same run on a single redis-server and on a Redis Cluster (3
masters + 3 replicas on loopback, `vantage/cluster.py`) and gives their ratio.

    python bench/worker_throughput.py [--events N] [--items N] [--redis single|cluster|both]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._stack import fresh_stack
from core import events as ev
from core.domain import Interaction, Item
from core.settings import Settings
from indexing.connect import build_stores
from indexing.demo import generate_demo
from indexing.worker import Worker


def _measure(settings: Settings, items: list[dict[str, Any]], n_events: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    stores = build_stores(settings)
    worker = Worker(stores, consumer="bench", read_count=settings.worker.read_count)
    worker.ensure_group()
    ev.publish(stores.redis, stores.keys, [ev.item_event(Item.model_validate(i)) for i in items])
    t = time.perf_counter()
    worker.drain(timeout_s=600)
    out["items"] = len(items)
    out["items_per_s"] = round(len(items) / (time.perf_counter() - t), 1)
    kinds = ["view", "click", "watch", "like", "skip"]
    events = [
        ev.interaction_event(
            Interaction(
                user_id=f"u{rng.integers(2000)}",
                item_id=items[rng.integers(len(items))]["item_id"],
                type=kinds[rng.integers(len(kinds))],
            )
        )
        for _ in range(n_events)
    ]
    for i in range(0, len(events), 1000):
        ev.publish(stores.redis, stores.keys, events[i : i + 1000])
    t = time.perf_counter()
    applied = worker.drain(timeout_s=600)
    out["events"] = applied
    out["events_per_s"] = round(applied / (time.perf_counter() - t), 1)
    out["read_count"] = settings.worker.read_count
    stores.redis.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--items", type=int, default=600)
    ap.add_argument("--precision", default="auto", choices=["fp32", "bf16", "auto"])
    ap.add_argument("--redis", default="single", choices=["single", "cluster", "both"])
    ap.add_argument(
        "--catalogue",
        default="demo",
        help="demo (titles + ~150-char descriptions) or a data set dir (e.g. ml-latest-small: "
        "short titles + genres)",
    )
    args = ap.parse_args()
    if args.catalogue == "demo":
        items, _, _ = generate_demo(n_items=args.items)
    else:
        from itertools import islice

        from indexing.datasets import load_dataset

        items = list(islice(load_dataset(args.catalogue).iter_items(), args.items))
    out: dict[str, object] = {"bench": "worker_throughput"}
    backends = ["single", "cluster"] if args.redis == "both" else [args.redis]
    for backend in backends:
        with fresh_stack(cluster=backend == "cluster") as base:
            settings = base.model_copy(
                update={"models": base.models.model_copy(update={"precision": args.precision})}
            )
            got = _measure(settings, items, args.events)
        out.update(got if len(backends) == 1 else {backend: got})
    if len(backends) == 2:
        single, cluster = out["single"], out["cluster"]
        out["cluster_vs_single_events"] = round(
            cluster["events_per_s"] / single["events_per_s"],  # type: ignore[index]
            3,
        )
    out["precision"] = args.precision
    out["catalogue"] = Path(args.catalogue).name
    out["mean_text_chars"] = round(
        sum(len(i["title"]) + len(i.get("description") or "") for i in items) / len(items)
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
