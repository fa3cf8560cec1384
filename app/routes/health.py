from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.collectors import last_catalogue_count
from app.deps import StateDep
from app.schemas import Health
from app.services.admin import worker_health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(state: StateDep) -> JSONResponse:
    """Readiness: Redis and Milvus both answer (503 otherwise). `checks.workers` reports the
    indexing workers: `missing` (none alive), `stuck` (events waiting and no acknowledgement
    for a minute) or `ok`; it does not change the status code, so a worker outage never takes
    the API out of a load balancer (recommendations do not need the workers). `item_cache`
    says how many items this process holds and whether its warm-up has read the current
    collection (until then, requests read what it lacks from Milvus: slower, not wrong)."""
    checks: dict[str, object] = {}
    try:
        checks["redis"] = "ok" if state.redis.ping() else "no pong"
    except Exception as e:
        checks["redis"] = f"error: {type(e).__name__}: {e}"[:300]
    try:
        # A query by primary key proves Milvus answers; a count scans every row on Milvus
        # Lite (seconds at 1M items, past the probe's timeout), so `items` is the last count
        # of `/metrics` (null before the first).
        state.items.ping()
        checks["milvus"] = "ok"
        checks["items"] = last_catalogue_count(state)
    except Exception as e:
        checks["milvus"] = f"error: {type(e).__name__}: {e}"[:300]
    if checks["redis"] == "ok":
        checks["workers"] = worker_health(state)
    checks["breakers"] = state.breakers.states()
    checks["popular_snapshot_items"] = len(state.snapshot)
    cache = state.item_cache
    checks["item_cache"] = {
        "items": len(cache),
        "max_items": cache.max_items,
        "warm": cache.warmed is not None and cache.warmed == state.items.collection,
    }
    ok = checks["redis"] == "ok" and checks["milvus"] == "ok"
    body = Health(status="ready" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
