"""Items as the read path sees them now: process cache, re-read when the change log says so.

Candidate sources, the context item and pins read item metadata here instead of from Milvus:
once the cache is warm a request reads only Redis (the tombstones and the change log, one
round trip), and an item written since it was cached is read again (a maturity raised, a
region restricted, a hide), so nothing is served on outdated metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

from serving.features import ItemMeta
from serving.state import ServingState


def current(state: ServingState, ids: Sequence[str]) -> dict[str, ItemMeta]:
    """The items that exist and are not tombstoned, with their current metadata."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        return {}
    marks = state.catalogue.marks(ids)
    meta = state.item_cache.get(state.items, ids, marks.changed_at)
    return {i: m for i, m in meta.items() if i not in marks.tombstoned}


def fields(state: ServingState, ids: Sequence[str]) -> dict[str, dict[str, object]]:
    """`current`, as the serving fields the constraints and the policy read."""
    return {i: dict(m.fields) for i, m in current(state, ids).items()}
