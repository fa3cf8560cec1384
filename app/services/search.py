"""The content team's search: a text query embedded with the live text model, searched in
Milvus over the items' content vectors (hidden items included, deleted ones not)."""

from __future__ import annotations

import threading
from typing import Any

from app.state import AppState
from core.connect import load_embedder
from core.filters import Filter
from core.redis_typed import text
from embeddings.text import TextEmbedder

_lock = threading.Lock()
_loaded: dict[tuple[str, str, str], TextEmbedder] = {}


def live_model(state: AppState) -> str:
    """The text model the live items collection was embedded with (a re-index may switch it)."""
    raw = state.redis.get(state.keys.text_model)
    return text(raw) if raw else state.settings.models.text_model


def _embedder(state: AppState, name: str) -> TextEmbedder:
    """`name`, loaded once per process (the first search waits for it: a few seconds)."""
    m = state.settings.models
    key = (name, m.device, m.precision)
    with _lock:
        if key not in _loaded:
            _loaded.clear()  # one model at a time: a switch retires the previous one
            _loaded[key] = load_embedder(state.settings, name)
        return _loaded[key]


def search_items(
    state: AppState, q: str, *, limit: int, category: str | None
) -> tuple[str, list[dict[str, Any]]]:
    """(model name, hits): items nearest in meaning to `q`, best first, with their score."""
    name = live_model(state)
    vec = _embedder(state, name).embed([q])
    where = Filter().eq("category", category) if category else None  # the primary one
    hits = state.items.search(
        vec, limit=limit + 20, filter=where, output_fields=state.items.META_FIELDS
    )[0]
    gone = state.catalogue.tombstoned([h.item_id for h in hits])
    out = []
    for h in hits:
        row = dict(h.fields)
        if h.item_id in gone and row.get("status") != "hidden":
            continue  # deleted: its removal from Milvus is on its way
        out.append({**row, "item_id": h.item_id, "score": round(h.score, 4)})
    return name, out[:limit]
