"""Clients built from settings; each process (API, worker, CLI) builds its own."""

from __future__ import annotations

from typing import Any, cast

import redis
from pymilvus import MilvusClient
from redis._parsers.helpers import zset_score_pairs_resp3_to_resp2_legacy
from redis.cluster import ClusterPipeline
from redis.exceptions import (
    CrossSlotTransactionError,
    InvalidPipelineStack,
    RedisClusterException,
)

from core.settings import Settings
from core.stores.schema import CollectionNames, ensure_collections
from embeddings.text import SentenceTransformerEmbedder, TextEmbedder, allowed_text_model


def connect_redis(
    settings: Settings, *, timeout_s: float | None = None, decode: bool = False
) -> redis.Redis:
    """A pooled client: bytes in, bytes out (vectors are stored as raw float32), or with
    `decode` one that answers text (`decode_responses`), for stores that keep no vectors.

    With `redis.cluster` it is redis-py's cluster client, bootstrapped from the node the URL
    names. It answers the same commands (each key routed to its slot's node), so it is typed
    as `redis.Redis` and every store keeps one code path; the key names make every
    multi-key call single-slot (`core.keys`).
    """
    t = timeout_s or settings.redis.socket_timeout_s
    if settings.redis.cluster:
        cluster = ClusterClient.from_url(
            settings.redis.url,
            socket_timeout=t,
            socket_connect_timeout=t,
            health_check_interval=30,
            decode_responses=decode,
        )
        return cast(redis.Redis, cluster)
    client = redis.Redis.from_url(
        settings.redis.url,
        socket_timeout=t,
        socket_connect_timeout=t,
        health_check_interval=30,
        decode_responses=decode,
    )
    _fast_zset_pairs(client)
    return client


ZSET_READS = ("ZRANGE", "ZREVRANGE", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE", "ZINTER", "ZUNION")


def _zset_pairs(response: Any, **options: Any) -> Any:
    """A sorted-set read WITHSCORES on a RESP3 connection as (member, score) tuples: the
    shape redis-py's legacy callback gives, without its round trip of every score through
    bytes (`format(score, ".17g")`, then `float`): 3% of a request's CPU from candidate sets."""
    if not response or not options.get("withscores"):
        return response
    if options.get("score_cast_func", float) is not float:
        return zset_score_pairs_resp3_to_resp2_legacy(response, **options)  # type: ignore[no-untyped-call]
    return [(m, float(s)) for m, s in response]


def _fast_zset_pairs(client: redis.Redis) -> None:
    """Install `_zset_pairs` where redis-py installed its legacy converter (a RESP3 wire
    with RESP2 shapes, the default); any other protocol set in the URL keeps its own. The
    cluster client keeps redis-py's (its nodes' clients are built inside redis-py)."""
    installed = client.response_callbacks
    for command in ZSET_READS:
        if installed.get(command) is zset_score_pairs_resp3_to_resp2_legacy:  # type: ignore[no-untyped-call]
            client.set_response_callback(command, _zset_pairs)


def _as_redis_error(e: RedisClusterException) -> Exception:
    """redis-py raises `RedisClusterException`s that are not `RedisError`s while a cluster
    changes shape (e.g. `SlotNotCoveredError` while a failover reassigns a dead master's
    slots): the same outage as a refused connection to everything that handles one (the API's
    fallbacks, the worker's back-off). Misuse (cross-slot transactions) stays itself."""
    if isinstance(e, CrossSlotTransactionError | InvalidPipelineStack):
        return e
    return redis.ConnectionError(f"Redis Cluster unavailable: {type(e).__name__}: {e}")


class _ClusterPipeline(ClusterPipeline):
    def execute(self, raise_on_error: bool = True) -> list[Any]:
        try:
            return super().execute(raise_on_error)
        except RedisClusterException as e:
            raise _as_redis_error(e) from e


class ClusterClient(redis.RedisCluster):
    """redis-py's cluster client whose failures while the cluster changes shape are all
    `redis.RedisError`s, and whose `close` also closes the sockets of every node's pool
    (8.1 only releases them to the pools, which then leak until garbage collection)."""

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().execute_command(*args, **kwargs)  # type: ignore[no-untyped-call]
        except RedisClusterException as e:
            raise _as_redis_error(e) from e

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> ClusterPipeline:
        pipe: ClusterPipeline = super().pipeline(transaction, shard_hint)  # type: ignore[no-untyped-call]
        pipe.__class__ = _ClusterPipeline  # the same object; only `execute` is wrapped
        return pipe

    def close(self) -> None:
        super().close()
        for node in self.get_nodes():  # type: ignore[no-untyped-call]
            if node.redis_connection is not None:
                node.redis_connection.connection_pool.disconnect()


def connect_milvus(settings: Settings) -> MilvusClient:
    m = settings.milvus
    kw: dict[str, object] = {"uri": m.uri, "timeout": m.timeout_s}
    if m.token:
        kw["token"] = m.token
    if m.db_name:
        kw["db_name"] = m.db_name
    return MilvusClient(**kw)


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
