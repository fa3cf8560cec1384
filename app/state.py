"""Typed application state: everything the lifespan creates and the handlers use."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from pymilvus import MilvusClient

from indexing.keys import Keys
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
