"""`vantage train` and `vantage eval`: fit and publish the models, score the pipeline offline."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from core.settings import Settings
from vantage.commands import Subparsers
from vantage.commands.connect import resolved

log = logging.getLogger("vantage")


def add_train(sub: Subparsers, settings: Settings) -> None:
    """`vantage train`."""
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


def add_eval(sub: Subparsers, settings: Settings) -> None:
    """`vantage eval`."""
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


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    """Fit the interaction model, then the re-ranker, on the durable event log; publish both.

    With `--job ID` (a model refresh run by a worker) progress goes to that job."""
    from core.stores.jobs import JobStore
    from indexing.connect import build_stores
    from training.interaction import CFParams, history_resets, logged_interactions, train_cf
    from training.ranker import RankerParams, train_ranker

    split = args.tune_split or settings.models.tune_split
    with resolved(settings) as s:
        stores = build_stores(s)
        jobs = JobStore(stores.redis, stores.keys)

        def stage(n: int, name: str) -> None:
            if args.job:
                jobs.progress(args.job, n, 4, stage=name)

        stage(0, "reading the event log")
        read_at = time.time()
        records = logged_interactions(s.event_log_dir, history_resets(stores))
        log.info("training on %d logged interactions from %s", len(records), s.event_log_dir)
        stage(1, "fitting the interaction model")
        report = train_cf(stores, records, tune_split=split, progress=not args.job, read_at=read_at)
        cf_params = CFParams.from_dict(report.params)
        stage(2, "fitting the re-ranker")
        # With a canary share set, a ranker that passes the gate first serves that share.
        params = RankerParams(canary_share=s.canary.share, canary_margin=s.canary.margin)
        ranker = train_ranker(
            s, stores, records, params=params, tune_split=split, cf_params=cf_params
        )
        stage(4, "done")
    print(json.dumps({**report.as_dict(), "ranker": ranker.as_dict()}))
    return 0


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
