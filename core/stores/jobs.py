"""Long-running jobs (re-index, model refresh): queued by the API, run by a worker.

A job is a Redis hash (state, progress, rate, ETA, result) plus an entry on the jobs stream,
which workers consume with a consumer group: exactly one worker runs each job, and a job whose
worker died is reclaimed by another. At most one job per kind is queued or running (asking
again returns the active one), and jobs never run at the same time (a global lock).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from core.keys import Keys
from core.redis_typed import Fields, members, text, watch

KINDS = ("reindex", "train")
QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
ACTIVE = (QUEUED, RUNNING)
FINISHED = (SUCCEEDED, FAILED)
KEEP_FINISHED_S = 7 * 24 * 3600

_NUMERIC = {
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
    "done",
    "total",
    "rate",
    "eta_s",
    "attempts",
}
_JSON = {"params", "result"}


class JobError(RuntimeError):
    """A job failed for a reason worth showing to its owner (bad model name, ...)."""


@dataclass(frozen=True)
class JobStore:
    r: redis.Redis
    keys: Keys

    def create(
        self, kind: str, params: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Queue a job, or return the active one of that kind; (job, created)."""
        if kind not in KINDS:
            raise ValueError(f"unknown job kind {kind!r}; one of {', '.join(KINDS)}")
        job_id = uuid.uuid4().hex
        active = self.keys.job_active(kind)
        while True:
            with self.r.pipeline(transaction=True) as pipe:
                try:
                    watch(pipe, active)
                    cur = pipe.get(active)
                    if cur is not None:
                        state = pipe.hget(self.keys.job(text(cur)), "state")
                        if state is not None and text(state) in ACTIVE:
                            existing = self.get(text(cur))
                            if existing is not None:
                                return existing, False
                    now = repr(time.time())
                    pipe.multi()
                    pipe.set(active, job_id)
                    pipe.hset(
                        self.keys.job(job_id),
                        mapping={
                            "id": job_id,
                            "kind": kind,
                            "state": QUEUED,
                            "params": json.dumps(dict(params or {})),
                            "created_at": now,
                            "updated_at": now,
                            "done": 0,
                            "total": 0,
                            "attempts": 0,
                        },
                    )
                    pipe.zadd(self.keys.jobs_index, {job_id: float(now)})
                    pipe.xadd(self.keys.jobs, {"job_id": job_id})
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        job = self.get(job_id)
        assert job is not None
        return job, True

    def get(self, job_id: str) -> dict[str, Any] | None:
        raw = self.r.hgetall(self.keys.job(job_id))
        return _decode(raw) if raw else None

    def list(self, limit: int = 20, kind: str | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        ids = members(self.r.zrevrange(self.keys.jobs_index, 0, limit * 4 - 1))
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(self.keys.job(i))
        jobs = [_decode(raw) for raw in pipe.execute() if raw]
        return [j for j in jobs if kind is None or j["kind"] == kind][:limit]

    def start(self, job_id: str, consumer: str) -> dict[str, Any] | None:
        """Mark a job running (again, if a dead worker had it); None if it is finished."""
        job = self.get(job_id)
        if job is None or job["state"] in FINISHED:
            return None
        now = time.time()
        self.r.hset(
            self.keys.job(job_id),
            mapping={
                "state": RUNNING,
                "consumer": consumer,
                "started_at": repr(now),
                "updated_at": repr(now),
                "done": 0,
                "rate": 0,
            },
        )
        self.r.hincrby(self.keys.job(job_id), "attempts", 1)
        return self.get(job_id)

    def progress(
        self, job_id: str, done: int, total: int, *, stage: str = "", since: float | None = None
    ) -> None:
        """Record progress; rate and ETA are measured from `since` (or the job's start)."""
        now = time.time()
        fields: Fields = {
            "done": done,
            "total": total,
            "updated_at": repr(now),
        }
        if stage:
            fields["stage"] = stage
        start = since
        if start is None:
            raw = self.r.hget(self.keys.job(job_id), "started_at")
            start = float(raw) if raw else now
        elapsed = max(now - start, 1e-6)
        if done > 0:
            rate = done / elapsed
            fields["rate"] = round(rate, 2)
            fields["eta_s"] = round(max(total - done, 0) / rate, 1) if rate > 0 else ""
        self.r.hset(self.keys.job(job_id), mapping=fields)

    def finish(self, job_id: str, result: Mapping[str, Any]) -> None:
        self._end(job_id, {"state": SUCCEEDED, "result": json.dumps(dict(result)), "eta_s": 0})

    def fail(self, job_id: str, error: str) -> None:
        self._end(job_id, {"state": FAILED, "error": error[:2000]})

    def _end(self, job_id: str, fields: Fields) -> None:
        now = repr(time.time())
        key = self.keys.job(job_id)
        self.r.hset(key, mapping={**fields, "finished_at": now, "updated_at": now})
        self.r.expire(key, KEEP_FINISHED_S)
        kind = self.r.hget(key, "kind")
        if kind:
            self._clear_active(text(kind), job_id)

    def _clear_active(self, kind: str, job_id: str) -> None:
        key = self.keys.job_active(kind)
        with self.r.pipeline(transaction=True) as pipe:
            try:
                watch(pipe, key)
                cur = pipe.get(key)
                pipe.multi()
                if cur is not None and text(cur) == job_id:
                    pipe.delete(key)
                pipe.execute()
            except redis.WatchError:
                pass

    def prune(self) -> int:
        """Forget index entries of jobs whose hash expired."""
        ids = members(self.r.zrange(self.keys.jobs_index, 0, -1))
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.exists(self.keys.job(i))
        gone = [i for i, ok in zip(ids, pipe.execute(), strict=True) if not ok]
        if gone:
            self.r.zrem(self.keys.jobs_index, *gone)
        return len(gone)


def _decode(raw: Mapping[bytes | str, bytes | str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in raw.items():
        key, val = text(k), text(v)
        if key in _NUMERIC:
            out[key] = float(val) if val not in ("", "None") else None
            if key in ("done", "total", "attempts") and out[key] is not None:
                out[key] = int(out[key])
        elif key in _JSON:
            out[key] = json.loads(val) if val else None
        else:
            out[key] = val
    return out
