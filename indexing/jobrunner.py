"""Runs queued jobs inside a worker process, beside event consumption (its own thread).

Every worker runs one; the jobs stream's consumer group hands each job to exactly one of them.
While a job runs, a heartbeat keeps its stream entry fresh and renews the global job lock; if
the worker dies, the entry goes idle and another worker takes the job over and starts it again
(a re-index restarts from a fresh collection; a refresh simply retrains).
Between jobs the runner does housekeeping: drops old collections after their grace period and
trims the trending sets.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import redis
from pymilvus.exceptions import MilvusException

from core.redis_typed import StreamEntry, members, stream_entries, text
from core.settings import Settings, settings_env
from core.stores.catalogue import CHANGE_LOG_KEEP_S, announce
from core.stores.jobs import JobError, JobStore
from core.stores.schema import RELOAD_TIMEOUT_S, load_all
from indexing.apply import Stores
from indexing.reindex import Reindexer, ReindexParams, drop_due_collections

log = logging.getLogger(__name__)

GROUP = "jobrunners"
MAX_ATTEMPTS = 3
HOUSEKEEPING_S = 30.0
TRAIN_TIMEOUT_S = 6 * 3600
# A tombstone outlives every list that may still name its item (last good lists: an hour;
# unused candidate sets expire in a week), and goes only once Milvus has no row for it.
TOMBSTONE_KEEP_S = 8 * 86_400.0
TOMBSTONE_PRUNE_BATCH = 1000
# A job that meets an unreachable Redis or Milvus runs again after a wait that doubles from
# `dep_wait_s` (5 s, capped at 160 s), at most this many times (about 5 minutes), then fails.
DEPENDENCY_RETRIES = 6
DEPENDENCY_ERRORS = (redis.ConnectionError, redis.TimeoutError, MilvusException)


class JobLockBusy(RuntimeError):
    pass


class JobRunner:
    def __init__(self, stores: Stores, settings: Settings, consumer: str):
        self.s = stores
        self.settings = settings
        self.consumer = consumer
        self.jobs = JobStore(stores.redis, stores.keys)
        self.dep_wait_s = 5.0
        self.claim_idle_ms = settings.worker.job_claim_idle_ms
        self._last_housekeeping = 0.0

    @property
    def r(self) -> redis.Redis:
        return self.s.redis

    def ensure_group(self) -> None:
        try:
            self.r.xgroup_create(self.s.keys.jobs, GROUP, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def run(self, stop: threading.Event) -> None:
        backoff = 1.0
        while not stop.is_set():
            try:
                self.run_once(block_ms=1000)
                backoff = 1.0
            except Exception as e:  # a job runner must outlive any one failure
                log.warning("job runner: %s: %s; retrying in %.0f s", type(e).__name__, e, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def run_once(self, block_ms: int | None = None) -> int:
        """Housekeeping if due, then run at most one job (a reclaimed one first)."""
        self.ensure_group()
        if time.monotonic() - self._last_housekeeping > HOUSEKEEPING_S:
            self._last_housekeeping = time.monotonic()
            self.housekeeping()
        entries = self._reclaim() or self._read(block_ms)
        for eid, fields in entries:
            self.execute(eid, fields)
        return len(entries)

    def housekeeping(self) -> None:
        drop_due_collections(self.s)
        self.s.trending.maintain()
        self.jobs.prune()
        r, k = self.r, self.s.keys
        r.xtrim(k.jobs, maxlen=10_000, approximate=True)
        # The change log only matters to a running re-index (which holds the job lock).
        if not r.exists(k.job_lock):
            cutoff = (time.time() - CHANGE_LOG_KEEP_S) * 1000
            r.zremrangebyscore(k.item_changes, "-inf", cutoff)
            r.zremrangebyscore(k.item_writers, "-inf", cutoff)
        self.prune_tombstones()

    def prune_tombstones(self, keep_s: float = TOMBSTONE_KEEP_S) -> int:
        """Drop old tombstones of items Milvus no longer has (hidden items keep theirs), so the
        set stays bounded by deletes of the last `keep_s`; how many were dropped."""
        k = self.s.keys
        old = members(
            self.r.zrangebyscore(
                k.tombstones, "-inf", time.time() - keep_s, start=0, num=TOMBSTONE_PRUNE_BATCH
            )
        )
        if not old:
            return 0
        still = self.s.items.get(old, fields=("status",), strong=True)
        gone = [i for i in old if i not in still]
        if gone:
            pipe = self.r.pipeline(transaction=False)
            pipe.zrem(k.tombstones, *gone)
            announce(pipe, k, gone)
            pipe.execute()
        return len(gone)

    def _read(self, block_ms: int | None) -> list[StreamEntry]:
        resp = self.r.xreadgroup(GROUP, self.consumer, {self.s.keys.jobs: ">"}, 1, block_ms)
        return stream_entries(resp)

    def _reclaim(self) -> list[StreamEntry]:
        resp = self.r.xautoclaim(
            self.s.keys.jobs, GROUP, self.consumer, min_idle_time=self.claim_idle_ms, count=1
        )
        return [e for e in resp[1] if e and e[1] is not None]

    def execute(self, eid: Any, fields: Mapping[Any, Any]) -> None:
        raw = fields.get(b"job_id") or fields.get("job_id")
        job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        job = self.jobs.start(job_id, self.consumer)
        if job is None:  # finished (or expired) already
            self.r.xack(self.s.keys.jobs, GROUP, eid)
            return
        if job["attempts"] > MAX_ATTEMPTS:
            self.jobs.fail(job_id, f"gave up after {MAX_ATTEMPTS} attempts (workers died)")
            self.r.xack(self.s.keys.jobs, GROUP, eid)
            return
        beat = threading.Event()
        hb = threading.Thread(target=self._heartbeat, args=(eid, beat), daemon=True)
        try:
            self._lock()
        except JobLockBusy:
            # Another job runs somewhere: leave this one queued and retry later.
            self.r.hset(self.s.keys.job(job_id), mapping={"state": "queued", "stage": "waiting"})
            self.r.hincrby(self.s.keys.job(job_id), "attempts", -1)
            return
        hb.start()
        log.info("job %s (%s) started", job_id, job["kind"])
        try:
            result = self._dispatch_retrying(job)
            self.jobs.finish(job_id, result)
            log.info("job %s (%s) succeeded: %s", job_id, job["kind"], result)
        except JobError as e:
            self.jobs.fail(job_id, str(e))
            log.warning("job %s (%s) failed: %s", job_id, job["kind"], e)
        except Exception as e:
            self.jobs.fail(job_id, f"{type(e).__name__}: {e}")
            log.exception("job %s (%s) failed", job_id, job["kind"])
        finally:
            beat.set()
            hb.join()
            self._unlock()
            self.r.xack(self.s.keys.jobs, GROUP, eid)

    def _dispatch_retrying(self, job: dict[str, Any]) -> dict[str, Any]:
        """`_dispatch`, run again with a growing wait while a dependency is unreachable (the
        job says so in its `stage`); the last failure is the job's error."""
        wait = self.dep_wait_s
        for attempt in range(1, DEPENDENCY_RETRIES + 1):
            try:
                return self._dispatch(job)
            except DEPENDENCY_ERRORS as e:
                dep = "Milvus" if isinstance(e, MilvusException) else "Redis"
                log.warning(
                    "job %s (%s): %s unreachable (%s); retry %d of %d in %.0f s",
                    job["id"],
                    job["kind"],
                    dep,
                    str(e).splitlines()[0][:200],
                    attempt,
                    DEPENDENCY_RETRIES,
                    wait,
                )
                with contextlib.suppress(redis.RedisError):
                    stage = f"waiting for {dep} (retry {attempt} of {DEPENDENCY_RETRIES})"
                    self.r.hset(self.s.keys.job(job["id"]), "stage", stage)
                time.sleep(wait)
                wait = min(wait * 2, 160.0)
                if "released" in str(e):  # a restarted Milvus has its collections unloaded
                    with contextlib.suppress(MilvusException):
                        load_all(
                            self.s.items.client, self.s.items.names, timeout_s=RELOAD_TIMEOUT_S
                        )
        return self._dispatch(job)

    def _dispatch(self, job: dict[str, Any]) -> dict[str, Any]:
        params = job.get("params") or {}
        job_id = job["id"]

        def progress(done: int, total: int, stage: str) -> None:
            self.jobs.progress(job_id, done, total, stage=stage)

        if job["kind"] == "reindex":
            w, m = self.settings.worker, self.settings.models
            return Reindexer(
                self.s,
                ReindexParams(
                    model=params.get("model"),
                    batch_size=int(params.get("batch_size") or w.reindex_batch),
                    grace_s=w.reindex_grace_s,
                    text_dim=m.text_dim,
                    cf_dim=m.cf_dim,
                    consistency=self.settings.milvus.consistency,
                ),
                progress,
            ).run()
        if job["kind"] == "train":
            return self._train(job_id)
        raise JobError(f"unknown job kind {job['kind']!r}")

    def _train(self, job_id: str) -> dict[str, Any]:
        """`vantage train` in a child process: training memory never stays in the worker."""
        cmd = [sys.executable, "-m", "vantage.cli", "train", "--job", job_id]
        env = {**os.environ, **settings_env(self.settings), "HF_HUB_OFFLINE": "1"}
        # Own process group, killed with this job: a stopped worker leaves no orphan training
        # beside the job's next attempt.
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=TRAIN_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.returncode != 0:
            tail = (stderr or stdout).strip().splitlines()[-5:]
            raise JobError(f"training exited with {proc.returncode}: {' | '.join(tail)}")
        lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
        return json.loads(lines[-1]) if lines else {}

    # The one-job-at-a-time lock, renewed by the heartbeat; expires if the holder dies.
    def _lock(self) -> None:
        if not self.r.set(self.s.keys.job_lock, self.consumer, nx=True, px=self.claim_idle_ms):
            holder = self.r.get(self.s.keys.job_lock)
            if holder is None or text(holder) != self.consumer:
                raise JobLockBusy(holder)

    def _unlock(self) -> None:
        holder = self.r.get(self.s.keys.job_lock)
        if holder is not None and text(holder) == self.consumer:
            self.r.delete(self.s.keys.job_lock)

    def _heartbeat(self, eid: Any, done: threading.Event) -> None:
        period = max(self.claim_idle_ms / 4000, 0.2)
        while not done.wait(period):
            try:
                # Claiming our own entry resets its idle time: nobody takes a live job over.
                self.r.xclaim(self.s.keys.jobs, GROUP, self.consumer, 0, [eid], justid=True)
                self.r.pexpire(self.s.keys.job_lock, self.claim_idle_ms)
            except redis.RedisError as e:
                log.warning("job heartbeat failed: %s", e)
