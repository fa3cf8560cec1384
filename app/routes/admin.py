"""Operator endpoints: re-index, model refresh, jobs, dead letters, queue status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from starlette.convertors import Convertor, register_url_convertor

from app.auth import require
from app.deps import StateDep
from app.errors import AUTHED, error_responses
from app.schemas import (
    EVENT_ID_PATTERN,
    DeadLetterPage,
    FeatureDrift,
    JobList,
    JobOut,
    MakeCurrentIn,
    ModelCurrent,
    QueueStatus,
    RankerDrift,
    ReindexIn,
    Replayed,
    ReplayIn,
)
from app.services import admin
from core.stores.jobs import KINDS
from serving.drift import MIN_ROWS, MONITOR, drift_level

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require("admin"))],
    responses=error_responses(*AUTHED),
)
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="job id (32 hex digits)")]
DeadId = Annotated[str, Path(pattern=EVENT_ID_PATTERN, description="dead-letter id")]


class StreamIdConvertor(Convertor[str]):
    """Routes `/dead-letters/{id}` only for stream ids, so `DELETE /dead-letters/replay` is
    405 (the path exists, for POST), not a refused dead-letter id."""

    regex = EVENT_ID_PATTERN.strip("^$")

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("streamid", StreamIdConvertor())


def _job_out(job: dict[str, Any]) -> JobOut:
    total, done = job.get("total") or 0, job.get("done") or 0
    return JobOut(
        **{k: v for k, v in job.items() if k in JobOut.model_fields and v != ""},
        progress=round(min(done / total, 1.0), 4) if total else 0.0,
        status_url=f"/v1/admin/jobs/{job['id']}",
    )


def _queued(response: Response, job: dict[str, Any], created: bool) -> JobOut:
    response.headers["Location"] = f"/v1/admin/jobs/{job['id']}"
    if not created:
        response.headers["X-Vantage-Job"] = "already-active"
    return _job_out(job)


@router.post("/reindex", status_code=202, response_model=JobOut, responses=error_responses(413))
def reindex(state: StateDep, response: Response, body: ReindexIn | None = None) -> JobOut:
    """Re-embed the whole catalogue into a new collection and swap it in without downtime.

    Answers at once with the job; follow it at `status_url`. While a re-index is queued or
    running, asking again returns that job (header `X-Vantage-Job: already-active`).
    """
    params = body.model_dump(exclude_none=True) if body else {}
    if "model" in params:
        params["model"] = admin.allowed_model(state, params["model"])
    job, created = admin.jobs(state).create("reindex", params)
    return _queued(response, job, created)


@router.post("/models/refresh", status_code=202, response_model=JobOut)
def refresh_models(state: StateDep, response: Response) -> JobOut:
    """Retrain the interaction model and the re-ranker from the event log, in a worker.

    Serving picks the new versions up without a restart once they are published."""
    job, created = admin.jobs(state).create("train")
    return _queued(response, job, created)


@router.get("/models")
def list_models(
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="versions per kind")] = 20,
) -> dict[str, Any]:
    """The current version and the newest `limit` versions of each model kind, with metrics."""
    return admin.models(state, limit)


@router.put(
    "/models/{kind}/current",
    response_model=ModelCurrent,
    responses=error_responses(404, 409, 413),
)
def make_current(
    kind: Annotated[str, Path(pattern="^(cf|ranker)$", description="model kind")],
    body: MakeCurrentIn,
    state: StateDep,
) -> ModelCurrent:
    """Serve an earlier version again (a rollback), in every process within a request or two.

    Only the re-ranker (`cf` answers 409: its vectors live in Milvus, retrain instead). A version
    withdrawn for a reason needs `force: true`; the current version is a no-op (`changed` false).
    """
    return ModelCurrent(**admin.make_current(state, kind, body.version, force=body.force))


@router.get("/models/ranker/drift", response_model=RankerDrift)
def ranker_drift() -> RankerDrift:
    """How far the rows the live ranker scores have moved from its training rows, per feature
    (this API process's traffic; the alert reads the same figures from `/metrics`)."""
    version, rows, by_feature = MONITOR.snapshot()
    features = [
        FeatureDrift(feature=f, psi=v, level=drift_level(v))
        for f, v in sorted(by_feature.items(), key=lambda kv: -kv[1])
    ]
    return RankerDrift(version=version, rows=rows, min_rows=MIN_ROWS, features=features)


@router.get("/jobs", response_model=JobList)
def list_jobs(
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    kind: Annotated[str | None, Query(pattern="^(" + "|".join(KINDS) + ")$")] = None,
) -> JobList:
    """Recent jobs, newest first."""
    return JobList(items=[_job_out(j) for j in admin.jobs(state).list(limit, kind)])


@router.get("/jobs/{job_id}", response_model=JobOut, responses=error_responses(404))
def get_job(job_id: JobId, state: StateDep) -> JobOut:
    """State, progress, rate and ETA of one job."""
    return _job_out(admin.get_job(state, job_id))


@router.get("/dead-letters", response_model=DeadLetterPage)
def dead_letters(
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(pattern=EVENT_ID_PATTERN)] = None,
) -> DeadLetterPage:
    """Events that could not be applied, oldest first, with the reason."""
    return DeadLetterPage(**admin.list_dead_letters(state, limit=limit, after=after))


@router.post("/dead-letters/replay", response_model=Replayed, responses=error_responses(413))
def replay(body: ReplayIn, state: StateDep) -> Replayed:
    """Put dead letters back on the queue (after fixing what made them fail).

    They keep their original identity: an event that was applied before failing is not
    applied twice."""
    return Replayed(**admin.replay_dead_letters(state, body.ids))


@router.delete("/dead-letters/{dead_id:streamid}", status_code=204, responses=error_responses(404))
def discard(dead_id: DeadId, state: StateDep) -> Response:
    """Drop one dead letter for good."""
    admin.discard_dead_letter(state, dead_id)
    return Response(status_code=204)


@router.get("/queue", response_model=QueueStatus)
def queue(state: StateDep) -> QueueStatus:
    """The event partitions: totals, and per partition its length, pending and undelivered
    entries, dead letters and worker; the consumers and the live workers."""
    return QueueStatus(**admin.queue_status(state))
