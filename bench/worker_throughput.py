"""Events applied per second by one worker, and items embedded + indexed per second.
Prints one JSON object.

`--redis both` measures the same run on a single redis-server and on a Redis Cluster (3
masters + 3 replicas on loopback, `vantage/cluster.py`) and gives their ratio.

`--workers W --partitions P` measures scale-out instead: worker processes (`python -m
indexing`, candidate refresh off) apply the same number of events, first one worker on one
partition, then W workers sharing P partitions, in the same stack; it prints both rates and
their ratio. Each phase times from the first event published to the last one applied.

    python bench/worker_throughput.py [--events N] [--items N] [--redis single|cluster|both]
    python bench/worker_throughput.py --workers 3 --partitions 8 [--redis cluster]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._stack import child_env, fresh_stack
from core import events as ev
from core.connect import connect_redis
from core.domain import Interaction, Item
from core.keys import Keys
from core.settings import Settings
from indexing.connect import build_stores
from indexing.demo import generate_demo
from indexing.partitions import holders, live_workers
from indexing.worker import Worker


def _measure(settings: Settings, items: list[dict[str, Any]], n_events: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    stores = build_stores(settings)
    worker = Worker(stores, consumer="bench", read_count=settings.worker.read_count)
    worker.ensure_group()
    ev.publish(stores.redis, stores.keys, [ev.item_event(Item.model_validate(i)) for i in items])
    t = time.perf_counter()
    worker.drain(timeout_s=600)
    out["items"] = len(items)
    out["items_per_s"] = round(len(items) / (time.perf_counter() - t), 1)
    events = _events(items, n_events, seed=0)
    for i in range(0, len(events), 1000):
        ev.publish(stores.redis, stores.keys, events[i : i + 1000])
    t = time.perf_counter()
    applied = worker.drain(timeout_s=600)
    out["events"] = applied
    out["events_per_s"] = round(applied / (time.perf_counter() - t), 1)
    out["read_count"] = settings.worker.read_count
    stores.redis.close()
    return out


def _events(items: list[dict[str, Any]], n: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    kinds: list[Any] = ["view", "click", "watch", "like", "skip"]
    return [
        ev.interaction_event(
            Interaction(
                user_id=f"u{rng.integers(2000)}",
                item_id=items[rng.integers(len(items))]["item_id"],
                type=kinds[rng.integers(len(kinds))],
            )
        )
        for _ in range(n)
    ]


def _applied(r: Any, keys: Keys) -> int:
    return int(r.hget(keys.worker_stats, f"applied:{ev.INTERACTION_LOGGED}") or 0)


def _phase(
    settings: Settings, items: list[dict[str, Any]], n: int, w: int, p: int
) -> dict[str, float]:
    """Events/s of `w` worker processes sharing `p` partitions, the workers' CPU seconds per
    1,000 events and how busy the machine's cores were meanwhile."""
    s = settings.model_copy(update={"redis": settings.redis.model_copy(update={"partitions": p})})
    env = child_env(s, VANTAGE_WORKER__JOBS_ENABLED="false", VANTAGE_CANDIDATES__ENABLED="false")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "indexing", "--consumer", f"bench-{p}-{k}"], env=env
        )
        for k in range(w)
    ]
    r, keys = connect_redis(s), Keys.of(s.redis)
    try:
        deadline = time.monotonic() + 300
        fair = -(-p // w)
        while True:  # every worker live, every partition held, each worker at its share
            live, held = live_workers(r, keys), list(holders(r, keys).values())
            shares = [held.count(name) for name in live]
            if len(live) >= w and all(h in live for h in held) and max(shares) <= fair:
                break
            if time.monotonic() > deadline or any(q.poll() is not None for q in procs):
                raise RuntimeError("the workers did not start")
            time.sleep(0.2)
        events, before = _events(items, n, seed=p), _applied(r, keys)
        ps = [psutil.Process(q.pid) for q in procs]
        cpu0 = sum(sum(x.cpu_times()[:2]) for x in ps)
        psutil.cpu_percent()
        t = time.perf_counter()
        for i in range(0, n, 1000):
            ev.publish(r, keys, events[i : i + 1000])
        while _applied(r, keys) - before < n:
            if time.perf_counter() - t > 900:
                raise RuntimeError("the events were not applied within 15 min")
            time.sleep(0.02)
        dt = time.perf_counter() - t
        busy = psutil.cpu_percent() / 100
        cpu = sum(sum(x.cpu_times()[:2]) for x in ps) - cpu0
        return {
            "events_per_s": round(n / dt, 1),
            "worker_cpu_s_per_1k_events": round(cpu / n * 1000, 3),
            "machine_cores_busy": round(busy * (os.cpu_count() or 1), 2),
        }
    finally:
        for q in procs:
            q.terminate()
        for q in procs:
            q.wait(60)
        r.zremrangebyscore(keys.live_workers, "-inf", "+inf")  # the next phase starts alone
        r.close()


def _scale_out(settings: Settings, items: list[dict[str, Any]], args: Any) -> dict[str, Any]:
    stores = build_stores(settings)
    worker = Worker(stores, consumer="bench")
    ev.publish(stores.redis, stores.keys, [ev.item_event(Item.model_validate(i)) for i in items])
    worker.drain(timeout_s=600)  # the catalogue first, in process
    stores.redis.close()
    one = _phase(settings, items, args.events, 1, 1)
    many = _phase(settings, items, args.events, args.workers, args.partitions)
    return {
        "events": args.events,
        "one_worker_one_partition": one,
        f"{args.workers}_workers_{args.partitions}_partitions": many,
        "scale_out_ratio": round(many["events_per_s"] / one["events_per_s"], 3),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--items", type=int, default=600)
    ap.add_argument("--precision", default="auto", choices=["fp32", "bf16", "auto"])
    ap.add_argument("--redis", default="single", choices=["single", "cluster", "both"])
    ap.add_argument("--workers", type=int, default=0, help="scale-out: worker processes")
    ap.add_argument("--partitions", type=int, default=8, help="scale-out: event partitions")
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
    if args.workers:
        for backend in backends:
            with fresh_stack(cluster=backend == "cluster") as settings:
                got = _scale_out(settings, items, args)
            out.update(got if len(backends) == 1 else {backend: got})
        out["redis"] = args.redis
        print(json.dumps(out))
        return
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
