"""Rule 4, freshness: a recency boost that halves every half-life since publication."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

DAY_S = 86_400.0


def freshness_boost(
    published_at: npt.ArrayLike, *, now: float, weight: float, half_life_days: float
) -> npt.NDArray[np.float64]:
    """`weight` x 2^(-age / half-life) per item; 0 for unknown (0) or future dates."""
    published = np.asarray(published_at, dtype=np.float64)
    if weight <= 0 or len(published) == 0:
        return np.zeros(len(published))
    age_days = (now - published) / DAY_S
    known = (published > 0) & (age_days >= 0)
    return np.where(known, weight * np.exp2(-np.maximum(age_days, 0) / half_life_days), 0.0)


def is_new(published_at: float, *, now: float, new_days: float) -> bool:
    """Published within the last `new_days` (explained to users as 'new')."""
    return published_at > 0 and 0 <= now - published_at <= new_days * DAY_S
