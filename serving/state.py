"""The read path's state: the stores a request reads, caches and threads (one per process).

`ServingState` names only the store protocols (`core.stores.protocols`), so the pipeline runs
on the real stores (`build_state`: Milvus and Redis) or on the in-memory ones
(`memory_state`: tests, in milliseconds). `ConnectedState` adds the clients behind the real
stores, for the HTTP shell's admin routes and for training.
"""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import redis
from pymilvus import MilvusClient

from core.connect import connect_milvus, connect_redis, prepare_collections
from core.keys import Keys
from core.resilience import Breakers
from core.settings import Settings
from core.stores.cache import RedisResultCache
from core.stores.candidates import RedisCandidates
from core.stores.catalogue import RedisCatalogue
from core.stores.item_cache import ItemMetaCache
from core.stores.items import ItemStore
from core.stores.memory import (
    MemoryCandidates,
    MemoryCatalogue,
    MemoryItemIndex,
    MemoryResultCache,
    MemoryUserState,
    RecordingImpressions,
    StaticModels,
    StaticRules,
)
from core.stores.protocols import (
    CandidateStore,
    CatalogueState,
    ImpressionSink,
    ItemIndex,
    ModelSource,
    ResultCache,
    RuleSource,
    UserState,
)
from core.stores.registry import ModelRegistry
from core.stores.rules import RuleStore
from core.stores.schema import CollectionNames
from core.stores.users import RedisUserState
from serving.fallback import PopularSnapshot
from serving.impressions import ImpressionLogger

S = TypeVar("S", bound="ConnectedState")


def config_tag(settings: Settings) -> str:
    """Fingerprint of everything that shapes a result list (part of result-cache keys)."""
    raw = json.dumps(
        [
            settings.serving.model_dump(mode="json"),
            {n: s.model_dump(mode="json") for n, s in settings.surfaces.items()},
        ],
        sort_keys=True,
    ).encode()
    return hashlib.blake2b(raw, digest_size=6).hexdigest()


# A request shape's last good list is written again at most this often while its filters
# (maturity, region, language) stay the same: it is what an outage serves, and a list a minute
# old serves as well as the newest (one write per cold request was 2-3% of its CPU).
LAST_GOOD_EVERY_S = 60.0


class RecentWrites:
    """When this process last wrote each key, and with what tag (bounded, oldest forgotten
    first): `due` says whether to write it again."""

    def __init__(self, every_s: float = LAST_GOOD_EVERY_S, max_keys: int = 100_000):
        self.every_s, self.max_keys = every_s, max_keys
        self._at: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def due(self, key: str, tag: object, now: float) -> bool:
        """Whether `key` needs writing (not written with `tag` in the last `every_s`);
        if so, it counts as written now."""
        with self._lock:
            last = self._at.get(key)
            if last is not None and last[1] == tag and now - last[0] < self.every_s:
                return False
            self._at.pop(key, None)
            self._at[key] = (now, tag)
            if len(self._at) > self.max_keys:
                del self._at[next(iter(self._at))]
            return True

    def forget(self, key: str) -> None:
        """Write `key` at its next chance (its write failed)."""
        with self._lock:
            self._at.pop(key, None)


@dataclass(kw_only=True)
class ServingState:
    settings: Settings
    keys: Keys
    items: ItemIndex
    catalogue: CatalogueState
    users: UserState
    cache: ResultCache
    rules: RuleSource
    models: ModelSource
    # Not started by the state: only the API lifespan runs the real logger's thread (until
    # then `log()` is a no-op, so the evaluation harness and scripts count no impressions).
    impressions: ImpressionSink
    candidates: CandidateStore
    breakers: Breakers = field(default_factory=Breakers)
    snapshot: PopularSnapshot = field(default_factory=PopularSnapshot)
    # Item vectors and metadata in process (bounded; re-read when the change log says so).
    item_cache: ItemMetaCache = field(default_factory=ItemMetaCache)
    last_good: RecentWrites = field(default_factory=RecentWrites)  # last good lists written
    config_tag: str = field(init=False)
    # Candidate sources of one request run concurrently here (Milvus and Redis calls wait on
    # sockets, so threads overlap them despite the GIL).
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=16, thread_name_prefix="source")
    )

    def __post_init__(self) -> None:
        self.config_tag = config_tag(self.settings)

    def close(self) -> None:
        """Release the threads this state owns."""
        self.pool.shutdown(wait=False, cancel_futures=True)


@dataclass(kw_only=True)
class ConnectedState(ServingState):
    """The read path on real servers, with the clients behind its stores."""

    redis: redis.Redis  # bytes (vectors); the stores' text reads use their own client
    milvus: MilvusClient
    names: CollectionNames
    items: ItemStore
    rules: RuleStore
    models: ModelRegistry
    impressions: ImpressionLogger

    def close(self) -> None:
        """Release every client and thread this state owns."""
        super().close()
        self.redis.close()
        self.milvus.close()


def build_state(settings: Settings, cls: type[S] | None = None) -> S:
    """Connect to Redis and Milvus, make sure the collections exist, build the stores."""
    milvus = connect_milvus(settings)
    names = prepare_collections(settings, milvus)
    cfg = settings.serving
    # Serving's Redis budget: a hung Redis fails a call in this long, not the socket default.
    budget_s = cfg.redis_budget_ms / 1000
    r = connect_redis(settings, timeout_s=budget_s)
    text = connect_redis(settings, timeout_s=budget_s, decode=True)
    keys = Keys.of(settings.redis)
    breakers = Breakers(cfg.breaker_fail_max, cfg.breaker_reset_s)
    return (cls or ConnectedState)(  # type: ignore[return-value]
        settings=settings,
        keys=keys,
        redis=r,
        milvus=milvus,
        names=names,
        items=ItemStore(
            milvus, names, timeout_s=cfg.milvus_budget_ms / 1000, breaker=breakers.milvus
        ),
        catalogue=RedisCatalogue(text, keys, breakers.redis, follow=True),
        users=RedisUserState(r, keys, breakers.redis),
        cache=RedisResultCache(text, breakers.redis, local_entries=cfg.local_cache_entries),
        candidates=RedisCandidates(text, keys, breakers.redis),
        rules=RuleStore(r, keys),
        models=ModelRegistry(r, keys, settings.models_dir),
        impressions=ImpressionLogger(
            r, keys, ttl_s=cfg.attribution_window_s, stream_maxlen=cfg.impressions_stream_max
        ),
        breakers=breakers,
        snapshot=PopularSnapshot(cfg.snapshot_size),
        item_cache=ItemMetaCache(max_items=cfg.item_cache_items),
    )


@dataclass(kw_only=True)
class MemoryState(ServingState):
    """The read path on in-memory stores, which a test seeds directly."""

    items: MemoryItemIndex
    catalogue: MemoryCatalogue
    users: MemoryUserState
    cache: MemoryResultCache
    candidates: MemoryCandidates
    rules: StaticRules
    models: StaticModels
    impressions: RecordingImpressions


def memory_state(settings: Settings) -> MemoryState:
    """A serving state on empty in-memory stores (no servers; seed them, then recommend)."""
    return MemoryState(
        settings=settings,
        keys=Keys.of(settings.redis),
        items=MemoryItemIndex(),
        catalogue=MemoryCatalogue(),
        users=MemoryUserState(),
        cache=MemoryResultCache(),
        candidates=MemoryCandidates(),
        rules=StaticRules(),
        models=StaticModels(),
        impressions=RecordingImpressions(),
        snapshot=PopularSnapshot(settings.serving.snapshot_size),
    )
