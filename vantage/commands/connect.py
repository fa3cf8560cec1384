"""Settings pointing at live servers, and the environment the commands' child processes get."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from core.settings import Settings, settings_env
from vantage.stack import embedded_stack, is_embedded


@contextlib.contextmanager
def resolved(settings: Settings, *, supervise: bool = False) -> Iterator[Settings]:
    """Settings pointing at live servers (starting the embedded ones when configured, and
    restarting any that dies while the block runs if `supervise`)."""
    if not is_embedded(settings.milvus.uri):
        yield settings
        return
    from urllib.parse import urlparse

    url = urlparse(settings.redis.url)
    # A cluster, or a Redis on another host, is used as it is: no redis-server of our own.
    external = settings.redis.cluster or url.hostname not in ("127.0.0.1", "localhost", "::1")
    with embedded_stack(
        settings.data_dir,
        Path(settings.milvus.uri),
        redis_port=url.port or 6379,
        milvus_port=19530,
        external_redis=settings.redis.url if external else None,
        supervise=supervise,
    ) as info:
        yield settings.model_copy(
            update={
                "milvus": settings.milvus.model_copy(update={"uri": info["milvus_uri"]}),
                "redis": settings.redis.model_copy(update={"url": info["redis_url"]}),
            }
        )


def child_env(s: Settings) -> dict[str, str]:
    """The environment of a process that must reach the same servers (`s` as variables)."""
    return {**os.environ, **settings_env(s), "HF_HUB_OFFLINE": "1"}
