"""Rule 3, explicit negative feedback: near neighbours of disliked or skipped items sink.

The disliked items themselves never come back (they are excluded with the safety rule, on every
path). Items whose content is this close to one of them lose score in proportion to how close.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def negative_penalties(
    item_vecs: npt.NDArray[np.floating[Any]],
    negative_vecs: npt.NDArray[np.floating[Any]],
    *,
    similarity: float,
    penalty: float,
) -> npt.NDArray[np.floating[Any]]:  # zeros are float64, else the vectors' dtype
    """Score to subtract per item: `penalty` x its best cosine to a negative, where >= `similarity`.

    Rows of NaN (unknown vectors) get no penalty. Vectors are unit-normalised content vectors.
    """
    n = len(item_vecs)
    if n == 0 or len(negative_vecs) == 0 or penalty <= 0:
        return np.zeros(n)
    if item_vecs.shape[1] != negative_vecs.shape[1]:
        return np.zeros(n)
    sims = np.nan_to_num(item_vecs @ negative_vecs.T, nan=-1.0).max(axis=1)
    return np.where(sims >= similarity, penalty * sims, 0.0)
