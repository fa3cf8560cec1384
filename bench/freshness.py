"""Freshness: from the 202 of POST /v1/interactions to that user's next recommendation
reflecting it, with other users' events arriving in the background. Prints one JSON object.

The demo data set (600 items, 200 users) is imported and the interaction model trained; the
API (result cache on) and one worker run in their own processes. Each probe reads a user's
homepage (filling the cache), likes the top item, and polls until the list no longer shows it:
the worker has applied the event (history, counters, fold-in, content profile) and the cached
list was invalidated.

By default the background comes from the data set's other users (about 200: each of them
then acts several times a second); `--background-users N` spreads it over N users instead, as
a large audience would (users beyond the data set's are new: they start without history).

    python bench/freshness.py [--probes N] [--background EVENTS_PER_S] [--background-users N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._stack import admin_headers, fresh_stack, start_api, start_worker
from indexing.connect import build_stores
from indexing.demo import write_demo
from indexing.importer import import_dataset
from training.interaction import logged_interactions, train_cf


def _background(
    base: str,
    headers: dict[str, str],
    rate: float,
    users: list[str],
    items: list[str],
    stop: threading.Event,
    sent: list[int],
) -> None:
    """`rate` events/s from other users, in small batches every 50 ms."""
    rng = random.Random(1)
    per_tick = max(1, round(rate * 0.05))
    with httpx.Client(base_url=base, timeout=10, headers=headers) as c:
        nxt = time.monotonic()
        while not stop.is_set():
            body = [
                {"user_id": rng.choice(users), "item_id": rng.choice(items), "type": "view"}
                for _ in range(per_tick)
            ]
            if c.post("/v1/interactions", json=body).status_code == 202:
                sent[0] += per_tick
            nxt += 0.05
            time.sleep(max(0.0, nxt - time.monotonic()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--probes", type=int, default=100)
    ap.add_argument("--background", type=float, default=200.0, help="other events per second")
    ap.add_argument(
        "--background-users", type=int, default=0, help="users the background comes from"
    )
    args = ap.parse_args()
    out: dict[str, object] = {"bench": "freshness", "background_events_per_s": args.background}
    with fresh_stack() as settings:
        stores = build_stores(settings, log_writer="import")
        import_dataset(stores, write_demo(Path(tempfile.mkdtemp()) / "demo"), progress=False)
        train_cf(stores, logged_interactions(settings.event_log_dir), progress=False)
        users = sorted(m.decode() for m in stores.redis.smembers(stores.keys.users_index))
        items = [i.decode() for i in stores.redis.zrevrange(stores.keys.popularity, 0, -1)]
        del stores
        headers = admin_headers(settings)
        worker = start_worker(settings, "fresh-worker")
        api, base = start_api(settings, VANTAGE_SERVING__CACHE_TTL_S="30")
        stop, sent = threading.Event(), [0]
        probe_users = users[: args.probes]
        others = users[args.probes :] or users
        if args.background_users:
            extra = [f"bg-{k}" for k in range(max(args.background_users - len(others), 0))]
            others = (others + extra)[: args.background_users]
        out["background_users"] = len(others)
        lat: list[float] = []
        misses = 0
        try:
            with httpx.Client(base_url=base, timeout=10, headers=headers) as c:
                # The worker is ready once it applies an event.
                c.post(
                    "/v1/interactions",
                    json={"user_id": "warmup", "item_id": items[0], "type": "view"},
                )
                deadline = time.monotonic() + 120
                while not c.get("/v1/users/warmup").json().get("recent"):
                    assert time.monotonic() < deadline, "worker did not start"
                    time.sleep(0.1)
                bg = threading.Thread(
                    target=_background,
                    args=(base, headers, args.background, others, items, stop, sent),
                )
                t_bg = time.monotonic()
                bg.start()
                time.sleep(2.0)  # background load reaches steady state
                for u in probe_users:
                    url = f"/v1/recommendations?user_id={u}&surface=homepage&limit=10"
                    top = c.get(url).json()["items"][0]["item_id"]
                    c.get(url)  # now certainly served from the cache
                    r = c.post(
                        "/v1/interactions", json={"user_id": u, "item_id": top, "type": "like"}
                    )
                    t0 = time.perf_counter()
                    assert r.status_code == 202
                    while True:
                        shown = [i["item_id"] for i in c.get(url).json()["items"]]
                        if top not in shown:
                            lat.append((time.perf_counter() - t0) * 1000)
                            break
                        if time.perf_counter() - t0 > 10:
                            misses += 1
                            break
                        time.sleep(0.005)
                stop.set()
                bg.join()
                elapsed = time.monotonic() - t_bg
        finally:
            stop.set()
            api.terminate()
            worker.terminate()
            api.wait(10)
            worker.wait(20)
    a = np.array(lat)
    out.update(
        probes=len(lat),
        not_reflected_within_10s=misses,
        p50_ms=round(float(np.percentile(a, 50)), 1),
        p95_ms=round(float(np.percentile(a, 95)), 1),
        max_ms=round(float(a.max()), 1),
        background_events_sent=sent[0],
        background_events_per_s_achieved=round(sent[0] / elapsed, 1),
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
