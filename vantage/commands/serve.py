"""`vantage serve` and `vantage worker`: the API, or one indexing worker, on configured servers."""

from __future__ import annotations

import argparse
import os

from core.settings import Settings, get_settings
from vantage.commands import Subparsers
from vantage.commands.connect import child_env, resolved


def add_serve(sub: Subparsers, settings: Settings) -> None:
    """`vantage serve`."""
    s = settings.serving
    serve = sub.add_parser("serve", help="serve the API against the configured servers")
    serve.add_argument("--host", default=s.host)
    serve.add_argument("--port", type=int, default=s.port)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.set_defaults(func=cmd_serve)


def add_worker(sub: Subparsers, settings: Settings) -> None:
    """`vantage worker`."""
    worker = sub.add_parser("worker", help="run one indexing worker (same as python -m indexing)")
    worker.add_argument("--consumer", help="consumer name in the group")
    worker.set_defaults(func=cmd_worker)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """The API alone, against configured servers (production)."""
    import uvicorn

    with resolved(settings) as s:
        if s is not settings:
            os.environ.update(child_env(s))
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
        os.environ.update(child_env(s))
        get_settings.cache_clear()
        worker_main(["--consumer", args.consumer] if args.consumer else [])
    return 0
