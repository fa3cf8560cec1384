"""Load benchmark of the API on the embedded stack. Prints one JSON object.

ml-latest-small is imported (9,742 items, 610 users) and the interaction model trained; the
API runs under uvicorn in its own process, and this process drives a bounded closed loop
(`--concurrency` requests in flight) of homepage and related requests over loopback:

* `warm`: result cache on, every request shape seen once before (cache hits);
* `cold`: result cache off (every request runs retrieval, ranking and policy);
* `ceiling`: a minimal FastAPI endpoint under the same uvicorn set-up: this machine's limit;
* `naive`: the naive design, one Milvus search per request (user or item vector in, top 20
  out), no cache, no filters, no ranking;
* `cold_sets` (with `--candidates`): result cache off, candidate sets on, in their steady
  state: one pass over every request shape queues the sets, the refresher builds them, and
  the API has read the catalogue into its item cache (no Milvus call per request).
  `cold_sets_1` is the same one request at a time.

    python bench/serve.py [DATASET_DIR] [--seconds S] [--concurrency N] [--candidates]
        [--api-workers N]

`--api-workers N` runs every app (API, ceiling, naive) as N uvicorn worker processes on one
socket, as a host serving with `vantage serve --workers N` would: one per core.
"""

from __future__ import annotations

import argparse
import asyncio
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

from bench._stack import DATASETS, admin_headers, child_env, fresh_stack, start_api
from core.settings import Settings
from indexing.connect import build_stores
from indexing.importer import import_dataset
from indexing.refresh import CandidateRefresher
from training.interaction import CFParams, logged_interactions, train_cf
from training.ranker import train_ranker
from vantage.stack import free_port, port_open


