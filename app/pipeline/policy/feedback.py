"""Rule 3, explicit negative feedback: near neighbours of disliked or skipped items sink.

The disliked items themselves never come back (they are excluded with the safety rule, on every
path). Items whose content is this close to one of them lose score in proportion to how close.
"""

from __future__ import annotations

import numpy as np


def negative_penalties(
    item_vecs: np.ndarray, negative_vecs: np.ndarray, *, similarity: float, penalty: float
) -> np.ndarray:
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
