"""Benchmark helpers: a throw-away embedded stack and settings pointing at it."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from vantage.config import Settings
from vantage.stack import start_milvus_lite, start_redis

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@contextlib.contextmanager
def fresh_stack() -> Iterator[Settings]:
    """Start redis-server and Milvus Lite in a temp dir; yield settings for them."""
    tmp = Path(tempfile.mkdtemp(prefix="vantage-bench-"))
    redis_srv = start_redis(tmp / "redis")
    milvus_srv = start_milvus_lite(tmp / "milvus.db")
    tag = "b" + uuid.uuid4().hex[:8]
    try:
        yield Settings(
            milvus={
                "uri": milvus_srv.url,
                "items_alias": f"{tag}_items",
                "users_collection": f"{tag}_users",
            },
            redis={"url": redis_srv.url, "key_prefix": tag},
            data_dir=tmp,
        )
    finally:
        milvus_srv.stop()
        redis_srv.stop()
