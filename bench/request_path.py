"""The request pipeline alone, in process: cold requests from candidate sets. Prints one JSON
object.

What the API process spends per request once the sets are built and the item cache is warm,
without HTTP, uvicorn or a load generator on the same cores (whose noise hides a gain of a
few percent over HTTP on a shared 2-core machine): ml-latest-small is imported, the
interaction model and the re-ranker trained, every user's homepage set and 610 related sets
built, then `--requests` homepage and related requests run through `serving.recommend` with
the result cache off. Redis commands and Redis server CPU per request come from the server's
own counters (`INFO commandstats`, `INFO cpu`); no impressions are written here (the API's
logger thread is not started), and the popular snapshot is refreshed in the background as the
API does. CPU: the process's (every thread: the sources run on a pool) and the calling
thread's alone, per request.

    python bench/request_path.py [DATASET_DIR] [--requests N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._stack import DATASETS, fresh_stack
from indexing.connect import build_stores
from indexing.importer import import_dataset
from indexing.refresh import CandidateRefresher
from serving import itemmeta
from serving.recommend import recommend
from serving.request import RecRequest
from serving.state import build_state
from training.interaction import CFParams, logged_interactions, train_cf
from training.ranker import train_ranker


def _calls(r: Any) -> dict[str, int]:
    stats = r.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def _server_cpu_s(r: Any) -> float:
    cpu = r.info("cpu")
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", nargs="?", default=str(DATASETS / "ml-latest-small"))
    ap.add_argument("--requests", type=int, default=1000)
    args = ap.parse_args()
    rng = random.Random(42)
    out: dict[str, Any] = {"bench": "request_path", "dataset": Path(args.dataset).name}
    with fresh_stack() as base:
        settings = base.model_copy(
            update={
                "candidates": base.candidates.model_copy(update={"enabled": True}),
                "serving": base.serving.model_copy(update={"cache_ttl_s": 0}),
            }
        )
        stores = build_stores(settings, log_writer="import")
        import_dataset(stores, args.dataset, progress=False)
        records = logged_interactions(settings.event_log_dir)
        cf = train_cf(stores, records, progress=False)
        train_ranker(settings, stores, records, cf_params=CFParams.from_dict(cf.params))
        users = sorted(m.decode() for m in stores.redis.smembers(stores.keys.users_index))
        items = [i.decode() for i in stores.redis.zrevrange(stores.keys.popularity, 0, 999)]
        reqs = [RecRequest(user_id=u, surface="homepage", limit=20) for u in users]
        reqs += [
            RecRequest(user_id=rng.choice(users), surface="related", item_id=i, limit=20)
            for i in items[: len(users)]
        ]
        rng.shuffle(reqs)
        state = build_state(settings)
        stop = threading.Event()
        itemmeta._warm_once(state, state.items.collection, stop)
        # As the API: the popular source reads an in-process snapshot, refreshed in the back.
        snapshot_s = settings.serving.snapshot_refresh_s
        threading.Thread(
            target=state.snapshot.run, args=(state, stop, snapshot_s), daemon=True
        ).start()
        for r in reqs:  # every set missed once: queued
            recommend(state, r)
        refresher = CandidateRefresher(build_stores(settings), settings)
        while refresher.refresh_once():
            pass
        out["sets_built"] = refresher.refreshed
        for r in reqs[:200]:  # warm-up
            recommend(state, r)
        before, server_cpu = _calls(stores.redis), _server_cpu_s(stores.redis)
        cpu: list[float] = []
        wall: list[float] = []
        process_cpu = time.process_time()
        for k in range(args.requests):
            t, c = time.perf_counter(), time.thread_time()
            recommend(state, reqs[k % len(reqs)])
            cpu.append((time.thread_time() - c) * 1000)
            wall.append((time.perf_counter() - t) * 1000)
        process_cpu = time.process_time() - process_cpu
        after, server_cpu = _calls(stores.redis), _server_cpu_s(stores.redis) - server_cpu
        n = args.requests
        per = {k: round((after.get(k, 0) - before.get(k, 0)) / n, 2) for k in after}
        per.pop("info", None)
        out["requests"] = n
        out["wall_ms"] = {q: round(float(np.percentile(wall, q)), 2) for q in (50, 95, 99)}
        out["wall_ms_mean"] = round(float(np.mean(wall)), 2)
        out["process_cpu_ms_per_request"] = round(process_cpu * 1000 / n, 2)
        out["request_thread_cpu_ms_mean"] = round(float(np.mean(cpu)), 2)
        out["redis_server_cpu_ms_per_request"] = round(server_cpu * 1000 / n, 3)
        out["redis_commands_per_request"] = round(sum(per.values()), 1)
        out["redis_commands"] = dict(
            sorted(((k, v) for k, v in per.items() if v), key=lambda kv: -kv[1])
        )
    print(json.dumps(out))
    os._exit(0)  # the state's background threads


if __name__ == "__main__":
    main()
