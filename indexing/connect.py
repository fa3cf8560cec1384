"""The write path's stores, connected from settings (each worker and CLI command builds its own)."""

from __future__ import annotations

import redis
from pymilvus import MilvusClient

from core.connect import (
    allowed_model,
    connect_milvus,
    connect_redis,
    load_embedder,
    prepare_collections,
)
from core.keys import Keys
from core.settings import Settings
from core.stores.candidates import RedisCandidates
from core.stores.eventlog import EventLog
from core.stores.items import ItemStore
from core.stores.registry import ModelRegistry
from core.stores.user_rows import UserStore
from embeddings.text import TextEmbedder
from indexing.apply import ApplySettings, Stores, TextModel, UnflushedWrites, UserSync


def build_stores(
    settings: Settings,
    *,
    log_writer: str | None = None,
    embedder: TextEmbedder | None = None,
    redis_client: redis.Redis | None = None,
    milvus: MilvusClient | None = None,
) -> Stores:
    """Connect everything the apply functions need and make sure the collections exist."""
    milvus = milvus or connect_milvus(settings)
    names = prepare_collections(settings, milvus)
    w = settings.worker
    r = redis_client or connect_redis(settings)
    keys = Keys.of(settings.redis)
    return Stores(
        redis=r,
        keys=keys,
        items=ItemStore(milvus, names),
        users=UserStore(milvus, names),
        settings=ApplySettings(
            cf_dim=settings.models.cf_dim,
            history_len=w.history_len,
            profile_items=w.profile_items,
            profile_half_life=w.profile_half_life_events,
            dedup_ttl_s=w.dedup_ttl_s,
            trending_half_life_s=w.trending_half_life_h * 3600,
            log_compaction_delay_s=w.log_compaction_delay_s,
            session_ttl_s=settings.sessions.ttl_s,
            session_journal_len=settings.sessions.journal_len,
        ),
        text=TextModel(
            embedder or load_embedder(settings),
            loader=lambda name: load_embedder(settings, allowed_model(settings, name)),
        ),
        log=EventLog(settings.event_log_dir, log_writer) if log_writer else None,
        registry=ModelRegistry(r, keys, settings.models_dir),
        candidates=RedisCandidates(r, keys) if settings.candidates.enabled else None,
        unflushed=UnflushedWrites(settings.milvus.flush_interval_s),
        user_sync=UserSync(w.user_sync_interval_s),
    )
