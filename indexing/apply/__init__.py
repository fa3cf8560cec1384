"""Applying events to the stores: the one core shared by the worker and `vantage import`.

One module per stage: `items` (upserts and deletes, versioned, under the item-write lease),
`users` (profiles and onboarding vectors), `interactions` (exactly-once counters, click
attribution, profile refresh), `erasure` (every trace of a user, with a receipt); `stores` is
what they all write through. Item and user writes are idempotent by nature (upserts);
interaction effects are counters, so each is applied in the same Redis script that records
its event id.
"""

from indexing.apply.erasure import apply_erasures
from indexing.apply.interactions import (
    apply_interactions,
    attributable,
    lifts_negative,
    refresh_profiles,
)
from indexing.apply.items import apply_item_deletes, apply_item_upserts, embed_items
from indexing.apply.stores import (
    ApplySettings,
    CategoryMembers,
    ItemLease,
    Stores,
    TextModel,
    UnflushedWrites,
    UserSync,
    persist_users,
)
from indexing.apply.users import apply_user_updates, preference_vectors

__all__ = [
    "ApplySettings",
    "CategoryMembers",
    "ItemLease",
    "Stores",
    "TextModel",
    "UnflushedWrites",
    "UserSync",
    "apply_erasures",
    "apply_interactions",
    "apply_item_deletes",
    "apply_item_upserts",
    "apply_user_updates",
    "attributable",
    "embed_items",
    "lifts_negative",
    "persist_users",
    "preference_vectors",
    "refresh_profiles",
]
