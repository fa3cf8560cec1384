"""Item rows as Milvus stores them: one dict per item, built from the domain `Item`."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from core.domain import Item
from core.stores.schema import DESCRIPTION_BYTES, TITLE_BYTES


def _clip_utf8(text: str, max_bytes: int) -> str:
    raw = text.encode("utf-8")
    return text if len(raw) <= max_bytes else raw[:max_bytes].decode("utf-8", "ignore")


def item_row(item: Item, content_vec: np.ndarray, cf_vec: np.ndarray) -> dict[str, Any]:
    """One Milvus row for an item."""

    return {
        "item_id": item.item_id,
        "content_vec": content_vec.astype(np.float32).tolist(),
        "cf_vec": cf_vec.astype(np.float32).tolist(),
        "title": _clip_utf8(item.title, TITLE_BYTES),
        "description": _clip_utf8(item.description, DESCRIPTION_BYTES),
        "category": item.category,
        "categories": item.categories,
        "tags": item.tags,
        "language": item.language,
        "regions": item.regions,
        "maturity": item.maturity,
        "status": item.status,
        "published_at": item.published_at,
        "creator_id": item.creator_id,
        "attributes": {k: _json_value(v) for k, v in item.attributes.items()},
        "updated_at": int(time.time()),
    }


def _json_value(v: Any) -> Any:
    """Whole numbers stored as integers (Milvus compares JSON numbers by their type)."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v
