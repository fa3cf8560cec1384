"""`vantage` command line: run the embedded stack, serve, work, import.

On the embedded defaults (`VANTAGE_MILVUS__URI` ending in `.db`) every command joins the
running `vantage run` stack or starts redis-server and Milvus Lite for its own duration.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.logs import setup_logging
from core.settings import Settings, get_settings, settings_env
from vantage.stack import embedded_stack, is_embedded

log = logging.getLogger("vantage")


@contextlib.contextmanager
def resolved(settings: Settings) -> Iterator[Settings]:
    """Settings pointing at live servers (starting the embedded ones when configured)."""
    if not is_embedded(settings.milvus.uri):
        yield settings
        return
    from urllib.parse import urlparse

    redis_port = urlparse(settings.redis.url).port or 6379
    with embedded_stack(
        settings.data_dir, Path(settings.milvus.uri), redis_port=redis_port, milvus_port=19530
    ) as info:
        yield settings.model_copy(
            update={
                "milvus": settings.milvus.model_copy(update={"uri": info["milvus_uri"]}),
                "redis": settings.redis.model_copy(update={"url": info["redis_url"]}),
            }
        )


def _child_env(s: Settings) -> dict[str, str]:
    return {**os.environ, **settings_env(s), "HF_HUB_OFFLINE": "1"}


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Embedded stack + demo data (if empty) + one worker + the API, until Ctrl-C."""
    # The port first: a clash is reported in a second, not after the demo import.
    try:
        sock = bind_api_socket(args.host, args.port)
    except OSError as e:
        print(port_error(args.host, args.port, e), file=sys.stderr)
        return 1
    import uvicorn

    from app.main import create_app
    from indexing.connect import build_stores

    with sock, resolved(settings) as s:
        if not args.no_demo:
            stores = build_stores(s, log_writer="import")
            seed_demo(stores, s)
            del stores
        worker = subprocess.Popen(
            [sys.executable, "-m", "indexing", "--consumer", "run-worker"], env=_child_env(s)
        )
        try:
            _wait_for_consumer(s, "run-worker", worker)
            key = demo_key(s) if s.auth.enabled else ""
            port = int(sock.getsockname()[1])  # the real one, also when --port 0
            config = uvicorn.Config(
                create_app(s), host=args.host, port=port, log_level=s.log_level.lower()
            )
            server = announcing_server(config, banner(s, args.host, port, key))
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops
                server.run(sockets=[sock])
        finally:
            worker.terminate()
            worker.wait(15)
    return 0


def seed_demo(stores: Any, s: Settings) -> bool:
    """On an empty catalogue: import the demo data set and train the interaction model.

    `stores` must log to `s.event_log_dir` (the model is trained on the durable log). What
    `vantage run` serves, and what the README's worked example is checked against."""
    from indexing.demo import write_demo
    from indexing.importer import import_dataset
    from training.interaction import logged_interactions, train_cf

    if stores.items.count() > 0:
        return False
    demo_dir = write_demo(s.data_dir / "demo")
    log.info("empty catalogue: seeding the demo data set from %s", demo_dir)
    report = import_dataset(stores, demo_dir)
    log.info("demo data imported: %s", report.as_dict())
    # One INFO line from train_cf sums the run up ("cf model ... published").
    train_cf(
        stores,
        logged_interactions(s.event_log_dir),
        tune_split=s.models.tune_split,
        progress=False,
    )
    return True


