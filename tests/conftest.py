"""Shared fixtures. Server fixtures are session-scoped and opt-in; names are unique per test.

Servers: Milvus and Redis from testcontainers when a Docker engine answers, otherwise a Milvus
Lite server and a real redis-server started as child processes (same protocols either way).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from core.keys import Keys
from core.settings import Settings
from vantage.cluster import LocalCluster, start_cluster
from vantage.stack import start_milvus_lite, start_redis

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"


def docker_engine_available() -> bool:
    """True only when a Docker engine answers (the CLI alone is not enough)."""
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextlib.contextmanager
def _containers() -> Iterator[dict[str, str]]:
    from testcontainers.community.milvus import MilvusContainer
    from testcontainers.community.redis import RedisContainer

    # Same images as compose.yaml, so tests and deployments agree.
    with (
        MilvusContainer("milvusdb/milvus:v2.5.10") as milvus,
        RedisContainer("redis:7.4-alpine") as redis_c,
    ):
        host = redis_c.get_container_host_ip()
        port = redis_c.get_exposed_port(6379)
        yield {"milvus_uri": milvus.get_connection_url(), "redis_url": f"redis://{host}:{port}/0"}


@contextlib.contextmanager
def _local_processes(tmp: Path) -> Iterator[dict[str, str]]:
    redis_srv = start_redis(tmp / "redis")
    try:
        milvus_srv = start_milvus_lite(tmp / "milvus.db")
    except BaseException:
        redis_srv.stop()
        raise
    try:
        yield {
            "milvus_uri": milvus_srv.url,
            "redis_url": redis_srv.url,
            "redis_pid": str(redis_srv.proc.pid),
        }
    finally:
        milvus_srv.stop()
        redis_srv.stop()


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """URLs of a live Milvus and a live Redis for the whole session."""
    use_docker = os.environ.get("VANTAGE_TEST_DOCKER", "auto")
    if use_docker == "1" or (use_docker == "auto" and docker_engine_available()):
        ctx = _containers()
    else:
        ctx = _local_processes(tmp_path_factory.mktemp("servers"))
    with ctx as info:
        yield info


def make_settings(servers: dict[str, str], **overrides: object) -> Settings:
    """Settings with collection names and key prefix unique to one test."""
    tag = "t" + uuid.uuid4().hex[:10]
    s = Settings(
        env="test",
        milvus={
            "uri": servers["milvus_uri"],
            # Tests read right after writing; a Milvus server must not answer from a stale view.
            "consistency": "Strong",
            "items_alias": f"{tag}_items",
            "users_collection": f"{tag}_users",
        },
        redis={"url": servers["redis_url"], "key_prefix": tag},
    )
    return s.model_copy(update=overrides) if overrides else s


@pytest.fixture
def settings(servers: dict[str, str]) -> Iterator[Settings]:
    s = make_settings(servers)
    yield s
    _drop_test_data(s)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real Redis Cluster on loopback (3 masters + 3 replicas), for the `cluster` tests."""
    cluster = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_settings(servers: dict[str, str], redis_cluster: LocalCluster) -> Iterator[Settings]:
    """Settings of one test on the Redis Cluster (Milvus as for every test)."""
    s = make_settings({**servers, "redis_url": redis_cluster.url})
    s = s.model_copy(update={"redis": s.redis.model_copy(update={"cluster": True})})
    yield s
    _drop_test_data(s)


def _drop_test_data(s: Settings) -> None:
    """Remove this test's collections and keys so the shared servers stay small."""
    from core.connect import connect_milvus, connect_redis

    with contextlib.suppress(Exception):
        m = connect_milvus(s)
        aliases = m.list_aliases().get("aliases", [])
        if s.milvus.items_alias in aliases:
            m.drop_alias(s.milvus.items_alias)
        for c in m.list_collections():
            if c.startswith(s.redis.key_prefix + "_"):
                m.drop_collection(c)
        m.close()
    with contextlib.suppress(Exception):
        r = connect_redis(s)
        keys = list(r.scan_iter(match=Keys.of(s.redis).scan_pattern, count=1000))
        for i in range(0, len(keys), 500):
            r.delete(*keys[i : i + 500])
        r.close()


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The real default text model, loaded once per session."""
    from embeddings.text import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture
def stores(settings: Settings, embedder):  # type: ignore[no-untyped-def]
    from indexing.connect import build_stores

    s = build_stores(settings, embedder=embedder)
    yield s
    s.redis.close()
    s.items.client.close()


@pytest.fixture
def worker(stores, settings):  # type: ignore[no-untyped-def]
    """A worker driven synchronously by the test (`worker.drain()`)."""
    from indexing.worker import Worker

    return Worker(stores, consumer="test-worker", block_ms=50)


def admin_token(settings: Settings, scopes: tuple[str, ...] = ("admin",)) -> str:
    """A fresh API key (generous limits) for a test's key prefix."""
    from app.auth import KeyStore
    from core.connect import connect_redis
    from core.keys import Keys

    r = connect_redis(settings)
    try:
        token, _ = KeyStore(r, Keys.of(settings.redis)).create(
            "test", list(scopes), rate=10_000, burst=10_000
        )
    finally:
        r.close()
    return token


def authed(app, settings: Settings):  # type: ignore[no-untyped-def]
    """A TestClient for `app` that sends an admin key."""
    from fastapi.testclient import TestClient

    return TestClient(app, headers={"Authorization": f"Bearer {admin_token(settings)}"})


@pytest.fixture
def client(settings: Settings):  # type: ignore[no-untyped-def]
    """An httpx-based client against the app with its lifespan running (admin key)."""
    from app.main import create_app

    with authed(create_app(settings), settings) as c:
        yield c


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    if not DATASETS.is_dir():
        pytest.skip(f"shared datasets not found at {DATASETS}")
    return DATASETS
