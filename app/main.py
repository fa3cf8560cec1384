"""The FastAPI application: `create_app()` wires routes, errors and the lifespan."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pymilvus.exceptions import MilvusException

from app import collectors
from app.auth import require
from app.docs import install_docs
from app.errors import error_response, install_error_handlers
from app.middleware import RequestMiddleware
from app.openapi import install_openapi
from app.routes import (
    admin,
    analytics,
    canary,
    console,
    controls,
    experiments,
    health,
    interactions,
    items,
    keys,
    ope,
    recommendations,
    rules,
    search,
    sessions,
    user_list,
    users,
    whynot,
)
from app.services import canary as canary_service
from app.state import AppState
from core.errors import DependencyUnavailable
from core.settings import Settings, get_settings
from core.tracing import configure as tracing_from_env
from serving import itemmeta
from serving.state import build_state

log = logging.getLogger(__name__)


def _background(
    state: AppState, settings: Settings, stop: threading.Event
) -> list[threading.Thread]:
    """The API's own background work: the popular snapshot (first one before serving, best
    effort, then refreshed) and, if on, reading the catalogue into the item cache."""
    threads = [
        threading.Thread(
            target=state.snapshot.run,
            args=(state, stop, settings.serving.snapshot_refresh_s),
            name="popular-snapshot",
            daemon=True,
        )
    ]
    threads.append(
        threading.Thread(
            target=canary_service.loop,
            args=(state, stop, settings.canary.check_s),
            name="ranker-canary",
            daemon=True,
        )
    )
    if settings.candidates.warm_item_cache:
        threads.append(
            threading.Thread(
                target=itemmeta.warm, args=(state, stop), name="item-cache-warm", daemon=True
            )
        )
    for t in threads:
        t.start()
    return threads


# Every router, in the order the schema lists them, and in which a request's path is matched
# against them: the hot routes first (matching the list route ninth cost about 5% of a
# result-cache hit's CPU).
ROUTES = (
    *(recommendations, interactions, whynot, health, items, search, users, controls, sessions),
    *(admin, canary, ope, rules, analytics, experiments, keys, user_list),
)


# The cyclic collector's thresholds in the API process. A computed list allocates and frees
# thousands of containers; at CPython's default (700, 10, 10) the young generation was
# collected more than once per request, 0.54-0.66 ms of a 16-18 ms cold request from candidate
# sets (gc.callbacks, ml-latest-small). At these thresholds a request's garbage is freed by
# reference counting long before a collection is due (none in 500 requests), and the long-
# lived caches are frozen out of the collector's sight (serving.itemmeta).
GC_THRESHOLDS = (20_000, 50, 100)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tracing = tracing_from_env("vantage-api")  # off unless the OTEL_* variables ask
        state = build_state(settings, AppState)
        app.state.vantage = state
        gc.set_threshold(*GC_THRESHOLDS)
        stop = threading.Event()
        threads = _background(state, settings, stop)
        state.impressions.start()
        collectors.register_pipeline(state)
        log.info("vantage API ready (milvus %s, redis %s)", settings.milvus.uri, settings.redis.url)
        try:
            yield
        finally:
            stop.set()
            for t in threads:
                t.join(5)
            state.impressions.stop()  # writes what is queued, while Redis is still open
            state.close()
            if tracing is not None:
                tracing.shutdown()  # exports the spans still batched

    app = FastAPI(
        title="Vantage",
        version="0.1.0",
        summary="Recommendations from Milvus retrieval, learned from every interaction.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    install_openapi(app, settings)
    install_docs(app)
    app.add_middleware(RequestMiddleware, max_body_bytes=settings.serving.max_body_bytes)

    @app.exception_handler(redis.RedisError)
    async def _redis_down(_: Request, exc: redis.RedisError) -> JSONResponse:
        return await _unavailable("redis", exc)

    @app.exception_handler(MilvusException)
    async def _milvus_down(_: Request, exc: MilvusException) -> JSONResponse:
        return await _unavailable("milvus", exc)

    for r in ROUTES:
        app.include_router(r.router)
    console.install(app, settings)  # /console, unless serving.console_enabled is off

    metrics_deps = [] if settings.auth.metrics_public else [Depends(require("admin"))]

    @app.get("/metrics", tags=["operations"], dependencies=metrics_deps, include_in_schema=False)
    def prometheus() -> Response:
        """Prometheus metrics (scope admin unless VANTAGE_AUTH__METRICS_PUBLIC)."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app


async def _unavailable(dep: str, exc: Exception) -> JSONResponse:
    log.warning("%s error: %s", dep, exc)
    return error_response(DependencyUnavailable(f"{dep} is unavailable; retry shortly"))
