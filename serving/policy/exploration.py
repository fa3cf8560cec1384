"""Rule 7, exploration: a share of lower positions shows items from outside the exploit list.

Each position from `start` on is, with probability `share`, filled by an item drawn uniformly
from the pool (candidates that just missed the list). Every item carries its propensity: the
probability of the decision that put it there given the positions above it - 1 above `start`,
1 - share for an exploit item below it, share / pool size for an explored one - so the logged
impressions support off-policy evaluation (inverse propensity scoring). The draw is seeded by
the recommendation id: a logged list can be reproduced.
"""

from __future__ import annotations

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
    for pos in range(1, limit + 1):
        explorable = bool(share > 0 and pos >= start and pool_left)
        if explorable and rng.random() < share:
            others = [x for x, _, _ in out] + exploit_left[: limit - pos]
            ok = [k for k, x in enumerate(pool_left) if fits is None or fits(x, others)]
            if ok:
                k = ok[rng.randrange(len(ok))]
                out.append((pool_left.pop(k), True, share / len(ok)))
                continue
        if exploit_left:
            out.append((exploit_left.pop(0), False, (1.0 - share) if explorable else 1.0))
        else:
            break
    return out
