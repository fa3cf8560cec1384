"""User content profiles: a recency-weighted blend of the vectors of what they engaged with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt


def content_profile(
    history: Sequence[tuple[str, float]],
    vectors: Mapping[str, npt.NDArray[np.floating[Any]]],
    *,
    half_life: float = 20.0,
) -> npt.NDArray[np.float32] | None:
    """Normalised profile from (item_id, signed weight) pairs, most recent first.

    The i-th most recent item counts `0.5 ** (i / half_life)` times its weight, so tastes
    drift with behaviour; negative weights (dislikes) push the profile away from an item.
    Returns None when nothing positive is known.
    """
    acc: npt.NDArray[np.floating[Any]] | None = None
    positive = False
    for rank, (item_id, weight) in enumerate(history):
        vec = vectors.get(item_id)
        if vec is None or weight == 0:
            continue
        positive |= weight > 0
        term = (weight * 0.5 ** (rank / half_life)) * vec
        acc = term if acc is None else acc + term
    if acc is None or not positive:
        return None
    norm = float(np.linalg.norm(acc))
    return None if norm < 1e-9 else (acc / norm).astype(np.float32)
