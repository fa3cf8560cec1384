"""Rule 6, diversity: MMR over content vectors, under caps per category, creator and new item.

Maximal marginal relevance (Carbonell & Goldstein 1998): each next pick maximises
lambda * score - (1 - lambda) * (highest similarity to an item already picked), under caps per
category, creator and unproven item. The caps shape a full list; they do not shorten it: when
the candidates cannot fill the list within them (a catalogue whose items share few categories,
a young one where nothing has signals yet), they give way one at a time, in the order
`RELAX_ORDER` (the exposure throttle first, the category cap last), each only as far as it
must, and the caller is told which (`debug.caps_relaxed`). Measured on a sparse catalogue
before this: lists came back short, recall@20 equal to recall@10.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Caps:
    category: int | None = None
    creator: int | None = None
    unproven: int | None = None  # items that have not earned signals yet (exposure throttle)
    # Raised category caps (the user's own share of a category, as list slots).
    per_category: Mapping[str, int] = field(default_factory=dict)

    def of_category(self, cat: str) -> int | None:
        """The cap of one category (None: uncapped)."""
        if self.category is None:
            return None
        return max(self.category, self.per_category.get(cat, 0))


# Which cap gives way first when the list cannot be filled within all of them.
RELAX_ORDER = ("unproven", "creator", "category")


@dataclass
class Selection:
    """Picked window rows in order, the caps that held in the end, and those relaxed."""

    picked: list[int]
    caps: Caps
    relaxed: list[str] = field(default_factory=list)


class _CapCounter:
    """How many picked items each category and creator has, and how many are unproven."""

    def __init__(
        self,
        caps: Caps,
        categories: Sequence[str | None],
        creators: Sequence[str | None],
        unproven: Sequence[bool],
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

    def _count(self, cat: str | None, who: str | None) -> None:
        if cat:
            self.cat[cat] = self.cat.get(cat, 0) + 1
        if who:
            self.creator[who] = self.creator.get(who, 0) + 1

    def fits(self, i: int) -> bool:
        caps, cat, who = self.caps, self.categories[i], self.creators[i]
        limit = caps.of_category(cat) if cat else None
        if limit is not None and self.cat.get(cat or "", 0) >= limit:
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
    floor: float = 0.0,
) -> Selection:
    """The picked rows in pick order (`floor`: similarity up to it is not penalised).

    MMR looks at the best `window` by score first; if caps leave the list short it goes on
    through the rest in score order (no diversity term needed there: the caps already bind),
    then relaxes the caps in `RELAX_ORDER` until the list is full or nothing is left.
    """
    order = [int(i) for i in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")]
    counter = _CapCounter(caps, categories, creators, unproven)
    head = max(window, limit)
    picked = _mmr(order[:head], scores, vecs, lam, limit, counter, floor)
    out = Selection(picked, caps)
    _fill(order, out, limit, counter)
    for name in RELAX_ORDER:
        if len(picked) >= limit or len(picked) == len(order):
            break
        if getattr(out.caps, name) is None:
            continue
        out.caps = replace(out.caps, **{name: None})  # type: ignore[arg-type]
        out.relaxed.append(name)
        counter.caps = out.caps
        _fill(order, out, limit, counter)
    return out


def _fill(order: Sequence[int], out: Selection, limit: int, counter: _CapCounter) -> None:
    """Append rows in score order that fit the caps, until the list is full."""
    taken = set(out.picked)
    for i in order:
        if len(out.picked) >= limit:
            return
        if i not in taken and counter.fits(i):
            out.picked.append(i)
            taken.add(i)
            counter.take(i)


def _mmr(
    pool: list[int],
    scores: npt.NDArray[np.floating[Any]],
    vecs: npt.NDArray[np.floating[Any]],
    lam: float,
    limit: int,
    counter: _CapCounter,
    floor: float = 0.0,
) -> list[int]:
    """Greedy MMR over `pool`, skipping items that break a cap; the diversity term is the
    highest similarity to a picked item above `floor` (0 below it).

    Counts only grow, so an item that breaks a cap never fits again: a pick that fills its
    category's, its creator's or the unproven cap retires every item sharing that cap, in
    one array operation (an item fits exactly while none of its three counts is full).
    """
    picked: list[int] = []
    if not pool:
        return picked
    rows = np.asarray(pool, dtype=np.intp)
    alive = np.asarray([counter.fits(i) for i in pool], dtype=bool)
    cat, who = _codes(counter.categories, rows), _codes(counter.creators, rows)
    unp = np.asarray([bool(counter.unproven[i]) for i in pool], dtype=bool)
    relevance = lam * np.asarray(scores, dtype=np.float64)[rows]
    usable = np.isfinite(vecs).all(axis=1) if len(vecs) else np.zeros(len(scores), bool)
    known = np.zeros((len(rows), 0), np.float32)
    if lam < 1.0 and len(vecs):  # the pool's vectors, unknown ones as 0 (similar to nothing)
        known = np.where(usable[rows, None], vecs[rows], 0).astype(np.float32, copy=False)
    max_sim = np.zeros(len(rows))
    while len(picked) < limit and alive.any():
        if lam >= 1.0 or not picked:
            k = int(np.argmax(alive))  # the best-scored item that fits
        else:
            k = int(np.argmax(np.where(alive, relevance - (1 - lam) * max_sim, -np.inf)))
        best = int(rows[k])
        picked.append(best)
        counter.take(best)
        alive[k] = False
        _retire_full(alive, k, best, counter, cat, who, unp)
        if lam < 1.0 and usable[best]:
            max_sim = np.maximum(max_sim, known @ known[k] - floor)
    return picked


def _retire_full(
    alive: npt.NDArray[np.bool_],
    k: int,
    best: int,
    counter: _CapCounter,
    cat: npt.NDArray[np.intp],
    who: npt.NDArray[np.intp],
    unp: npt.NDArray[np.bool_],
) -> None:
    """After pool row `k` (item `best`) was taken: the items whose cap it filled fit no more."""
    caps, c, w = counter.caps, counter.categories[best], counter.creators[best]
    limit = caps.of_category(c) if c else None
    if c and limit is not None and counter.cat.get(c, 0) >= limit:
        alive &= cat != cat[k]
    if w and caps.creator is not None and counter.creator.get(w, 0) >= caps.creator:
        alive &= who != who[k]
    if caps.unproven is not None and unp[k] and counter.n_unproven >= caps.unproven:
        alive &= ~unp


def _codes(values: Sequence[str | None], rows: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """An integer per distinct value of `values[rows]` (-1 for none)."""
    seen: dict[str, int] = {}
    return np.asarray(
        [seen.setdefault(v, len(seen)) if (v := values[i]) else -1 for i in rows], dtype=np.intp
    )


@dataclass(frozen=True)
class Held:
    """What a list holds, as the caps count it: items per category and creator, unproven."""

    categories: Counter[str | None]
    creators: Counter[str | None]
    unproven: int

    @classmethod
    def of(
        cls,
        rows: Sequence[int],
        categories: Sequence[str | None],
        creators: Sequence[str | None],
        unproven: Sequence[bool],
    ) -> Held:
        return cls(
            Counter(categories[j] for j in rows),
            Counter(creators[j] for j in rows),
            sum(bool(unproven[j]) for j in rows),
        )


def fits_held(
    i: int,
    held: Held,
    categories: Sequence[str | None],
    creators: Sequence[str | None],
    unproven: Sequence[bool],
    caps: Caps,
) -> bool:
    """Whether item `i` may join a list that holds `held` without breaking a cap."""
    cat, who = categories[i], creators[i]
    limit = caps.of_category(cat) if cat else None
    if limit is not None and held.categories[cat] >= limit:
        return False
    if caps.creator is not None and who and held.creators[who] >= caps.creator:
        return False
    return not (caps.unproven is not None and unproven[i] and held.unproven >= caps.unproven)


def fits_caps(
    i: int,
    others: Sequence[int],
    categories: Sequence[str | None],
    creators: Sequence[str | None],
    unproven: Sequence[bool],
    caps: Caps,
) -> bool:
    """Whether item `i` may join a list holding `others` without breaking a cap."""
    held = Held.of(others, categories, creators, unproven)
    return fits_held(i, held, categories, creators, unproven, caps)


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
        cap = caps.of_category(c) if c else None
        ok = not (
            (cap is not None and cat.get(c or "", 0) >= cap)
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
