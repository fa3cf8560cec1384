"""Rule 7, exploration: a share of lower positions shows items from outside the exploit list.

Each position from `start` on is, with probability `share`, filled by an item drawn uniformly
from the pool (candidates that just missed the list). Every item carries its propensity: the
probability that the policy shows *that item at that position*, over the exploration draws
(the marginal `mu(i, k)` that item-position off-policy estimators divide by, `core/ope.py`):

- an exploit item of rank `j` (1-based) at position `k`: 1 when `k < start`; otherwise exactly
  `k - j` of the `k - start` explorable positions above it explored and `k` did not:
  `C(k - start, k - j) share^(k - j) (1 - share)^(j - start + 1)`;
- an explored item: `share / pool size` (a uniform draw without replacement puts any given
  pool item at a given explorable position with that probability); when caps refuse some pool
  items there, `share / the pool items that fit`.

Both are exact when every pool item fits the list (the category and creator caps; the
unproven-item throttle does not apply to exploration); when a cap refuses some, they are
close approximations (bench/simulate.py measures the estimators' coverage with the caps on).
The draw is seeded by the recommendation id: a logged list can be reproduced.
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

    `fits(item, others)` says whether a pool item may join a list holding `others` (the
    positions above and the exploit items still to come): explored items never break a cap,
    and a slot with no fitting pool item keeps its exploit item.
    """
    out: list[tuple[T, bool, float]] = []
    exploit_left = list(exploit)
    pool_left = list(pool)
    placed = 0  # exploit items placed so far
    for pos in range(1, limit + 1):
        explorable = bool(share > 0 and pos >= start and pool_left)
        if explorable and rng.random() < share:
            others = [x for x, _, _ in out] + exploit_left[: limit - pos]
            ok = [k for k, x in enumerate(pool_left) if fits is None or fits(x, others)]
            if ok:
                k = ok[rng.randrange(len(ok))]
                # Of the whole pool, those that fit here: the pool size when nothing is refused
                fitting = len(pool) if fits is None else sum(fits(x, others) for x in pool)
                out.append((pool_left.pop(k), True, share / max(fitting, 1)))
                continue
        if exploit_left:
            placed += 1
            prob = exploit_marginal(placed, pos, share=share if pool else 0.0, start=start)
            out.append((exploit_left.pop(0), False, prob))
        else:
            break
    return out


def exploit_marginal(rank: int, pos: int, *, share: float, start: int) -> float:
    """Probability that the exploit item of rank `rank` lands at position `pos` (1-based)."""
    if share <= 0 or pos < start:
        return 1.0 if rank == pos else 0.0
    explored, kept = pos - rank, rank - start + 1
    if explored < 0 or kept < 1:
        return 0.0
    return math.comb(pos - start, explored) * share**explored * (1.0 - share) ** kept
