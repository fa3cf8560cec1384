"""The read path's state: clients, stores and caches a request needs (built once per process)."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import redis
from pymilvus import MilvusClient

from core.connect import connect_milvus, connect_redis, prepare_collections
from core.keys import Keys
from core.resilience import Breakers
from core.rules import RuleStore
from core.settings import Settings
from core.stores.items import ItemStore
from core.stores.registry import ModelRegistry
from core.stores.schema import CollectionNames
from serving.fallback import PopularSnapshot
from serving.impressions import ImpressionLogger

S = TypeVar("S", bound="ServingState")


@dataclass
class ServingState:
    settings: Settings
    redis: redis.Redis
    milvus: MilvusClient
    names: CollectionNames
    keys: Keys
    items: ItemStore
    models: ModelRegistry
    rules: RuleStore = field(init=False)
    breakers: Breakers = field(default_factory=Breakers)
    snapshot: PopularSnapshot = field(default_factory=PopularSnapshot)
    config_tag: str = field(init=False)
    # Candidate sources of one request run concurrently here (Milvus and Redis calls wait on
    # sockets, so threads overlap them despite the GIL).
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=16, thread_name_prefix="source")
    )
    # Not started here: only the API lifespan runs its thread (until then `log()` is a no-op,
    # so the evaluation harness and scripts do not count impressions).
    impressions: ImpressionLogger = field(init=False)

    def __post_init__(self) -> None:
        self.rules = RuleStore(self.redis, self.keys)
        imp = self.settings.serving
        self.impressions = ImpressionLogger(
            self.redis,
            self.keys,
            ttl_s=imp.attribution_window_s,
            stream_maxlen=imp.impressions_stream_max,
        )
        # Fingerprint of everything that shapes a result list (part of result-cache keys).
        raw = json.dumps(
            [
                self.settings.serving.model_dump(mode="json"),
                {n: s.model_dump(mode="json") for n, s in self.settings.surfaces.items()},
            ],
            sort_keys=True,
        ).encode()
        self.config_tag = hashlib.blake2b(raw, digest_size=6).hexdigest()

    def close(self) -> None:
        """Release every client and thread this state owns."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.redis.close()
        self.milvus.close()


def build_state(settings: Settings, cls: type[S] | None = None) -> S:
    """Connect to Redis and Milvus and make sure the collections exist."""
    milvus = connect_milvus(settings)
    names = prepare_collections(settings, milvus)
    # Serving's Redis budget: a hung Redis fails a call in this long, not the socket default.
    r = connect_redis(settings, timeout_s=settings.serving.redis_budget_ms / 1000)
    keys = Keys(settings.redis.key_prefix)
    cfg = settings.serving
    return (cls or ServingState)(  # type: ignore[return-value]
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
