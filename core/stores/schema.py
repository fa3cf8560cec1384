"""Milvus collections: `items` (an alias over versioned `items_v<N>`) and `users`.

A re-index builds `<alias>_v<N+1>` and swaps the alias, so serving never sees a half-built
collection. `ensure_collections()` is idempotent and safe to call from every process at start.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from pymilvus import DataType, MilvusClient

log = logging.getLogger(__name__)

# Milvus VARCHAR lengths are bytes; the API bounds characters, so leave room for UTF-8.
TITLE_BYTES = 2048
DESCRIPTION_BYTES = 20_480
LABEL_BYTES = 256
MAX_CATEGORIES = 20
MAX_TAGS = 50
MAX_REGIONS = 250


@dataclass(frozen=True)
class CollectionNames:
    """Names derived from settings; tests use a unique prefix per run."""

    items_alias: str
    users: str

    def physical(self, version: int) -> str:
        return f"{self.items_alias}_v{version}"

    def version_of(self, physical: str) -> int | None:
        m = re.fullmatch(re.escape(self.items_alias) + r"_v(\d+)", physical)
        return int(m.group(1)) if m else None


def _vector_index(client: MilvusClient, *fields: str) -> object:
    params = client.prepare_index_params()
    for f in fields:
        # AUTOINDEX: an HNSW-like index on a Milvus server; Milvus Lite 3.2 builds a faiss
        # index too, but still passes over every row per search in Python (~1-2 us a row).
        params.add_index(f, index_type="AUTOINDEX", metric_type="IP")
    return params


def items_schema(text_dim: int, cf_dim: int, *, attributes: bool = True) -> object:
    """Schema of one physical items collection (`attributes=False`: as collections created
    before custom attributes were, which the stores keep working with)."""
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("item_id", DataType.VARCHAR, is_primary=True, max_length=512)
    s.add_field("content_vec", DataType.FLOAT_VECTOR, dim=text_dim)
    s.add_field("cf_vec", DataType.FLOAT_VECTOR, dim=cf_dim)
    s.add_field("title", DataType.VARCHAR, max_length=TITLE_BYTES)
    s.add_field("description", DataType.VARCHAR, max_length=DESCRIPTION_BYTES)
    s.add_field("category", DataType.VARCHAR, max_length=LABEL_BYTES)
    s.add_field(
        "categories",
        DataType.ARRAY,
        element_type=DataType.VARCHAR,
        max_capacity=MAX_CATEGORIES,
        max_length=LABEL_BYTES,
    )
    s.add_field(
        "tags",
        DataType.ARRAY,
        element_type=DataType.VARCHAR,
        max_capacity=MAX_TAGS,
        max_length=LABEL_BYTES,
    )
    s.add_field("language", DataType.VARCHAR, max_length=32)
    s.add_field(
        "regions",
        DataType.ARRAY,
        element_type=DataType.VARCHAR,
        max_capacity=MAX_REGIONS,
        max_length=8,
    )
    s.add_field("maturity", DataType.INT64)
    s.add_field("status", DataType.VARCHAR, max_length=16)
    s.add_field("published_at", DataType.INT64)
    s.add_field("creator_id", DataType.VARCHAR, max_length=512)
    if attributes:
        s.add_field("attributes", DataType.JSON)  # custom attributes (core/domain.py)
    s.add_field("updated_at", DataType.INT64)
    return s


def users_schema(text_dim: int, cf_dim: int) -> object:
    """Schema of the users collection (vectors plus the profile as JSON)."""
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("user_id", DataType.VARCHAR, is_primary=True, max_length=512)
    s.add_field("content_vec", DataType.FLOAT_VECTOR, dim=text_dim)
    s.add_field("cf_vec", DataType.FLOAT_VECTOR, dim=cf_dim)
    s.add_field("profile", DataType.JSON)
    s.add_field("updated_at", DataType.INT64)
    return s


def current_items_collection(client: MilvusClient, names: CollectionNames) -> str | None:
    """The physical collection the items alias points at, or None before the first build."""
    if names.items_alias not in client.list_aliases().get("aliases", []):
        return None
    return str(client.describe_alias(names.items_alias)["collection_name"])


def create_items_version(
    client: MilvusClient,
    names: CollectionNames,
    *,
    text_dim: int,
    cf_dim: int,
    consistency: str = "Bounded",
) -> str:
    """Create the next physical items collection (not yet behind the alias)."""
    versions = [v for c in client.list_collections() if (v := names.version_of(c)) is not None]
    physical = names.physical(max(versions, default=0) + 1)
    client.create_collection(
        physical,
        schema=items_schema(text_dim, cf_dim),
        index_params=_vector_index(client, "content_vec", "cf_vec"),
        consistency_level=consistency,
    )
    return physical


def point_alias(client: MilvusClient, names: CollectionNames, physical: str) -> None:
    """Atomically point the items alias at `physical`."""
    if current_items_collection(client, names) is None:
        client.create_alias(physical, names.items_alias)
    else:
        client.alter_alias(physical, names.items_alias)


def ensure_collections(
    client: MilvusClient,
    names: CollectionNames,
    *,
    text_dim: int,
    cf_dim: int,
    consistency: str = "Bounded",
) -> None:
    """Create the items alias (over `<alias>_v1`) and the users collection if missing."""
    if current_items_collection(client, names) is None:
        existing = sorted(
            (v, c) for c in client.list_collections() if (v := names.version_of(c)) is not None
        )
        # A crash between create and alias leaves a collection behind: adopt it, don't leak it.
        physical = (
            existing[-1][1]
            if existing
            else create_items_version(
                client, names, text_dim=text_dim, cf_dim=cf_dim, consistency=consistency
            )
        )
        try:
            point_alias(client, names, physical)
        except Exception:
            # Another process won the race; its alias is as good as ours.
            if current_items_collection(client, names) is None:
                raise
        log.info("items alias %s -> %s", names.items_alias, physical)
    if not client.has_collection(names.users):
        try:
            client.create_collection(
                names.users,
                schema=users_schema(text_dim, cf_dim),
                index_params=_vector_index(client, "content_vec", "cf_vec"),
                consistency_level=consistency,
            )
        except Exception:
            if not client.has_collection(names.users):
                raise
    load_all(client, names)


RELOAD_TIMEOUT_S = 30.0  # a reload after a restart; a load that never completes must not hang


def load_all(
    client: MilvusClient, names: CollectionNames, *, timeout_s: float | None = None
) -> None:
    """Load the collections for search (again, e.g. after a Milvus Lite restart released them).

    pymilvus waits for the load to complete, with no end by default: a recovery loop passes
    `timeout_s` (RELOAD_TIMEOUT_S), so one load that never completes does not stop it trying
    again (the serving snapshot's refresh thread once stayed on a restarted Milvus' collection,
    still released a minute later)."""
    for name in (names.items_alias, names.users):
        client.load_collection(name, timeout=timeout_s)
