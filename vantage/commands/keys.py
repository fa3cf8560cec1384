"""`vantage keys create|list|revoke`: API keys, stored hashed in Redis."""

from __future__ import annotations

import argparse
import json
import sys

from core.settings import Settings
from vantage.commands import Subparsers
from vantage.commands.connect import resolved


def add_keys(sub: Subparsers, settings: Settings) -> None:
    """`vantage keys` and its subcommands."""
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


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    """Create, list or revoke API keys (stored hashed in Redis)."""
    from app.auth import KeyStore
    from core.connect import connect_redis
    from core.keys import Keys

    with resolved(settings) as s:
        store = KeyStore(connect_redis(s), Keys.of(s.redis))
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
