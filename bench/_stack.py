"""Benchmark helpers: a throw-away embedded stack and settings pointing at it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from core.settings import Settings, settings_env
from vantage.cluster import start_cluster
from vantage.stack import free_port, port_open, start_milvus_lite, start_redis

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@contextlib.contextmanager
def fresh_stack(*, cluster: bool = False) -> Iterator[Settings]:
    """Start redis-server (or, with `cluster`, a 3-master + 3-replica Redis Cluster on
    loopback) and Milvus Lite in a temp dir; yield settings for them."""
    tmp = Path(tempfile.mkdtemp(prefix="vantage-bench-"))
    redis_srv = start_cluster(tmp / "cluster") if cluster else start_redis(tmp / "redis")
    milvus_srv = start_milvus_lite(tmp / "milvus.db")
    tag = "b" + uuid.uuid4().hex[:8]
    try:
        yield Settings(
            milvus={
                "uri": milvus_srv.url,
                "items_alias": f"{tag}_items",
                "users_collection": f"{tag}_users",
            },
            redis={"url": redis_srv.url, "key_prefix": tag, "cluster": cluster},
            data_dir=tmp,
        )
    finally:
        milvus_srv.stop()
        redis_srv.stop()


def child_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """Environment for an API or worker process on these settings (plus VANTAGE_* overrides)."""
    return {
        **os.environ,
        **settings_env(settings),
        "VANTAGE_LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        **overrides,
    }


def start_api(
    settings: Settings, *, workers: int = 1, **env: str
) -> tuple[subprocess.Popen[bytes], str]:
    """The API under uvicorn in its own process (`workers` > 1: uvicorn's worker processes on
    one socket, as `vantage serve --workers N`); (process, base URL)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            *(["--workers", str(workers)] if workers > 1 else []),
        ],
        env=child_env(settings, **env),
    )
    deadline = time.monotonic() + 60
    while not port_open("127.0.0.1", port):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("API did not start")
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def start_worker(settings: Settings, name: str, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "indexing", "--consumer", name], env=child_env(settings, **env)
    )


def admin_headers(settings: Settings) -> dict[str, str]:
    """An Authorization header with a fresh admin key (no practical rate limit) for a bench."""
    from app.auth import KeyStore
    from core.connect import connect_redis
    from core.keys import Keys

    r = connect_redis(settings)
    try:
        token, _ = KeyStore(r, Keys.of(settings.redis)).create(
            "bench", ["admin"], rate=1e6, burst=1_000_000
        )
    finally:
        r.close()
    return {"Authorization": f"Bearer {token}"}