def bind_api_socket(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound now (uvicorn listens on it once the app is up)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def port_error(host: str, port: int, exc: OSError) -> str:
    """One line telling the user what went wrong and how to pick another port."""
    other = 8100 if port != 8100 else 8200
    how = (
        f"pick another port: make run PORT={other} (or vantage run --port {other}, "
        f"or VANTAGE_SERVING__PORT={other})"
    )
    if exc.errno == errno.EADDRINUSE:
        return f"error: port {port} on {host} is already in use; {how}"
    return f"error: cannot listen on {host}:{port} ({exc.strerror or exc}); {how}"


def banner(s: Settings, host: str, port: int, key: str) -> str:
    """What `vantage run` prints once the API answers: where, the demo key, a first request."""
    # Listening on every interface: the URL to paste is still the local one.
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    base = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    auth = f" -H 'Authorization: Bearer {key}'" if key else ""
    lines = [
        "",
        f"Vantage is serving on {base}  (docs: {base}/docs; Ctrl-C stops it)",
    ]
    if key:
        lines.append(f"  API key (admin, also in {s.data_dir / 'demo-api-key'}): {key}")
    lines.append(
        f"  curl{auth} '{base}/v1/recommendations?user_id=u-0001&surface=homepage&limit=5'"
    )
    return "\n".join(lines) + "\n"


def announcing_server(config: Any, message: str) -> Any:
    """A uvicorn server that prints `message` once its socket accepts connections."""
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # listening: a request sent from now on is answered
                print(message, flush=True)

    return AnnouncingServer(config)


def _wait_for_consumer(s: Settings, name: str, proc: subprocess.Popen[bytes]) -> None:
    """Block until the worker has joined the consumer group (it loads the text model first),
    so writes accepted once the API answers are applied within a second."""
    import time

    from core.connect import connect_redis
    from core.keys import Keys

    r = connect_redis(s)
    stream = Keys(s.redis.key_prefix).events
    started = time.monotonic()
    deadline = started + 120
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the indexing worker exited with code {proc.returncode}")
            try:
                consumers = r.xinfo_consumers(stream, s.worker.group)
            except Exception:
                consumers = []  # the group does not exist until the worker creates it
            # The name survives restarts: it must have read since this process started.
            waited_ms = (time.monotonic() - started) * 1000
            if any(c["name"] in (name, name.encode()) and c["idle"] < waited_ms for c in consumers):
                return
            time.sleep(0.2)
        raise TimeoutError("the indexing worker did not start within 120 s")
    finally:
        r.close()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """The API alone, against configured servers (production)."""
    import uvicorn

    with resolved(settings) as s:
        if s is not settings:
            os.environ.update(_child_env(s))
            get_settings.cache_clear()
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=s.log_level.lower(),
        )
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from indexing.__main__ import main as worker_main

    with resolved(settings) as s:
        os.environ.update(_child_env(s))
        get_settings.cache_clear()
        worker_main(["--consumer", args.consumer] if args.consumer else [])
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from indexing.connect import build_stores
    from indexing.importer import import_dataset

    with resolved(settings) as s:
        stores = build_stores(s, log_writer="import")
        report = import_dataset(stores, args.path, limit_items=args.limit_items)
    print(json.dumps(report.as_dict()))
    return 0 if report.items or report.interactions else 1


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    """Fit the interaction model, then the re-ranker, on the durable event log; publish both.

    With `--job ID` (a model refresh run by a worker) progress goes to that job."""
    from core.stores.jobs import JobStore
    from indexing.connect import build_stores
    from training.interaction import CFParams, logged_interactions, train_cf
    from training.ranker import train_ranker

    split = args.tune_split or settings.models.tune_split
    with resolved(settings) as s:
        stores = build_stores(s)
        jobs = JobStore(stores.redis, stores.keys)

        def stage(n: int, name: str) -> None:
            if args.job:
                jobs.progress(args.job, n, 4, stage=name)

        stage(0, "reading the event log")
        records = logged_interactions(s.event_log_dir)
        log.info("training on %d logged interactions from %s", len(records), s.event_log_dir)
        stage(1, "fitting the interaction model")
        report = train_cf(stores, records, tune_split=split, progress=not args.job)
        cf_params = CFParams.from_dict(report.params)
        stage(2, "fitting the re-ranker")
        ranker = train_ranker(s, stores, records, tune_split=split, cf_params=cf_params)
        stage(4, "done")
    print(json.dumps({**report.as_dict(), "ranker": ranker.as_dict()}))
    return 0


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    """Create, list or revoke API keys (stored hashed in Redis)."""
    from app.auth import KeyStore
    from core.connect import connect_redis
    from core.keys import Keys

    with resolved(settings) as s:
        store = KeyStore(connect_redis(s), Keys(s.redis.key_prefix))
        if args.keys_command == "create":
            try:
                token, rec = store.create(
                    args.name,
                    [x.strip() for x in args.scopes.split(",") if x.strip()],
                    rate=args.rate or s.auth.default_rate_per_s,
                    burst=args.burst or s.auth.default_burst,
                )
            except ValueError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            print(json.dumps({"key": token, **rec.public()}))
            print("store the key now: it is not shown again", file=sys.stderr)
        elif args.keys_command == "list":
            for rec in store.list():
                print(json.dumps(rec.public()))
        else:
            if not store.revoke(args.key_id):
                print(f"error: no key {args.key_id}", file=sys.stderr)
                return 1
            print(json.dumps({"revoked": args.key_id}))
    return 0


