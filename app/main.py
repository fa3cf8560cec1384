"""The FastAPI application: `create_app()` wires routes, errors and the lifespan."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pymilvus.exceptions import MilvusException

from app import metrics
from app.auth import require
from app.docs import install_docs
from app.errors import DependencyUnavailable, error_response, install_error_handlers
from app.middleware import RequestMiddleware
from app.openapi import install_openapi
from app.pipeline.fallback import PopularSnapshot
from app.resilience import Breakers
from app.routes import (
    admin,
    analytics,
    health,
    interactions,
    items,
    recommendations,
    rules,
    users,
)
from app.state import AppState
from indexing.connect import connect_milvus, connect_redis, prepare_collections
from indexing.keys import Keys
from indexing.registry import ModelRegistry
from indexing.store import ItemStore
from vantage.config import Settings, get_settings

log = logging.getLogger(__name__)


def build_state(settings: Settings) -> AppState:
    """Connect to Redis and Milvus and make sure the collections exist."""
    milvus = connect_milvus(settings)
    names = prepare_collections(settings, milvus)
    # Serving's Redis budget: a hung Redis fails a call in this long, not the socket default.
    r = connect_redis(settings, timeout_s=settings.serving.redis_budget_ms / 1000)
    keys = Keys(settings.redis.key_prefix)
    cfg = settings.serving
    return AppState(
        settings=settings,
        redis=r,
        milvus=milvus,
        names=names,
        keys=keys,
        items=ItemStore(milvus, names, timeout_s=cfg.milvus_budget_ms / 1000),
        models=ModelRegistry(r, keys, settings.models_dir),
        breakers=Breakers(cfg.breaker_fail_max, cfg.breaker_reset_s),
        snapshot=PopularSnapshot(cfg.snapshot_size),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = build_state(settings)
        app.state.vantage = state
        stop = threading.Event()
        # First snapshot before serving (best effort), then refreshed in the background.
        refresher = threading.Thread(
            target=state.snapshot.run,
            args=(state, stop, settings.serving.snapshot_refresh_s),
            name="popular-snapshot",
            daemon=True,
        )
        refresher.start()
        state.impressions.start()
        metrics.register_pipeline(state)
        log.info("vantage API ready (milvus %s, redis %s)", settings.milvus.uri, settings.redis.url)
        try:
            yield
        finally:
            stop.set()
            refresher.join(5)
            state.impressions.stop()  # writes what is queued, while Redis is still open
            state.close()

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

    for r in (health, items, users, interactions, recommendations, admin, rules, analytics):
        app.include_router(r.router)

    metrics_deps = [] if settings.auth.metrics_public else [Depends(require("admin"))]

    @app.get("/metrics", tags=["operations"], dependencies=metrics_deps, include_in_schema=False)
    def prometheus() -> Response:
        """Prometheus metrics (scope admin unless VANTAGE_AUTH__METRICS_PUBLIC)."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app


async def _unavailable(dep: str, exc: Exception) -> JSONResponse:
    log.warning("%s error: %s", dep, exc)
    return error_response(DependencyUnavailable(f"{dep} is unavailable; retry shortly"))
