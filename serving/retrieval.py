"""Candidate retrieval: filtered ANN in the item index and the catalogue's popularity boards,
with provenance."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from core.expr import Node
from core.filters import Filter
from core.stores.protocols import POPULAR, CatalogueState, ItemIndex, trending_board
from core.stores.registry import CFModel


@dataclass
class Candidate:
    """An item some source proposed, with provenance and the scores seen so far."""

    item_id: str
    fields: dict[str, Any]
    sources: list[str]  # the retrieval sources that produced it, first = primary
    scores: dict[str, float] = field(default_factory=dict)  # source or vector space -> score
    reasons: list[str] = field(default_factory=list)
    ranks: dict[str, int] = field(default_factory=dict)  # source -> 0-based rank in it
    explored: bool = False  # placed by exploration
    propensity: float | None = None  # probability the policy shows it at its position
    # Its interaction weight as this request read it (the ranker's features read it first;
    # the policy's exposure throttle then reads it again only for candidates without it).
    popularity: float | None = None

    @property
    def score(self) -> float:
        """The primary source's score (what orders candidates before ranking)."""
        return self.scores[self.sources[0]]


# Item id -> serving metadata of the ids that exist (the read path's process cache).
FieldsOf = Callable[[Sequence[str]], dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class Constraints:
    """Hard constraints every candidate source applies (and the policy re-checks)."""

    max_maturity: int
    category: str | None = None
    language: str | None = None  # the request's language filter (exact)
    user_language: str | None = None  # the user's language: that one (any variant) or 'und'
    exclude: tuple[str, ...] = ()
    published_after: int | None = None
    expr: Node | None = None  # the request's filter expression (core/expr.py)

    def milvus_filter(self) -> Filter:
        """The constraints as an item-index filter (Milvus evaluates it inside the search)."""
        f = Filter().eq("status", "active").le("maturity", self.max_maturity)
        if self.category:
            f.eq("category", self.category)
        if self.language:
            f.eq("language", self.language)
        if self.user_language:
            f.language_family(self.user_language.split("-")[0])
        if self.published_after is not None:
            f.ge("published_at", self.published_after)
        if self.expr is not None and self.expr.cheap:  # the rest is checked in process
            f.where(f"({self.expr.cheap})", self.expr.check)
        return f.not_in("item_id", self.exclude)

    def admits(self, fields: Mapping[str, Any]) -> bool:
        """The same constraints, checked on an item's serving metadata."""
        if fields.get("status", "active") != "active":
            return False
        if int(fields.get("maturity", 0)) > self.max_maturity:
            return False
        if self.category and fields.get("category") != self.category:
            return False
        lang = fields.get("language") or "und"
        if self.language and lang != self.language:
            return False
        if self.user_language and not speaks(self.user_language, lang):
            return False
        published = int(fields.get("published_at") or 0)
        if self.published_after is not None and published < self.published_after:
            return False
        return self.expr is None or self.expr.check(fields)


def speaks(user_language: str, item_language: str) -> bool:
    """A reader of `user_language` is served items in it, any variant of it, or 'und'."""
    return item_language == "und" or item_language.split("-")[0] == user_language.split("-")[0]


def merge(into: dict[str, Candidate], found: Iterable[Candidate]) -> None:
    """Union candidates by id, keeping every source's score (provenance)."""
    for c in found:
        have = into.get(c.item_id)
        if have is None:
            into[c.item_id] = c
        else:
            have.sources.extend(x for x in c.sources if x not in have.sources)
            have.scores.update(c.scores)
            have.reasons.extend(r for r in c.reasons if r not in have.reasons)
            for s, rank in c.ranks.items():
                have.ranks.setdefault(s, rank)


def ann(
    items: ItemIndex,
    vector: npt.NDArray[np.float32],
    *,
    source: str,
    reason: str,
    constraints: Constraints,
    limit: int,
    space: str = "content_vec",
) -> list[Candidate]:
    """Nearest items to `vector` in one vector space that satisfy the constraints."""
    hits = items.search(vector, field=space, filter=constraints.milvus_filter(), limit=limit)[0]
    return [Candidate(h.item_id, h.fields, [source], {source: h.score}, [reason]) for h in hits]


def hybrid(
    items: ItemIndex,
    vectors: dict[str, npt.NDArray[np.float32]],
    weights: dict[str, float],
    *,
    reason: str,
    constraints: Constraints,
    limit: int,
) -> list[Candidate]:
    """Filtered ANN in several vector spaces at once, fused by Milvus.

    Each candidate keeps the fused score and its score in every space (IP with the query),
    so later stages know why it was retrieved.
    """
    hits = items.hybrid_search(vectors, weights, filter=constraints.milvus_filter(), limit=limit)
    out = []
    for h in hits:
        scores = {"hybrid_ann": h.score}
        for space, query in vectors.items():
            vec = h.fields.pop(space, None)
            if vec is not None:
                scores[SPACE_SOURCE[space]] = float(np.dot(np.asarray(vec, np.float32), query))
        out.append(Candidate(h.item_id, h.fields, ["hybrid_ann"], scores, [reason]))
    return out


MILVUS_MAX_TOPK = 16_384  # Milvus refuses larger limits

SPACE_SOURCE = {"content_vec": "content_profile", "cf_vec": "collaborative"}
SPACE_REASON = {
    "content_vec": "matches what you engaged with recently",
    "cf_vec": "people with similar taste engaged with it",
}


def popular(
    catalogue: CatalogueState,
    items: FieldsOf,
    *,
    constraints: Constraints,
    limit: int,
) -> list[Candidate]:
    """Most popular items (all-time interaction weight) that satisfy the constraints."""
    return ranked_set(
        catalogue,
        POPULAR,
        items,
        source="popular",
        reason="popular right now",
        constraints=constraints,
        limit=limit,
    )


def trending(
    catalogue: CatalogueState,
    items: FieldsOf,
    *,
    scope: str,
    reason: str,
    constraints: Constraints,
    limit: int,
) -> list[Candidate]:
    """Items gaining interactions now (time-decayed; `scope` all, cat:<c> or region:<r>)."""
    return ranked_set(
        catalogue,
        trending_board(scope),
        items,
        source="trending",
        reason=reason,
        constraints=constraints,
        limit=limit,
    )


def ranked_set(
    catalogue: CatalogueState,
    board: str,
    items: FieldsOf,
    *,
    source: str,
    reason: str,
    constraints: Constraints,
    limit: int,
    page: int | None = None,
    max_pages: int = 8,
) -> list[Candidate]:
    """Top items of a board (popular, trending) that satisfy the constraints (`items`: their
    current metadata).

    Pages down the ranking until `limit` items qualify, so a top filled with ids that are
    unknown, deleted or filtered out cannot leave new users with nothing.
    """
    excluded = set(constraints.exclude)
    out: list[Candidate] = []
    best: float | None = None
    # Every page costs an index read of its ids: fetch about what is needed plus a margin.
    page = page or min(max(2 * limit, 50), 500)
    for n in range(max_pages):
        ranked = catalogue.top(board, n * page, (n + 1) * page - 1)
        if not ranked:
            break
        best = best or ranked[0][1] or 1.0
        meta = items([i for i, _ in ranked])
        for item_id, score in ranked:
            m = meta.get(item_id)
            if m is None or item_id in excluded or not constraints.admits(m):
                continue
            out.append(Candidate(item_id, m, [source], {source: score / best}, [reason]))
            if len(out) >= limit:
                return out
    return out


def neighbours(
    cf: CFModel | None,
    items: FieldsOf,
    seed: str,
    *,
    reason: str,
    constraints: Constraints,
    limit: int,
) -> list[Candidate]:
    """Items the interaction model's item-item weights link to `seed` (co-consumption)."""
    if cf is None or cf.neighbours is None or seed not in cf.item_index:
        return []
    indices, weights = cf.neighbours.row(cf.item_index[seed])
    excluded = set(constraints.exclude)
    # Best first; the first 2 x limit not excluded are among these.
    order = np.argsort(-weights, kind="stable")
    order = order[weights[order] > 0][: 2 * limit + len(excluded)]
    ids = cf.als.item_ids or []
    ranked = [
        (item_id, w)
        for item, w in zip(indices[order].tolist(), weights[order].tolist(), strict=True)
        if (item_id := str(ids[item])) not in excluded
    ][: 2 * limit]
    # Read in slices of 1.5x the limit until it is met (most pass: the rest is never read).
    out: list[Candidate] = []
    step = limit + limit // 2 + 1
    for start in range(0, len(ranked), step):
        part = ranked[start : start + step]
        meta = items([i for i, _ in part])
        for item_id, w in part:
            m = meta.get(item_id)
            if m is not None and constraints.admits(m):
                out.append(
                    Candidate(item_id, m, ["item_neighbours"], {"item_neighbours": w}, [reason])
                )
        if len(out) >= limit:
            break
    return out[:limit]
