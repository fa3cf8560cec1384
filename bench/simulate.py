"""Simulated users with known click probabilities driving the real API (bench/_sim.py).

    python bench/simulate.py ope [--runs 50 --users 100 --repeats 4 --share 0.3 --start 1]
    python bench/simulate.py canary [--users 120 --rounds 30]

`ope`: the coverage of the off-policy estimators. Each run signs up a new cohort of `--users`
users (the same taste distribution, nothing clicked yet: runs are alike repetitions), measures
every candidate's true CTR on their state, logs `repeats` lists per user from the homepage
(the logging policy: exploration `share` from position `start` over a pool of `pool`),
reports the drawn clicks, and asks `POST /v1/admin/ope` for each candidate's estimate from
exactly those lists.
Per candidate and estimator: mean truth, mean estimate, mean interval width and in how many of
the runs the 95% interval covered the truth (refusals counted apart). A shadow estimate's truth
is the exact expected CTR of the candidate's shadow lists of the run (what it estimates); a
replay's, the CTR of the lists the candidate's own surface served the users just before the
logging (`truth`, also reported against the shadow estimates).

`canary`: three real XGBoost rankers over the serving features: `sim-popular` (current: ranks
by popularity), `sim-worse` (prefers what the user's profile is least like) and `sim-better`
(prefers what it is most like). `sim-worse` then `sim-better` are started as canaries on half
of the users; the simulated users browse and click round after round until the API's own
judge (the background loop) decides. Expected: worse rolled back, better promoted.

Runs in-process (the FastAPI app under TestClient, a worker drained between rounds) on a
throw-away redis-server and Milvus Lite with the real text model. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _sim
from bench._stack import fresh_stack
from core.settings import Settings

CANDIDATES: dict[str, dict[str, Any]] = {
    "exploit": {},  # the logging configuration without its exploration
    "diverse": {"policy": {"mmr_lambda": 0.5}},
    "capped": {"policy": {"category_cap": 2}},
    "popular": {
        "sources": [
            {"name": "popular", "quota": 60, "weight": 1.0},
            {"name": "preferences", "quota": 100, "weight": 0.3},
        ]
    },
}


@contextlib.contextmanager
def in_process(
    settings: Settings,
) -> Iterator[tuple[Any, Callable[[], Any], Callable[[], Any], Any]]:
    """(client with an admin key, drain the worker, flush the impression log, app state)."""
    from fastapi.testclient import TestClient

    from app.auth import KeyStore
    from app.main import create_app
    from core.keys import Keys
    from embeddings.text import SentenceTransformerEmbedder
    from indexing.connect import build_stores
    from indexing.worker import Worker

    stores = build_stores(settings, embedder=SentenceTransformerEmbedder())
    worker = Worker(stores, consumer="sim", block_ms=50)
    token, _ = KeyStore(stores.redis, Keys.of(settings.redis)).create(
        "simulator", ["admin"], rate=100_000, burst=100_000
    )
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings), headers=headers) as client:
        state = client.app.state.vantage  # type: ignore[attr-defined]
        from serving import shadow

        shadow.RUNNER.max_pending = 1_000_000  # the simulator waits for every shadow list

        def flush() -> None:
            state.impressions.flush()
            shadow.RUNNER.wait()

        yield _sim.Patient(client), worker.drain, flush, state


def shadow_reader(state: Any) -> Callable[[str, str], list[str] | None]:
    """Reads a candidate's shadow list stored beside a served list (serving/shadow.py)."""
    from serving.shadow import FIELD_PREFIX

    def read(rec_id: str, name: str) -> list[str] | None:
        raw = state.redis.hget(state.keys.rec_info(rec_id), FIELD_PREFIX + name)
        return None if raw is None else list(json.loads(raw)["items"])

    return read


def ope(args: argparse.Namespace) -> dict[str, Any]:
    world = _sim.make_world(users=args.users, items_per_topic=args.items, seed=args.seed)
    logging = {
        "policy": {
            "exploration_share": args.share,
            "exploration_start": args.start,
            "exploration_pool": args.pool,
        }
    }
    runs = []
    with fresh_stack() as base:
        settings = _sim.sim_surfaces(base, logging, CANDIDATES)
        with in_process(settings) as (client, drain, flush, state):
            _sim.populate(client, drain, world)
            _sim.register(client, CANDIDATES)
            for n in range(args.runs):
                t = time.perf_counter()
                # Each run a new cohort (the first, the world's own users): runs are alike
                # repetitions, not a sequence in which users use up their favourite topics.
                users = world if n == 0 else world.cohort(f"r{n}", args.users)
                if n:
                    _sim.sign_up(client, drain, users)
                limits = {"min_support": args.min_support, "min_ess": args.min_ess}
                runs.append(
                    _sim.ope_round(
                        client,
                        drain,
                        flush,
                        users,
                        CANDIDATES,
                        repeats=args.repeats,
                        limits=limits,
                        shadow_list=shadow_reader(state),
                    )
                )
                print(f"run {n + 1}/{args.runs}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return {
        "mode": "ope",
        "params": vars(args),
        "lists_per_run": runs[0]["lists"] if runs else 0,
        "logged_true_ctr": statistics.fmean(r["logged_true_ctr"] for r in runs),
        "candidates": {
            name: _coverage([r["candidates"][name] for r in runs]) for name in CANDIDATES
        },
        "per_run": [_brief(r) for r in runs],  # to study a bias run by run
    }


