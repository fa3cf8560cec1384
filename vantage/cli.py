"""`vantage` command line: run the embedded stack, serve, work, import.

On the embedded defaults (`VANTAGE_MILVUS__URI` ending in `.db`) every command joins the
running `vantage run` stack or starts redis-server and Milvus Lite for its own duration.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from vantage.config import Settings, get_settings
from vantage.logs import setup_logging
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
    return {
        **os.environ,
        "VANTAGE_MILVUS__URI": s.milvus.uri,
        "VANTAGE_REDIS__URL": s.redis.url,
        "HF_HUB_OFFLINE": "1",
    }


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Embedded stack + demo data (if empty) + one worker + the API, until Ctrl-C."""
    import uvicorn

    from app.main import create_app
    from indexing.connect import build_stores
    from indexing.demo import write_demo
    from indexing.importer import import_dataset
    from indexing.train import logged_interactions, train_cf

    with resolved(settings) as s:
        if not args.no_demo:
            stores = build_stores(s, log_writer="import")
            if stores.items.count() == 0:
                demo_dir = write_demo(s.data_dir / "demo")
                log.info("empty catalogue: seeding the demo data set from %s", demo_dir)
                report = import_dataset(stores, demo_dir)
                log.info("demo data imported: %s", report.as_dict())
                trained = train_cf(
                    stores,
                    logged_interactions(s.event_log_dir),
                    tune_split=s.models.tune_split,
                    progress=False,
                )
                log.info("interaction model trained: %s", trained.as_dict())
            del stores
        worker = subprocess.Popen(
            [sys.executable, "-m", "indexing", "--consumer", "run-worker"], env=_child_env(s)
        )
        try:
            _wait_for_consumer(s, "run-worker", worker)
            print(
                f"\nVantage is serving on http://{args.host}:{args.port}  (docs: /docs)\n"
                f"  curl 'http://{args.host}:{args.port}/v1/recommendations"
                "?user_id=u-0001&surface=homepage&limit=5'\n",
                flush=True,
            )
            uvicorn.run(
                create_app(s), host=args.host, port=args.port, log_level=s.log_level.lower()
            )
        finally:
            worker.terminate()
            worker.wait(15)
    return 0


def _wait_for_consumer(s: Settings, name: str, proc: subprocess.Popen[bytes]) -> None:
    """Block until the worker has joined the consumer group (it loads the text model first),
    so writes accepted once the API answers are applied within a second."""
    import time

    from indexing.connect import connect_redis
    from indexing.keys import Keys

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
    """Fit the interaction model, then the re-ranker, on the durable event log; publish both."""
    from indexing.connect import build_stores
    from indexing.train import CFParams, logged_interactions, train_cf
    from vantage.ranker_train import train_ranker

    split = args.tune_split or settings.models.tune_split
    with resolved(settings) as s:
        stores = build_stores(s)
        records = logged_interactions(s.event_log_dir)
        log.info("training on %d logged interactions from %s", len(records), s.event_log_dir)
        report = train_cf(stores, records, tune_split=split)
        cf_params = CFParams.from_dict(report.params)
        ranker = train_ranker(s, stores, records, tune_split=split, cf_params=cf_params)
    print(json.dumps({**report.as_dict(), "ranker": ranker.as_dict()}))
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Score the serving pipeline and the baselines on the same split; one JSON object."""
    from vantage.evaluation.harness import evaluate_dataset, markdown_table

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
    train.add_argument(
        "--tune-split",
        choices=["temporal", "random"],
        help="hold out each user's newest items (temporal) or random ones (random) when "
        "choosing hyper-parameters and training the re-ranker (default: "
        "VANTAGE_MODELS__TUNE_SPLIT, else temporal)",
    )
    train.set_defaults(func=cmd_train)

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
    setup_logging(settings.log_level)
    return int(args.func(args, settings))


if __name__ == "__main__":
    sys.exit(main())
