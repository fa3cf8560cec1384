"""`vantage users erase ID`: erase every trace of a user and print the receipt."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time

from core.domain import ID_PATTERN
from core.settings import Settings
from vantage.commands import Subparsers
from vantage.commands.connect import resolved

log = logging.getLogger(__name__)


def add_users(sub: Subparsers, settings: Settings) -> None:
    """`vantage users` and its subcommands."""
    users = sub.add_parser("users", help="users' personal data")
    usub = users.add_subparsers(dest="users_command", required=True)
    erase = usub.add_parser(
        "erase", help="erase every trace of a user (GDPR Art. 17); prints the receipt"
    )
    erase.add_argument("user_id")
    erase.add_argument(
        "--wait", type=float, default=120.0, help="seconds to wait for it to be applied"
    )
    users.set_defaults(func=cmd_users)


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    """Erase a user as `DELETE /v1/users/{id}` does; with no worker running, apply the queue
    here (the erasure comes after the user's events already queued)."""
    from core import events as ev
    from core.stores.erasures import ErasureRecords, receipt
    from indexing.connect import build_stores
    from indexing.partitions import live_workers
    from indexing.streams import leave
    from indexing.worker import Worker

    if not re.fullmatch(ID_PATTERN, args.user_id):
        print(f"error: {args.user_id!r} is not a user id", file=sys.stderr)
        return 2
    with resolved(settings) as s:
        stores = build_stores(s, log_writer="cli")
        records = ErasureRecords(stores.redis, stores.keys)
        token = records.begin(args.user_id)
        ev.publish(stores.redis, stores.keys, [ev.erasure_event(args.user_id, token)])
        deadline = time.monotonic() + args.wait
        if not live_workers(stores.redis, stores.keys):
            log.info("no worker is running: applying the queue here")
            worker = Worker(stores, consumer=f"cli-{os.getpid()}")
            worker.drain(timeout_s=args.wait)
            for part in worker.held:
                leave(part.r, part.stream, part.group, worker.consumer)
        while (rec := records.raw(args.user_id)).get("status") != "completed":
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        print(json.dumps(receipt(args.user_id, rec), indent=1))
    if rec.get("status") != "completed":
        print(
            "not applied yet: a worker will; `GET /v1/users/ID/erasure` follows it", file=sys.stderr
        )
        return 1
    return 0
