"""Rule 6, diversity: MMR over content vectors, under caps per category, creator and new item.

Maximal marginal relevance (Carbonell & Goldstein 1998): each next pick maximises
lambda * score - (1 - lambda) * (highest similarity to an item already picked). Category and
creator caps are hard: an item whose category or creator has reached its cap is skipped, and
the list comes back shorter rather than break one. The unproven-item cap is an exposure
throttle, not a promise: when the list cannot be filled otherwise (a young catalogue where
nothing has signals yet), unproven items fill the remaining slots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Caps:
    category: int | None = None
    creator: int | None = None
    unproven: int | None = None  # items that have not earned signals yet (exposure throttle)


class _CapCounter:
    """How many picked items each category and creator has, and how many are unproven."""

    def __init__(
        self,
        caps: Caps,
        categories: Sequence[str | None],
        creators: Sequence[str | None],
        unproven: Sequence[bool],
        already: Sequence[tuple[str | None, str | None]],
    ):
        self.caps, self.categories, self.creators, self.unproven = (
            caps,
            categories,
            creators,
            unproven,
        )
        self.cat: dict[str, int] = {}
        self.creator: dict[str, int] = {}
        self.n_unproven = 0
        for cat, who in already:
            self._count(cat, who)

    def _count(self, cat: str | None, who: str | None) -> None:
        if cat:
            self.cat[cat] = self.cat.get(cat, 0) + 1
        if who:
            self.creator[who] = self.creator.get(who, 0) + 1

    def fits(self, i: int) -> bool:
        caps, cat, who = self.caps, self.categories[i], self.creators[i]
        if caps.category is not None and cat and self.cat.get(cat, 0) >= caps.category:
            return False
        if caps.creator is not None and who and self.creator.get(who, 0) >= caps.creator:
            return False
        return not (
            caps.unproven is not None and self.unproven[i] and self.n_unproven >= caps.unproven
        )

    def take(self, i: int) -> None:
        self._count(self.categories[i], self.creators[i])
        self.n_unproven += int(self.unproven[i])


def select(
    scores: npt.NDArray[np.floating[Any]],
    vecs: npt.NDArray[np.floating[Any]],
    *,
    limit: int,
    lam: float,
    categories: Sequence[str | None],
    creators: Sequence[str | None],
    unproven: Sequence[bool],
    caps: Caps,
    window: int,
    already: Sequence[tuple[str | None, str | None]] = (),
) -> list[int]:
    """Indices of the picked items in pick order (`already`: category and creator of items
    placed before these, which count against the caps).

    MMR looks at the best `window` by score first; if caps leave the list short it goes on
    through the rest in score order (no diversity term needed there: the caps already bind).
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    counter = _CapCounter(caps, categories, creators, unproven, already)
    head = max(window, limit)
    picked = _mmr([int(i) for i in order[:head]], scores, vecs, lam, limit, counter)
    taken = set(picked)
    for i in order[head:]:
        if len(picked) >= limit:
            break
        if int(i) not in taken and counter.fits(int(i)):
            picked.append(int(i))
            counter.take(int(i))
    if len(picked) < limit and caps.unproven is not None:
        # The exposure throttle gives way rather than leave the list short.
        rest = [int(i) for i in order if int(i) not in set(picked)]
        more = select(
            np.asarray(scores)[rest],
            vecs[rest] if len(vecs) else vecs,
            limit=limit - len(picked),
            lam=1.0,
            categories=[categories[i] for i in rest],
            creators=[creators[i] for i in rest],
            unproven=[False] * len(rest),
            caps=Caps(caps.category, caps.creator, None),
            window=len(rest),
            already=[(categories[i], creators[i]) for i in picked],
        )
        picked += [rest[k] for k in more]
    return picked


def _mmr(
    pool: list[int],
    scores: npt.NDArray[np.floating[Any]],
    vecs: npt.NDArray[np.floating[Any]],
    lam: float,
    limit: int,
    counter: _CapCounter,
) -> list[int]:
    """Greedy MMR over `pool`, skipping items that break a cap."""
    n = len(scores)
    picked: list[int] = []
    usable = np.isfinite(vecs).all(axis=1) if len(vecs) else np.zeros(n, bool)
    max_sim = np.zeros(n)
    while pool and len(picked) < limit:
        cands = [i for i in pool if counter.fits(i)]
        if not cands:
            break
        if lam >= 1.0 or not picked:
            best = cands[0]
        else:
            idx = np.asarray(cands)
            mmr = lam * np.asarray(scores)[idx] - (1 - lam) * max_sim[idx]
            best = int(idx[int(np.argmax(mmr))])
        pool.remove(best)
        picked.append(best)
        counter.take(best)
        if lam < 1.0 and usable[best]:
            sims = np.nan_to_num(vecs @ vecs[best], nan=0.0)
            max_sim = np.maximum(max_sim, np.where(usable, sims, 0.0))
    return picked


def fits_caps(
    i: int,
    others: Sequence[int],
    categories: Sequence[str | None],
    creators: Sequence[str | None],
    unproven: Sequence[bool],
    caps: Caps,
) -> bool:
    """Whether item `i` may join a list holding `others` without breaking a cap."""
    cat, who = categories[i], creators[i]
    if (
        caps.category is not None
        and cat
        and sum(categories[j] == cat for j in others) >= caps.category
    ):
        return False
    if caps.creator is not None and who and sum(creators[j] == who for j in others) >= caps.creator:
        return False
    return not (
        caps.unproven is not None
        and unproven[i]
        and sum(unproven[j] for j in others) >= caps.unproven
    )


def within_caps(
    categories: Sequence[str | None],
    creators: Sequence[str | None],
    unproven: Sequence[bool],
    caps: Caps,
) -> list[bool]:
    """Walking a final list top-down: does each item still fit its caps (False = drop it)?"""
    cat: dict[str, int] = {}
    who: dict[str, int] = {}
    n_unproven = 0
    out = []
    for c, w, u in zip(categories, creators, unproven, strict=True):
        ok = not (
            (caps.category is not None and c and cat.get(c, 0) >= caps.category)
            or (caps.creator is not None and w and who.get(w, 0) >= caps.creator)
            or (caps.unproven is not None and u and n_unproven >= caps.unproven)
        )
        if ok:
            if c:
                cat[c] = cat.get(c, 0) + 1
            if w:
                who[w] = who.get(w, 0) + 1
            n_unproven += int(u)
        out.append(ok)
    return out
