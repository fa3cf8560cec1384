"""Rule 7, exploration: a share of lower positions shows items from outside the exploit list.

Each position from `start` on is, with probability `share`, filled by an item drawn uniformly
from the pool (candidates that just missed the list). Every item carries its propensity: the
probability that the policy shows *that item at that position*, over the exploration draws
(the marginal `mu(i, k)` that item-position off-policy estimators divide by, `core/ope.py`):

- an exploit item of rank `j` (1-based) at position `k`: 1 when `k < start`; otherwise exactly
  `k - j` of the `k - start` explorable positions above it explored and `k` did not:
  `C(k - start, k - j) share^(k - j) (1 - share)^(j - start + 1)` (and, when the `P` pool
  items ran out exactly there, the sum over where the last one was drawn);
- an explored item: `share x P(fewer than P explorations above) / P` (a uniform draw without
  replacement puts any given pool item at a given position with that probability).

The pool is first narrowed to the items that fit the caps beside the exploit list (the
category and creator caps; the unproven-item throttle does not apply to exploration): these
are then the exact probabilities of the process, unless two explored items would together
break a cap (a draw is checked again beside what is placed by then, and only then can the
exploit item stay where exploration was drawn). The draw is seeded by
the recommendation id: a logged list can be reproduced.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def explore(
    exploit: Sequence[T],
    pool: Sequence[T],
    *,
    limit: int,
    share: float,
    start: int,
    rng: random.Random,
    fits: Callable[[T, Sequence[T]], bool] | None = None,
) -> list[tuple[T, bool, float]]:
    """(item, explored, propensity) for each position of the final list, best first.

    `fits(item, others)` says whether a pool item may join a list holding `others`: the pool
    is narrowed once, to the items that fit beside the exploit list (the propensities assume
    that pool), and each draw is checked again beside what is placed by then, so explored
    items never break a cap; a draw that finds nothing fitting keeps the exploit item.
    """
    shown = list(exploit[:limit])
    fitting = [x for x in pool if fits is None or fits(x, shown)]
    size = len(fitting) if share > 0 else 0
    out: list[tuple[T, bool, float]] = []
    exploit_left = list(exploit)
    pool_left = list(fitting)
    placed = 0  # exploit items placed so far
    for pos in range(1, limit + 1):
        explorable = bool(size and pos >= start and pool_left)
        if explorable and rng.random() < share:
            others = [x for x, _, _ in out] + exploit_left[: limit - pos]
            ok = [k for k, x in enumerate(pool_left) if fits is None or fits(x, others)]
            if ok:
                item = pool_left.pop(ok[rng.randrange(len(ok))])
                mu = explored_marginal(pos, share=share, start=start, pool=size)
                out.append((item, True, mu))
                continue
        if not exploit_left:
            break
        placed += 1
        prob = exploit_marginal(placed, pos, share=share if size else 0.0, start=start, pool=size)
        out.append((exploit_left.pop(0), False, prob))
    return out


def exploit_marginal(
    rank: int, pos: int, *, share: float, start: int, pool: int | None = None
) -> float:
    """Probability that the exploit item of rank `rank` lands at position `pos` (1-based),
    with `pool` items to explore (None: never runs out)."""
    if share <= 0 or pos < start:
        return 1.0 if rank == pos else 0.0
    explored, kept = pos - rank, rank - start + 1
    if explored < 0 or kept < 1 or (pool is not None and explored > pool):
        return 0.0
    if pool is None or explored < pool:
        return math.comb(pos - start, explored) * share**explored * (1.0 - share) ** kept
    # The pool ran out at the last exploration (at p); every position after it is exploit.
    return sum(
        math.comb(p - start, pool - 1) * share**pool * (1.0 - share) ** (p - start - pool + 1)
        for p in range(start + pool - 1, pos)
    )


def explored_marginal(pos: int, *, share: float, start: int, pool: int) -> float:
    """Probability that a given pool item is explored at position `pos`: the position explores
    (fewer than `pool` explorations above it, then a draw) and the uniform draw is that item."""
    above = pos - start
    not_out = sum(
        math.comb(above, e) * share**e * (1.0 - share) ** (above - e)
        for e in range(0, min(above, pool - 1) + 1)
    )
    return share * not_out / pool
