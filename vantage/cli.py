"""`vantage` command line: run the embedded stack, serve, work, import.

On the embedded defaults (`VANTAGE_MILVUS__URI` ending in `.db`) every command joins the
running `vantage run` stack or starts redis-server and Milvus Lite for its own duration.
The commands are in `vantage/commands/`, one module per command group.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable

from core.logs import setup_logging
from core.settings import Settings, get_settings
from vantage.commands import Subparsers, data, jobs, keys, ope, run, serve, train, users

# In the order `vantage --help` lists them.
COMMANDS: tuple[Callable[[Subparsers, Settings], None], ...] = (
    run.add_run,
    serve.add_serve,
    serve.add_worker,
    data.add_import,
    train.add_train,
    jobs.add_reindex,
    jobs.add_refresh,
    keys.add_keys,
    users.add_users,
    ope.add_ope,
    train.add_eval,
    data.add_demo_data,
)


def build_parser() -> argparse.ArgumentParser:
    """The `vantage` parser, each subcommand's `func` set to what runs it."""
    p = argparse.ArgumentParser(prog="vantage", description="Vantage recommendation service")
    sub = p.add_subparsers(dest="command", required=True)
    settings = get_settings()
    for add in COMMANDS:
        add(sub, settings)
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
