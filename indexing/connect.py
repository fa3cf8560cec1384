"""Clients built from settings; each process (API, worker, CLI) builds its own."""

from __future__ import annotations

import redis
from pymilvus import MilvusClient

from embeddings.text import SentenceTransformerEmbedder, TextEmbedder, allowed_text_model
from indexing.apply import Stores
from indexing.eventlog import EventLog
from indexing.keys import Keys
from indexing.registry import ModelRegistry
from indexing.schema import CollectionNames, ensure_collections
from indexing.store import ItemStore, UserStore
from vantage.config import Settings


def connect_redis(settings: Settings, *, timeout_s: float | None = None) -> redis.Redis:
    """A pooled client; bytes in, bytes out (vectors are stored as raw float32)."""
    t = timeout_s or settings.redis.socket_timeout_s
    return redis.Redis.from_url(
        settings.redis.url, socket_timeout=t, socket_connect_timeout=t, health_check_interval=30
    )


def connect_milvus(settings: Settings) -> MilvusClient:
    m = settings.milvus
    kw: dict[str, object] = {"uri": m.uri, "timeout": m.timeout_s}
    if m.token:
        kw["token"] = m.token
    if m.db_name:
        kw["db_name"] = m.db_name
    return MilvusClient(**kw)  # type: ignore[arg-type]


def collection_names(settings: Settings) -> CollectionNames:
    return CollectionNames(settings.milvus.items_alias, settings.milvus.users_collection)


def allowed_model(settings: Settings, name: str) -> str:
    """`name` if a re-index may switch to it (see `embeddings.text.allowed_text_model`)."""
    return allowed_text_model(
        name,
        allowed=[settings.models.text_model, *settings.models.text_models_allowed],
        models_dir=settings.text_models_dir,
    )


def load_embedder(settings: Settings, name: str | None = None) -> TextEmbedder:
    """The configured text model (or `name`, e.g. the one a re-index switched to)."""
    m = settings.models
    name = name or m.text_model
    emb = SentenceTransformerEmbedder(
        name, device=m.device, batch_size=m.batch_size, precision=m.precision
    )
    if emb.dim != m.text_dim:
        raise ValueError(
            f"model {name!r} has dimension {emb.dim}, settings say {m.text_dim}: "
            "set VANTAGE_MODELS__TEXT_DIM (a new dimension needs a new store)"
        )
    return emb


def prepare_collections(settings: Settings, milvus: MilvusClient) -> CollectionNames:
    """The configured collection names, created if missing (idempotent, safe at every start)."""
    names = collection_names(settings)
    ensure_collections(
        milvus,
        names,
        text_dim=settings.models.text_dim,
        cf_dim=settings.models.cf_dim,
        consistency=settings.milvus.consistency,
    )
    return names


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
    keys = Keys(settings.redis.key_prefix)
    return Stores(
        redis=r,
        keys=keys,
        items=ItemStore(milvus, names),
        users=UserStore(milvus, names),
        embedder=embedder or load_embedder(settings),
        cf_dim=settings.models.cf_dim,
        history_len=w.history_len,
        profile_items=w.profile_items,
        profile_half_life=w.profile_half_life_events,
        dedup_ttl_s=w.dedup_ttl_s,
        log=EventLog(settings.event_log_dir, log_writer) if log_writer else None,
        registry=ModelRegistry(r, keys, settings.models_dir),
        flush_interval_s=settings.milvus.flush_interval_s,
        user_sync_interval_s=w.user_sync_interval_s,
        trending_half_life_s=w.trending_half_life_h * 3600,
        embedder_loader=lambda name: load_embedder(settings, allowed_model(settings, name)),
    )
