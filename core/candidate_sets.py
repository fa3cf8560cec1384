"""Building candidate sets: the retrieval a request would do, done ahead, many owners per call.

A user's set holds, per vector space the user has, the nearest active items allowed for their
age and language (`collaborative`: cf_vec, `content_profile`: content_vec, `preferences`: the
onboarding vector while their history is short), without the items they have seen or
disliked. An item's set holds its nearest items by content (`similar_item`). Requests filter a
set again against the items' current metadata (a set is never a permission), re-score it with
the user's current vectors, and retrieve live only on a miss.

Queries are batched: the users of one batch that share a filter (maturity ceiling, language)
are searched in one Milvus call, whose cost on Milvus Lite is one scan of the collection
whatever the number of queries.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from core.context import UserContext
from core.filters import Filter
from core.settings import Settings
from core.stores.protocols import (
    BULK_MARK,
    CandidateSet,
    CandidateStore,
    ItemIndex,
    UserState,
    item_owner,
    user_owner,
)

# Onboarding preferences (and `cold_only` sources) serve a user until their own history
# speaks for them.
PREFERENCES_UNTIL = COLD_UNTIL = 20
MAX_OVERFETCH = 1000  # extra hits asked for, to make up for seen items dropped afterwards
SPACES = {"collaborative": "cf_vec", "content_profile": "content_vec", "preferences": "content_vec"}


def set_tag(collection: str, cf_version: str | None) -> str:
    """What a set was built from: a re-index (new collection) or a new model makes old sets
    stale (still served, re-scored live, and refreshed)."""
    return f"{collection}|{cf_version or '-'}"


@dataclass(frozen=True)
class UserQuery:
    user_id: str
    source: str
    vector: np.ndarray
    max_maturity: int
    language: str | None
    exclude: frozenset[str]


def user_queries(ctx: UserContext, *, max_maturity: int, language: str | None) -> list[UserQuery]:
    """The searches a user's set needs (none for a user without any vector)."""
    exclude = frozenset(ctx.recent) | frozenset(ctx.negatives)
    vectors = {
        "collaborative": ctx.cf_vec,
        "content_profile": ctx.content_vec,
        "preferences": ctx.pref_vec if len(ctx.recent) < PREFERENCES_UNTIL else None,
    }
    return [
        UserQuery(ctx.user_id, source, np.asarray(v, np.float32), max_maturity, language, exclude)
        for source, v in vectors.items()
        if v is not None and len(v)
    ]


def _filter(max_maturity: int | None, language: str | None) -> Filter:
    f = Filter().eq("status", "active")
    if max_maturity is not None:
        f.le("maturity", max_maturity)
    if language:
        f.language_family(language.split("-")[0])
    return f


def _batches(xs: Sequence[UserQuery], n: int) -> Iterable[Sequence[UserQuery]]:
    for k in range(0, len(xs), n):
        yield xs[k : k + n]


def build_user_sets(
    items: ItemIndex,
    contexts: Sequence[UserContext],
    *,
    settings: Settings,
    tag: str,
    max_maturity: Callable[[UserContext], int],
    language: Callable[[UserContext], str | None],
) -> list[CandidateSet]:
    """One set per user (users without vectors get an empty set: their requests use popular
    and trending, which need no set)."""
    cfg = settings.candidates
    groups: dict[tuple[str, int, str | None], list[UserQuery]] = defaultdict(list)
    for ctx in contexts:
        for q in user_queries(ctx, max_maturity=max_maturity(ctx), language=language(ctx)):
            groups[(q.source, q.max_maturity, q.language)].append(q)
    found: dict[str, dict[str, list[tuple[str, float]]]] = {c.user_id: {} for c in contexts}
    for (source, maturity, lang), queries in groups.items():
        for batch in _batches(queries, cfg.search_batch):
            extra = min(max(len(q.exclude) for q in batch), MAX_OVERFETCH)
            hits = items.search(
                np.stack([q.vector for q in batch]),
                field=SPACES[source],
                filter=_filter(maturity, lang),
                limit=cfg.per_source + extra,
                output_fields=("item_id",),
            )
            for q, row in zip(batch, hits, strict=True):
                kept = [(h.item_id, h.score) for h in row if h.item_id not in q.exclude]
                found[q.user_id][source] = kept[: cfg.per_source]
    now = time.time()
    return [CandidateSet(user_owner(u), tag, now, srcs) for u, srcs in found.items()]


def build_item_sets(
    items: ItemIndex, item_ids: Sequence[str], *, settings: Settings, tag: str
) -> list[CandidateSet]:
    """One set per item that exists: its nearest active items by content (itself excluded).
    No maturity or region filter: those are the asking user's, applied on every request."""
    cfg = settings.candidates
    rows = items.get(item_ids, fields=("content_vec",))
    ids = [i for i in item_ids if i in rows]
    out = []
    now = time.time()
    for k in range(0, len(ids), cfg.search_batch):
        batch = ids[k : k + cfg.search_batch]
        vecs = np.stack([np.asarray(rows[i]["content_vec"], np.float32) for i in batch])
        hits = items.search(
            vecs, filter=_filter(None, None), limit=cfg.per_source + 1, output_fields=("item_id",)
        )
        for item_id, row in zip(batch, hits, strict=True):
            kept = [(h.item_id, h.score) for h in row if h.item_id != item_id]
            out.append(
                CandidateSet(
                    item_owner(item_id), tag, now, {"similar_item": kept[: cfg.per_source]}
                )
            )
    return out


def refresh_queued(
    items: ItemIndex,
    users: UserState,
    sets: CandidateStore,
    *,
    settings: Settings,
    tag: str,
    n: int,
) -> tuple[int, int]:
    """Rebuild up to `n` queued sets, earliest mark first, many per Milvus call: (owners
    taken, sets written). A failure leaves the taken owners queued for the next attempt."""
    taken = sets.stale(n)
    if not taken:
        return 0, 0
    owners = [o for o, _ in taken]
    user_ids = [o[2:] for o in owners if o.startswith("u:")]
    item_ids = [o[2:] for o in owners if o.startswith("i:")]
    serving = settings.serving
    strict = serving.language_filter == "strict"
    contexts = [users.context(u, recent_n=serving.history_exclude) for u in user_ids]
    built = build_user_sets(
        items,
        contexts,
        settings=settings,
        tag=tag,
        max_maturity=lambda c: c.max_maturity(serving.unknown_age_max_maturity),
        language=lambda c: c.language if strict else None,
    )
    built += build_item_sets(items, item_ids, settings=settings, tag=tag)
    sets.put(built, settings.candidates.ttl_s)
    sets.finish(taken, settings.candidates.refresh_interval_s)
    return len(taken), len(built)


def queue_bulk(sets: CandidateStore, tag: str, *, ttl_s: float, batch: int = 1000) -> int:
    """After a re-index swap or a new interaction model (a new `tag`), queue every held set
    for a refresh, the most recently written first (a set is written when its owner acts or
    asks), behind whatever events and requests queue. Idempotent: a crash midway queues again
    on the next call; the tag is recorded once all are queued. How many were queued."""
    if sets.built_for() == tag:
        return 0
    queued = 0
    marks: dict[str, float] = {}
    for owner, left_s in sets.held():
        marks[owner] = BULK_MARK + max(ttl_s - left_s, 0.0)  # seconds since written
        if len(marks) >= batch:
            sets.mark_each(marks)
            queued, marks = queued + len(marks), {}
    sets.mark_each(marks)
    sets.set_built_for(tag)
    return queued + len(marks)