def demo_key(s: Settings) -> str:
    """The embedded demo's admin key, created on first run and kept in the data dir."""
    from app.auth import KeyStore
    from core.connect import connect_redis
    from core.keys import Keys

    path = s.data_dir / "demo-api-key"
    store = KeyStore(connect_redis(s), Keys(s.redis.key_prefix))
    if path.is_file() and store.verify(path.read_text().strip()) is not None:
        return path.read_text().strip()
    token, _ = store.create(
        "demo", ["admin"], rate=s.auth.default_rate_per_s, burst=s.auth.default_burst
    )
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


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
    from indexing.jobrunner import JobRunner

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
        print(json.dumps(job))
        return 0 if job["state"] == "succeeded" else 1


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Score the serving pipeline and the baselines on the same split; one JSON object."""
    from training.harness import evaluate_dataset, markdown_table

    results = []
    with resolved(settings) as s:
        for dataset in args.dataset:
            for protocol in args.protocol:
                results.append(
                    evaluate_dataset(s, Path(dataset), protocol, baselines=not args.no_baselines)
                )
    if args.markdown:
        Path(args.markdown).write_text(markdown_table(results))
    print(json.dumps({"results": results}))
    return 0


def cmd_demo_data(args: argparse.Namespace, settings: Settings) -> int:
    from indexing.demo import write_demo

    print(write_demo(Path(args.path)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vantage", description="Vantage recommendation service")
    sub = p.add_subparsers(dest="command", required=True)
    s = get_settings().serving

    run = sub.add_parser("run", help="embedded stack + demo data + worker + API (development)")
    run.add_argument("--host", default=s.host)
    run.add_argument("--port", type=int, default=s.port)
    run.add_argument("--no-demo", action="store_true", help="do not seed the demo data set")
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="serve the API against the configured servers")
    serve.add_argument("--host", default=s.host)
    serve.add_argument("--port", type=int, default=s.port)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run one indexing worker (same as python -m indexing)")
    worker.add_argument("--consumer", help="consumer name in the group")
    worker.set_defaults(func=cmd_worker)

    imp = sub.add_parser(
        "import", help="import a data set: generic dir, MovieLens 100K or latest-small"
    )
    imp.add_argument("path", help="directory holding the data set")
    imp.add_argument("--limit-items", type=int, default=None, help="import only the first N items")
    imp.set_defaults(func=cmd_import)

    train = sub.add_parser("train", help="train the interaction model from the event log")
    train.add_argument("--job", help=argparse.SUPPRESS)  # set by a worker running a refresh
    train.add_argument(
        "--tune-split",
        choices=["temporal", "random"],
        help="hold out each user's newest items (temporal) or random ones (random) when "
        "choosing hyper-parameters and training the re-ranker (default: "
        "VANTAGE_MODELS__TUNE_SPLIT, else temporal)",
    )
    train.set_defaults(func=cmd_train)

    for name, func, text in (
        ("reindex", cmd_reindex, "re-embed the catalogue into a new collection, swap the alias"),
        ("refresh", cmd_refresh, "retrain the models in a worker (same as the admin API)"),
    ):
        job = sub.add_parser(name, help=text)
        if name == "reindex":
            job.add_argument("--model", help="text model to re-embed with (default: the live one)")
        job.add_argument("--no-wait", action="store_true", help="queue it and return")
        job.add_argument("--here", action="store_true", help="run it in this process")
        job.set_defaults(func=func)

    keys = sub.add_parser("keys", help="manage API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kc = ksub.add_parser("create", help="create a key (printed once)")
    kc.add_argument("--name", required=True, help="who or what uses it")
    kc.add_argument(
        "--scopes", required=True, help="comma-separated: recommend, events, catalog, admin"
    )
    kc.add_argument("--rate", type=float, help="requests per second (default from settings)")
    kc.add_argument("--burst", type=int, help="requests at once (default from settings)")
    ksub.add_parser("list", help="list keys (never their secrets)")
    kr = ksub.add_parser("revoke", help="revoke a key by its id")
    kr.add_argument("key_id")
    keys.set_defaults(func=cmd_keys)

    ev = sub.add_parser("eval", help="evaluate the serving pipeline against baselines")
    ev.add_argument(
        "--dataset", action="append", required=True, help="data set directory (repeatable)"
    )
    ev.add_argument(
        "--protocol",
        action="append",
        choices=["ms", "ms-round", "temporal"],
        help="split protocol (repeatable; default ms and temporal)",
    )
    ev.add_argument("--no-baselines", action="store_true", help="score only the pipeline")
    ev.add_argument("--markdown", help="also write the results as a markdown table here")
    ev.set_defaults(func=cmd_eval)

    demo = sub.add_parser("demo-data", help="write the synthetic demo data set to a directory")
    demo.add_argument("path")
    demo.set_defaults(func=cmd_demo_data)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    if getattr(args, "protocol", False) is None:
        args.protocol = ["ms", "temporal"]
    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format)
    # SIGTERM (docker stop, systemd, kill) stops as Ctrl-C does: `finally` blocks run, so
    # the worker, redis-server and Milvus Lite started by `vantage run` stop with it.
    # (uvicorn handles SIGTERM while it serves, then raises it again: this catches that.)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(args.func(args, settings))
    except KeyboardInterrupt:
        return 130


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
