"""Rule 5, business rules: boost or bury items and categories, pin items at positions.

Rules are managed through `/v1/admin/rules` (see core.rules); this module applies the ones active
for a surface. Boosts and buries shift the policy score before diversity; pins are placed last,
after exploration, so a pinned item sits exactly at its position (if it passes the safety rule).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from core.rules import Rule, pin_positions, place_pins, score_deltas
from serving.retrieval import Candidate

__all__ = ["pin_positions", "place_pins", "rule_deltas"]


def rule_deltas(rules: Sequence[Rule], cands: Sequence[Candidate]) -> npt.NDArray[np.float64]:
    """Boost (+) and bury (-) per candidate."""
    if not rules:
        return np.zeros(len(cands))
    items = [(c.item_id, c.fields.get("category") or None) for c in cands]
    return np.asarray(score_deltas(rules, items), dtype=np.float64)
