"""Explanations: human-readable reasons, made specific where the data allows.

Sources attach generic reasons ("people with similar taste engaged with it", "trending in your
region", "similar to X"); here personal picks gain the user's own most similar recent item
("because you watched X"), which is what users find most convincing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from core.stores.item_cache import ItemMeta
from serving.retrieval import SPACE_REASON, Candidate

PERSONAL_SOURCES = frozenset(
    {"collaborative", "content_profile", "hybrid_ann", "fresh", "preferences"}
)
MIN_SIMILARITY = 0.3  # weaker links are not worth telling
GENERIC = SPACE_REASON["content_vec"]
PICK_REASON = "matches the topics you picked"


def honest_picks(
    final: Sequence[Candidate], picks: Sequence[str], meta: Mapping[str, ItemMeta]
) -> None:
    """Keep the pick reason only on items of a picked category (in place): the preferences
    vector is a blend of the picks, and its nearest items are not always in one of them."""
    wanted = set(picks)
    for c in final:
        if PICK_REASON not in c.reasons:
            continue
        category = c.fields.get("category") or (
            meta[c.item_id].category if c.item_id in meta else None
        )
        if category not in wanted:
            c.reasons = [r for r in c.reasons if r != PICK_REASON]


def because_you_watched(
    final: Sequence[Candidate],
    recent: Sequence[str],
    meta: Mapping[str, ItemMeta],
) -> None:
    """Prefix personal picks with the user's most similar recent item (in place)."""
    known = [i for i in recent if i in meta and meta[i][2]]  # `recent` excludes dislikes
    if not known:
        return
    hist = np.stack([np.asarray(meta[i][0], dtype=np.float32) for i in known])
    for c in final:
        if c.sources[0] not in PERSONAL_SOURCES or c.item_id not in meta:
            continue
        vec = np.asarray(meta[c.item_id][0], dtype=np.float32)
        if vec.shape[0] != hist.shape[1]:
            continue
        sims = hist @ vec
        best = int(np.argmax(sims))
        if sims[best] >= MIN_SIMILARITY:
            # The specific reason replaces the generic one it makes concrete.
            rest = [r for r in c.reasons if r != GENERIC]
            c.reasons = [f"because you watched {meta[known[best]][2]}", *rest]
