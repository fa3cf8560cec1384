"""Isolated namespaces on the same servers, for evaluation and for training the ranker.

A namespace is a Redis key prefix plus its own Milvus collections, so a run never touches
the served data; it is dropped when the run ends.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from core.settings import Settings
from indexing.apply import Stores


def eval_settings(base: Settings, serving: dict[str, Any] | None = None) -> Settings:
    """Settings for an isolated evaluation namespace on the same servers."""
    tag = "eval" + uuid.uuid4().hex[:8]
    # Full-ranking protocols exclude every train item, however long the history; the data's
    # users have no language in their profiles, so nothing is filtered by it.
    # Offline work has no request budget: a large catalogue's Milvus calls take what they take
    # (with the serving budget, training at 100k items failed on `milvus_timeout`).
    serving_update = {
        "cache_ttl_s": 0.0,
        "history_exclude": 10_000,
        "milvus_budget_ms": 60_000,
        "redis_budget_ms": 30_000,
    }
    # Offline: no time budget (a busy machine must not turn sources into "over budget").
    surfaces = {n: s.model_copy(update={"budget_ms": 60_000}) for n, s in base.surfaces.items()}
    return base.model_copy(
        update={
            "milvus": base.milvus.model_copy(
                update={"items_alias": f"{tag}_items", "users_collection": f"{tag}_users"}
            ),
            "redis": base.redis.model_copy(update={"key_prefix": tag}),
            "serving": base.serving.model_copy(update={**serving_update, **(serving or {})}),
            "worker": base.worker.model_copy(update={"history_len": 10_000}),
            "surfaces": surfaces,
        }
    )


def drop_namespace(settings: Settings, stores: Stores) -> None:
    """Remove a temporary namespace's collections and keys."""
    prefix = settings.redis.key_prefix
    m = stores.items.client
    with contextlib.suppress(Exception):
        if settings.milvus.items_alias in m.list_aliases().get("aliases", []):
            m.drop_alias(settings.milvus.items_alias)
    with contextlib.suppress(Exception):
        for c in m.list_collections():
            if c.startswith(prefix + "_"):
                m.drop_collection(c)
    with contextlib.suppress(Exception):
        keys = list(stores.redis.scan_iter(match=stores.keys.scan_pattern, count=1000))
        for i in range(0, len(keys), 500):
            stores.redis.delete(*keys[i : i + 500])
