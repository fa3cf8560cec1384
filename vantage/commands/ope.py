"""`vantage ope`: off-policy evaluation from the command line, as `POST /v1/admin/ope` and
`/v1/admin/ope/candidates` do (in this process, on the stack's Redis and Milvus).

    vantage ope estimate homepage --candidate diverse
    vantage ope estimate homepage --overrides '{"policy": {"mmr_lambda": 0.7}}' --hours 6
    vantage ope candidates                         # list
    vantage ope candidates add diverse homepage --overrides '{"policy": {"mmr_lambda": 0.5}}'
    vantage ope candidates delete diverse
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.settings import Settings
from vantage.commands import Subparsers
from vantage.commands.connect import resolved


def add_ope(sub: Subparsers, settings: Settings) -> None:
    ope = sub.add_parser("ope", help="off-policy evaluation: what a candidate would have scored")
    osub = ope.add_subparsers(dest="ope_command", required=True)
    est = osub.add_parser("estimate", help="estimate a candidate's CTR on a surface's logs")
    est.add_argument("surface")
    which = est.add_mutually_exclusive_group()
    which.add_argument("--candidate", help="a registered candidate (its shadow lists: exact)")
    which.add_argument("--variant", help="a configured variant of the surface (replayed)")
    which.add_argument("--overrides", type=_json, help="surface settings as JSON (replayed)")
    est.add_argument("--logged-variant", default="default", help="whose lists are the logs")
    est.add_argument(
        "--reward",
        type=_json,
        help='weights per event type as JSON, e.g. \'{"click": 1, "purchase": 5}\'',
    )
    est.add_argument("--hours", type=float, default=24.0, help="window (at most 24)")
    est.add_argument("--max-lists", type=int, default=2000)
    cands = osub.add_parser("candidates", help="list, add or delete shadowed candidates")
    csub = cands.add_subparsers(dest="cand_command")
    add = csub.add_parser("add", help="register (or replace) a candidate")
    add.add_argument("name")
    add.add_argument("surface")
    add.add_argument("--overrides", type=_json, default={})
    add.add_argument("--share", type=float, default=0.1)
    delete = csub.add_parser("delete", help="stop shadowing a candidate")
    delete.add_argument("name")
    ope.set_defaults(func=cmd_ope)


def _json(text: str) -> dict[str, Any]:
    got = json.loads(text)
    if not isinstance(got, dict):
        raise argparse.ArgumentTypeError('a JSON object, e.g. \'{"policy": {"mmr_lambda": 0.7}}\'')
    return got


def _rewards(raw: dict[str, Any] | None) -> dict[str, float] | None:
    """The reward weights, checked as the API checks them."""
    if raw is None:
        return None
    kinds = ("click", "watch", "like", "purchase", "rate")
    bad = [k for k, v in raw.items() if k not in kinds or not isinstance(v, int | float)]
    if bad or not raw:
        raise SystemExit(f"error: --reward takes weights for {', '.join(kinds)} (got {bad or raw})")
    return {k: float(v) for k, v in raw.items()}


def cmd_ope(args: argparse.Namespace, settings: Settings) -> int:
    from app.services import ope, shadow
    from app.state import AppState
    from core.errors import VantageError
    from serving.state import build_state

    with resolved(settings) as s:
        state = build_state(s, AppState)
        try:
            if args.ope_command == "estimate":
                q = ope.OpeQuery(
                    surface=args.surface,
                    candidate=args.candidate,
                    variant=args.variant,
                    overrides=args.overrides or {},
                    logged_variant=args.logged_variant,
                    reward=_rewards(args.reward),
                    hours=args.hours,
                    max_lists=args.max_lists,
                )
                out: Any = ope.evaluate(state, q)
            elif args.cand_command == "add":
                got, _ = shadow.put(state, args.name, args.surface, args.overrides, args.share)
                out = got.as_dict()
            elif args.cand_command == "delete":
                shadow.delete(state, args.name)
                out = {"deleted": args.name}
            else:
                out = {"candidates": [c.as_dict() for c in shadow.store(state).all()]}
        except VantageError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        finally:
            state.close()
    print(json.dumps(out, indent=1))
    return 0
