"""`vantage import` and `vantage demo-data`: load a data set, write the demo one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.settings import Settings
from vantage.commands import Subparsers
from vantage.commands.connect import resolved


def add_import(sub: Subparsers, settings: Settings) -> None:
    """`vantage import`."""
    imp = sub.add_parser(
        "import", help="import a data set: generic dir, MovieLens 100K or latest-small"
    )
    imp.add_argument("path", help="directory holding the data set")
    imp.add_argument("--limit-items", type=int, default=None, help="import only the first N items")
    imp.set_defaults(func=cmd_import)


def add_demo_data(sub: Subparsers, settings: Settings) -> None:
    """`vantage demo-data`."""
    demo = sub.add_parser("demo-data", help="write the synthetic demo data set to a directory")
    demo.add_argument("path")
    demo.set_defaults(func=cmd_demo_data)


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from indexing.connect import build_stores
    from indexing.importer import import_dataset

    with resolved(settings) as s:
        stores = build_stores(s, log_writer="import")
        report = import_dataset(stores, args.path, limit_items=args.limit_items)
    print(json.dumps(report.as_dict()))
    return 0 if report.items or report.interactions else 1


def cmd_demo_data(args: argparse.Namespace, settings: Settings) -> int:
    from indexing.demo import write_demo

    print(write_demo(Path(args.path)))
    return 0
