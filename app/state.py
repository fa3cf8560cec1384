"""Typed application state: everything the lifespan creates and the handlers use."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import redis
from pymilvus import MilvusClient

from app.auth import Authenticator
from app.impressions import ImpressionLogger
from app.pipeline.fallback import PopularSnapshot
from app.resilience import Breakers
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
    breakers: Breakers = field(default_factory=Breakers)
    snapshot: PopularSnapshot = field(default_factory=PopularSnapshot)
    config_tag: str = field(init=False)
    # Not started here: only the API lifespan runs its thread (until then `log()` is a no-op,
    # so the evaluation harness and scripts do not count impressions).
    impressions: ImpressionLogger = field(init=False)

    def __post_init__(self) -> None:
        self.auth = Authenticator(self.redis, self.keys)
        self.impressions = ImpressionLogger(self.redis, self.keys)
        # Fingerprint of everything that shapes a result list (part of result-cache keys).
        raw = self.settings.serving.model_dump_json().encode()
        self.config_tag = hashlib.blake2b(raw, digest_size=6).hexdigest()
