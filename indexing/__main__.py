"""`python -m indexing [--consumer NAME]`: run one indexing worker until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time

from core.logs import setup_logging
from core.settings import get_settings
from core.tracing import configure as configure_tracing
from indexing.connect import build_stores
from indexing.jobrunner import JobRunner
from indexing.refresh import CandidateRefresher
from indexing.worker import Worker, default_consumer_name

log = logging.getLogger("indexing")


# A clean stop applies what is buffered and gives the partitions back; with Redis or Milvus
# gone at the same moment (the whole stack stopping) their clients retry for long. Past this,
# the process just exits: whatever it did not acknowledge stays pending for the next holder.
STOP_WITHIN_S = 20.0


def _exit_if_stuck(stop: threading.Event) -> None:
    stop.wait()
    time.sleep(STOP_WITHIN_S)
    log.warning(
        "not stopped within %.0f s: exiting (unacknowledged events stay pending)", STOP_WITHIN_S
    )
    os._exit(1)


def _stop_with_parent(stop: threading.Event, every_s: float = 1.0) -> None:
    """Set `stop` once this process is orphaned (its parent's pid changes). `vantage run` also
    asks the kernel for a SIGTERM when it dies (PR_SET_PDEATHSIG), but once in CI a worker it
    had restarted outlived it by 90 s without stopping: this watch does not depend on a
    signal being delivered."""
    parent = os.getppid()
    while not stop.wait(every_s):
        if os.getppid() != parent:
            log.warning("parent process %d is gone: stopping", parent)
            stop.set()


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set `stop` at once, even while the main thread is blocked in a
    client library's call (a Python handler runs only when the main thread gets back to the
    interpreter: a worker restarted by `vantage run` and blocked connecting to a Milvus that
    died with it never ran its handler, and outlived its parent, seen in CI). The C handler
    writes the signal number to a pipe a thread reads."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w)

    def watch() -> None:
        while not stop.is_set():
            got = os.read(r, 64)
            if signal.SIGTERM in got or signal.SIGINT in got:
                stop.set()

    threading.Thread(target=watch, name="signals", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m indexing", description=__doc__)
    parser.add_argument("--consumer", help="consumer name in the group (default: host-pid)")
    parser.add_argument(
        "--stop-with-parent",
        action="store_true",
        help="stop when the process that started this one exits (used by `vantage run`)",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format)
    tracing = configure_tracing("vantage-worker")  # off unless the OTEL_* variables ask
    w = settings.worker
    stop = threading.Event()
    _stop_on_signals(stop)
    threading.Thread(target=_exit_if_stuck, args=(stop,), daemon=True).start()
    if args.stop_with_parent:
        threading.Thread(target=_stop_with_parent, args=(stop,), daemon=True).start()
    consumer = args.consumer or w.consumer or default_consumer_name()
    stores = build_stores(settings, log_writer=consumer)
    worker = Worker(
        stores,
        group=w.group,
        consumer=consumer,
        read_count=w.read_count,
        block_ms=w.block_ms,
        claim_idle_ms=w.claim_idle_ms,
        max_deliveries=w.max_deliveries,
        item_batch=w.item_batch,
        item_batch_ms=w.item_batch_ms,
        replicas=settings.redis.wait_replicas,
        replica_timeout_ms=settings.redis.wait_timeout_ms,
    )
    jobs = None
    if w.jobs_enabled:
        # Own clients (a job must not share a connection with the event loop), same model.
        job_stores = build_stores(settings, embedder=stores.embedder)
        runner = JobRunner(job_stores, settings, consumer)
        jobs = threading.Thread(target=runner.run, args=(stop,), name="jobs", daemon=True)
        jobs.start()
    refresher = None
    if settings.candidates.enabled:
        # Own clients too: a refresh's searches never hold up applying events.
        refresh = CandidateRefresher(build_stores(settings, embedder=stores.embedder), settings)
        refresher = threading.Thread(
            target=refresh.run, args=(stop, worker.behind), name="refresh", daemon=True
        )
        refresher.start()
    log.info("worker %s sharing %d event partitions", worker.consumer, stores.keys.partitions)
    worker.run(stop)
    for thread in (jobs, refresher):
        if thread is not None:
            thread.join(timeout=5)
    log.info("worker %s stopped after %d events", worker.consumer, worker.stats.applied)
    if tracing is not None:
        tracing.shutdown()  # exports the spans still batched


if __name__ == "__main__":
    main()
