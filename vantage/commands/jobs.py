"""`vantage reindex` and `vantage refresh`: queue a job and follow it with a progress bar."""

from __future__ import annotations

import argparse
import json
import os

from core.settings import Settings
from vantage.commands import Subparsers
from vantage.commands.connect import resolved


def add_reindex(sub: Subparsers, settings: Settings) -> None:
    """`vantage reindex`."""
    job = sub.add_parser(
        "reindex", help="re-embed the catalogue into a new collection, swap the alias"
    )
    job.add_argument("--model", help="text model to re-embed with (default: the live one)")
    _add_follow_options(job)
    job.set_defaults(func=cmd_reindex)


def add_refresh(sub: Subparsers, settings: Settings) -> None:
    """`vantage refresh`."""
    job = sub.add_parser("refresh", help="retrain the models in a worker (same as the admin API)")
    _add_follow_options(job)
    job.set_defaults(func=cmd_refresh)


def _add_follow_options(job: argparse.ArgumentParser) -> None:
    job.add_argument("--no-wait", action="store_true", help="queue it and return")
    job.add_argument("--here", action="store_true", help="run it in this process")


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    """Queue a re-index (or a model refresh) and follow it with a progress bar."""
    return _follow_job(settings, "reindex", {"model": args.model} if args.model else {}, args)


def cmd_refresh(args: argparse.Namespace, settings: Settings) -> int:
    return _follow_job(settings, "train", {}, args)


def _follow_job(
    settings: Settings, kind: str, params: dict[str, str], args: argparse.Namespace
) -> int:
    import threading
    import time

    from tqdm import tqdm

    from core.stores.jobs import FINISHED, JobStore
    from indexing.connect import build_stores
    from indexing.jobrunner import GROUP, JobRunner
    from indexing.streams import leave

    with resolved(settings) as s:
        stores = build_stores(s)
        jobs = JobStore(stores.redis, stores.keys)
        job, created = jobs.create(kind, params)
        print(f"{'queued' if created else 'already active'}: {kind} job {job['id']}", flush=True)
        stop = threading.Event()
        thread = None
        if args.here:  # no worker around (e.g. the embedded stack): run it in this process
            runner = JobRunner(stores, s, f"cli-{os.getpid()}")
            thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
            thread.start()
        if args.no_wait and thread is None:
            return 0
        bar = tqdm(total=1, unit="item" if kind == "reindex" else "stage", desc=kind)
        try:
            while True:
                job = jobs.get(job["id"]) or job
                bar.total = max(job.get("total") or 0, 1)
                bar.n = job.get("done") or 0
                bar.set_postfix_str(f"{job['state']} {job.get('stage') or ''}".strip())
                bar.refresh()
                if job["state"] in FINISHED:
                    break
                time.sleep(0.5)
        finally:
            bar.close()
            stop.set()
            if thread is not None:
                thread.join(5)
                leave(stores.redis, stores.keys.jobs, GROUP, f"cli-{os.getpid()}")
        print(json.dumps(job))
        return 0 if job["state"] == "succeeded" else 1
