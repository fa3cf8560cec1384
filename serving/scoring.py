"""Stage 2, light scoring: one fused score per candidate from its ranks in every source.

Weighted reciprocal rank fusion (Cormack et al. 2009): score = sum over the sources that
proposed the item of weight / (k + rank + 1). Ranks, not raw scores, so inner products,
popularity counts and trending weights need no common scale. A smaller k than the paper's 60
(the surface's `fusion_k`, 20 by default) keeps a source's own order meaningful: at k = 60 an
item that two popularity sources both list outranks the primary source's best match. The
best `rank_depth` go on to the ranker and the policy (whose exploration pool draws from the
ones that just missed the list).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from serving.retrieval import Candidate

RRF_K = 20
FUSED = "fused"  # key of the fused score in Candidate.scores


def fuse(
    cands: Sequence[Candidate], weights: Mapping[str, float], k: int = RRF_K
) -> list[Candidate]:
    """Candidates by fused score, best first (ties keep their given order)."""
    for c in cands:
        c.scores[FUSED] = sum(
            weights.get(source, 0.0) / (k + rank + 1) for source, rank in c.ranks.items()
        )
    return sorted(cands, key=lambda c: -c.scores[FUSED])