def _start_app(
    settings: Settings, target: str, workers: int
) -> tuple[subprocess.Popen[bytes], str]:
    """A bench-only app (bench/_apps.py) under the same uvicorn set-up as the API."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            f"bench._apps:{target}",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            *(["--workers", str(workers)] if workers > 1 else []),
        ],
        env=child_env(settings),
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    deadline = time.monotonic() + 60
    while not port_open("127.0.0.1", port):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"{target} did not start")
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


async def _load(
    base: str, paths: list[str], seconds: float, concurrency: int, headers: dict[str, str]
) -> dict[str, float]:
    lat: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits, headers=headers) as c:

        async def user(k: int) -> None:
            nonlocal errors
            rng = random.Random(k)
            while time.perf_counter() < stop_at:
                p = rng.choice(paths)
                t = time.perf_counter()
                try:
                    r = await c.get(p)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                lat.append((time.perf_counter() - t) * 1000)
                errors += not ok

        t0 = time.perf_counter()
        await asyncio.gather(*(user(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - t0
    a = np.array(lat)
    return {
        "requests": len(a),
        "errors": errors,
        "rps": round(len(a) / elapsed, 1),
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p95_ms": round(float(np.percentile(a, 95)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
    }


def _run(
    base: str,
    paths: list[str],
    args: argparse.Namespace,
    headers: dict[str, str],
    concurrency: int | None = None,
) -> dict[str, float]:
    c = concurrency or args.concurrency
    asyncio.run(_load(base, paths[:50], 2.0, c, headers))  # warm-up: connections, first calls
    out = asyncio.run(_load(base, paths, args.seconds, c, headers))
    out["concurrency"] = c
    return out


def _with_sets(
    settings: Settings, paths: list[str], args: argparse.Namespace, headers: dict[str, str]
) -> dict[str, object]:
    """Cold requests served from candidate sets, once every set is built."""
    on = {"VANTAGE_CANDIDATES__ENABLED": "true", "VANTAGE_SERVING__CACHE_TTL_S": "0"}
    proc, base = start_api(settings, workers=args.api_workers, **on)
    try:
        t0 = time.perf_counter()
        with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
            for p in paths:  # every set missed once: queued
                c.get(p)
        first_pass_s = time.perf_counter() - t0
        sets_on = settings.model_copy(
            update={"candidates": settings.candidates.model_copy(update={"enabled": True})}
        )
        refresher = CandidateRefresher(build_stores(sets_on), sets_on)
        t0 = time.perf_counter()
        while refresher.refresh_once():
            pass
        refresh_s = time.perf_counter() - t0
        out: dict[str, object] = {
            "sets_built": refresher.refreshed,
            "sets_first_pass_s": round(first_pass_s, 1),
            "sets_refresh_per_s": round(refresher.refreshed / max(refresh_s, 1e-9), 1),
        }
        out["cold_sets"] = _run(base, paths, args, headers, args.cold_concurrency)
        out["cold_sets_1"] = _run(base, paths, args, headers, 1)
        return out
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", nargs="?", default=str(DATASETS / "ml-latest-small"))
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--cold-concurrency", type=int, default=2)
    ap.add_argument("--candidates", action="store_true", help="also measure candidate sets")
    ap.add_argument(
        "--api-workers",
        type=int,
        default=1,
        help="uvicorn worker processes for every app (the API, the ceiling and the naive "
        "design alike), as `vantage serve --workers N`",
    )
    args = ap.parse_args()
    rng = random.Random(42)
    out: dict[str, object] = {
        "bench": "serve",
        "dataset": Path(args.dataset).name,
        "api_workers": args.api_workers,
    }
    with fresh_stack() as settings:
        stores = build_stores(settings, log_writer="import")
        report = import_dataset(stores, args.dataset, progress=sys.stderr.isatty())
        records = logged_interactions(settings.event_log_dir)
        cf = train_cf(stores, records, progress=False)
        # As `vantage train` does: the re-ranker too, so cold requests pay for ranking.
        ranker = train_ranker(settings, stores, records, cf_params=CFParams.from_dict(cf.params))
        out["ranker_published"] = ranker.as_dict().get("published")
        out["items"] = report.items
        users = sorted(m.decode() for m in stores.redis.smembers(stores.keys.users_index))
        out["users"] = len(users)
        items = [i.decode() for i in stores.redis.zrevrange(stores.keys.popularity, 0, 999)]
        del stores
        headers = admin_headers(settings)
        # A bounded set of request shapes (every user's homepage, 610 related lists).
        home = [f"/v1/recommendations?user_id={u}&surface=homepage&limit=20" for u in users]
        related = [
            f"/v1/recommendations?user_id={rng.choice(users)}&surface=related&item_id={i}&limit=20"
            for i in items[: len(users)]
        ]
        mixed = home + related
        rng.shuffle(mixed)

        proc, base = _start_app(settings, "ceiling_app", args.api_workers)
        try:
            out["ceiling"] = _run(base, ["/ping"], args, {})
        finally:
            proc.terminate()
            proc.wait(10)
        naive_paths = [p.replace("/v1/recommendations", "/naive") for p in mixed]
        proc, base = _start_app(settings, "naive_app", args.api_workers)
        try:
            out["naive"] = _run(base, naive_paths, args, {}, args.cold_concurrency)
        finally:
            proc.terminate()
            proc.wait(10)
        for label, ttl in (("cold", "0"), ("warm", "600")):
            # The serving TTL caps each surface's own: raise both for the warm run.
            proc, base = start_api(
                settings,
                workers=args.api_workers,
                VANTAGE_CANDIDATES__ENABLED="false",  # live retrieval; sets: `cold_sets`
                VANTAGE_SERVING__CACHE_TTL_S=ttl,
                VANTAGE_SURFACES__HOMEPAGE__CACHE_TTL_S=ttl,
                VANTAGE_SURFACES__RELATED__CACHE_TTL_S=ttl,
            )
            try:
                if label == "warm":  # every request shape once: the loop then hits the cache
                    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
                        for p in mixed:
                            c.get(p)
                conc = args.cold_concurrency if label == "cold" else None
                out[label] = _run(base, mixed, args, headers, conc)
            finally:
                proc.terminate()
                proc.wait(10)
        if args.candidates:
            out.update(_with_sets(settings, mixed, args, headers))
    cei, nai = out["ceiling"], out["naive"]
    warm, cold = out["warm"], out["cold"]
    out["ratios"] = ratios = {
        "warm_rps_vs_ceiling": round(warm["rps"] / cei["rps"], 3),  # type: ignore[index]
        "cold_rps_vs_naive": round(cold["rps"] / nai["rps"], 3),  # type: ignore[index]
        "warm_rps_vs_naive": round(warm["rps"] / nai["rps"], 3),  # type: ignore[index]
        "cold_p95_vs_naive_p95": round(cold["p95_ms"] / nai["p95_ms"], 3),  # type: ignore[index]
    }
    out["targets"] = targets = {
        "zero_errors": all(out[k]["errors"] == 0 for k in ("warm", "cold")),  # type: ignore[index]
        "warm_ge_half_ceiling_p99_le_25ms": warm["rps"] >= 0.5 * cei["rps"]  # type: ignore[index]
        and warm["p99_ms"] <= 25,  # type: ignore[index]
    }
    if "cold_sets" in out:
        sets, one = out["cold_sets"], out["cold_sets_1"]
        ratios["cold_sets_rps_vs_naive"] = round(sets["rps"] / nai["rps"], 3)  # type: ignore[index]
        ratios["cold_sets_rps_vs_cold"] = round(sets["rps"] / cold["rps"], 3)  # type: ignore[index]
        targets.update(
            cold_ge_3x_naive=sets["rps"] >= 3 * nai["rps"],  # type: ignore[index]
            cold_p95_le_50ms_one_at_a_time=one["p95_ms"] <= 50,  # type: ignore[index]
            cold_p95_le_100ms_at_2=sets["p95_ms"] <= 100,  # type: ignore[index]
            zero_errors_sets=sets["errors"] == 0 and one["errors"] == 0,  # type: ignore[index]
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