def _brief(run: dict[str, Any]) -> dict[str, Any]:
    """One run: per candidate, its truths, the shadow estimate's support and effective sample
    size, and each estimator's estimate and interval (none when refused)."""
    out: dict[str, Any] = {"logged_true_ctr": round(run["logged_true_ctr"], 5)}
    for name, got in run["candidates"].items():
        shadow = got.get("shadow") or {}
        row: dict[str, Any] = {
            "truth": round(got["truth"], 5),
            "shadow_truth": _round(got.get("shadow_truth")),
            "support": shadow.get("support"),
            "ess": shadow.get("ess"),
        }
        for e in shadow.get("estimates", []):
            row[e["estimator"]] = [round(e[k], 5) for k in ("ctr", "low", "high")]
        out[name] = row
    return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 5)


def _coverage(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per method, coverage of its own estimand: a shadow estimate estimates the CTR of the
    shadow lists (`shadow_truth`, exact); a replay, of the lists the candidate's surface
    served (`truth`). The shadow estimates' coverage of `truth` is given too."""
    out: dict[str, Any] = {"true_ctr": statistics.fmean(r["truth"] for r in rows)}
    exact = [r["shadow_truth"] for r in rows if r.get("shadow_truth") is not None]
    if exact:
        out["shadow_true_ctr"] = statistics.fmean(exact)
    if "shadow" in rows[0]:
        own = [(r.get("shadow_truth", r["truth"]), r["shadow"]) for r in rows]
        out["shadow"] = _method(own)
        out["shadow"]["served_truth"] = _method([(r["truth"], r["shadow"]) for r in rows])
    if "replay" in rows[0]:
        out["replay"] = _method([(r["truth"], r["replay"]) for r in rows])
    return out


def _method(rows: list[tuple[float | None, dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "support": statistics.fmean(o["support"] or 0 for _, o in rows),
        "lists": statistics.fmean(o["lists"] for _, o in rows),
        "refused": sum(o["refused"] is not None for _, o in rows),
        "runs": len(rows),
    }
    if rows[0][1].get("replay_consistent") is not None:
        out["replay_consistent"] = statistics.fmean(o["replay_consistent"] for _, o in rows)
    for est in ("ips", "snips", "dr"):
        got = [
            (t, e)
            for t, o in rows
            if t is not None
            for e in o["estimates"]
            if e["estimator"] == est
        ]
        if not got:
            continue
        errors = [e["ctr"] - t for t, e in got]
        out[est] = {
            "estimate": statistics.fmean(e["ctr"] for _, e in got),
            "bias": statistics.fmean(errors),
            "error_sd": statistics.pstdev(errors),
            # A 95% interval is about 3.92 sd wide: the spread it implies.
            "implied_sd": statistics.fmean((e["high"] - e["low"]) / 3.92 for _, e in got),
            "width": statistics.fmean(e["high"] - e["low"] for _, e in got),
            "covered": sum(e["low"] <= t <= e["high"] for t, e in got),
            "below": sum(e["high"] < t for t, e in got),
            "of": len(got),
        }
    return out


def canary(args: argparse.Namespace) -> dict[str, Any]:
    world = _sim.make_world(users=args.users, items_per_topic=args.items, seed=args.seed)
    with fresh_stack() as base:
        settings = _sim.canary_settings(base)
        with in_process(settings) as (client, drain, flush, state):
            _sim.populate(client, drain, world)
            _sim.save_rankers(state.models)
            outcome = {
                v: _sim.canary_round(client, drain, flush, world, v, rounds=args.rounds)
                for v in ("sim-worse", "sim-better")
            }
            current = state.models.current("ranker")
    return {"mode": "canary", "params": vars(args), "canaries": outcome, "current_after": current}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("mode", choices=("ope", "canary"))
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--items", type=int, default=40, help="items per topic (10 topics)")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--repeats", type=int, default=4, help="logged lists per user per run")
    p.add_argument("--share", type=float, default=0.3, help="logging exploration share")
    p.add_argument("--start", type=int, default=1, help="first explorable position")
    p.add_argument("--pool", type=int, default=20, help="exploration pool")
    p.add_argument("--rounds", type=int, default=40, help="canary: most browsing rounds")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--min-support", type=float, default=0.9, help="ope: the API's refusal threshold"
    )
    p.add_argument("--min-ess", type=float, default=30.0, help="ope: the API's refusal threshold")
    args = p.parse_args()
    out = ope(args) if args.mode == "ope" else canary(args)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
