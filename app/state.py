"""Typed application state: everything the lifespan creates and the handlers use."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import redis
from pymilvus import MilvusClient

from app.auth import Authenticator
from app.impressions import ImpressionLogger
from app.pipeline.fallback import PopularSnapshot
from app.resilience import Breakers
from app.rules import RuleStore
from indexing.keys import Keys
from indexing.registry import ModelRegistry
from indexing.schema import CollectionNames
from indexing.store import ItemStore
from vantage.config import Settings


@dataclass
class AppState:
    settings: Settings
    redis: redis.Redis
    milvus: MilvusClient
    names: CollectionNames
    keys: Keys
    items: ItemStore
    models: ModelRegistry
    auth: Authenticator = field(init=False)
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
        self.auth = Authenticator(self.redis, self.keys)
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
