"""The preferences source: what a new user picked at onboarding, until their history speaks.

ANN over the preferences vector the worker builds from the picked categories (or the user's
candidate set, which holds it), and, before that vector exists (a request right after the
profile `PUT`), the picked categories' trending boards, read from Redis only.
"""

from __future__ import annotations

from itertools import zip_longest

from core.candidate_sets import PREFERENCES_UNTIL
from core.context import UserContext
from core.stores.protocols import CandidateSet, trending_board
from serving import itemmeta, retrieval, sets
from serving.explain import PICK_REASON
from serving.retrieval import Candidate, Constraints
from serving.state import ServingState


def source(
    state: ServingState,
    ctx: UserContext,
    user_set: CandidateSet | None,
    constraints: Constraints,
    quota: int,
) -> list[Candidate]:
    """Candidates for what the user picked (none once they have a history of their own)."""
    if not ctx.picks or len(ctx.recent) >= PREFERENCES_UNTIL:
        return []
    if ctx.pref_vec is None:  # just onboarded: the worker has not built the vector yet
        return _picked_boards(state, ctx, constraints, quota)
    if user_set is not None:
        listed = sets.listed(
            state,
            user_set,
            "preferences",
            reason=PICK_REASON,
            constraints=constraints,
            quota=quota,
        )
        # A set built before the vector has no preference candidates yet.
        return listed or _picked_boards(state, ctx, constraints, quota)
    return retrieval.ann(
        state.items,
        ctx.pref_vec,
        source="preferences",
        reason=PICK_REASON,
        constraints=constraints,
        limit=quota,
    )


def _picked_boards(
    state: ServingState, ctx: UserContext, constraints: Constraints, quota: int
) -> list[Candidate]:
    """What trends in each picked category (Redis only), taken in turn: the preferences
    source before the preferences vector exists."""
    per_pick = [
        retrieval.ranked_set(
            state.catalogue,
            trending_board(f"cat:{c}"),
            lambda ids: itemmeta.fields(state, ids),
            source="preferences",
            reason=PICK_REASON,
            constraints=constraints,
            limit=quota,
        )
        for c in ctx.picks
    ]
    found: dict[str, Candidate] = {}
    for row in zip_longest(*per_pick):
        for c in row:
            if c is not None and c.item_id not in found:
                found[c.item_id] = c
    return list(found.values())[:quota]
