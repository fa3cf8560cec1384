"""Stage 4, re-ranking to the final list: loads what the policy rules read, runs them, explains.

The rules themselves are pure (serving.policy); this module gathers their inputs - content
vectors (process cache, else one Milvus read), popularity and the rules snapshot - and degrades
rule by rule when a dependency cannot say: no vectors, no MMR; no popularity, no throttle.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from core.context import UserContext
from core.resilience import DependencyDown
from core.rules import Rule, RuleSnapshot
from core.surfaces import SurfaceConfig
from serving import explain, itemmeta, policy
from serving.features import vector_matrix
from serving.policy import HardFilters, PolicyInputs, passes
from serving.policy.business import pin_positions
from serving.retrieval import Candidate, Constraints
from serving.state import ServingState

log = logging.getLogger(__name__)

RECENT_EXPLAIN = 5  # recent items an explanation may cite
TASTE_ITEMS = 50  # recent items whose categories set the user's own category caps
NEGATIVES_USED = 20  # most recent dislikes whose neighbours are demoted


def finalize(
    state: ServingState,
    *,
    surface: str,
    cfg: SurfaceConfig,
    ctx: UserContext,
    ranked: Sequence[Candidate],
    hard: HardFilters,
    constraints: Constraints,
    limit: int,
    seed: int,
    now: float,
    rules: RuleSnapshot,
    notes: dict[str, Any] | None = None,
    trace: dict[str, object] | None = None,
) -> list[Candidate]:
    """The final list for one request (`rules`: the snapshot its cache key was built with;
    `notes` gets what the policy had to give way on: `caps_relaxed`; `trace` the policy's
    steps, for why-not)."""
    spec = cfg.policy
    window = list(ranked[: policy.window_size(spec, limit)])
    ids = [c.item_id for c in window]
    negatives = ctx.negatives[:NEGATIVES_USED]
    disliked = set(ctx.negatives)
    liked = [i for i in ctx.recent if i not in disliked][:TASTE_ITEMS]
    recent = liked[:RECENT_EXPLAIN]
    try:
        meta = state.item_cache.get(state.items, [*ids, *negatives, *liked])
    except DependencyDown:
        meta = {}
    active = rules.for_surface(surface, now) if spec.rules else []
    inp = PolicyInputs(
        now=now,
        seed=seed,
        item_vecs=vector_matrix(meta, ids),
        popularity=_popularity(state, window),
        negative_vecs=vector_matrix(meta, [i for i in negatives if i in meta]),
        rules=active,
        pinned=_pinned(state, active, window, hard, constraints),
        category_filter=constraints.category is not None,
        taste=Counter(c for i in liked if i in meta and (c := meta[i].category)),
        taste_similarity=taste_similarity(vector_matrix(meta, [i for i in liked if i in meta])),
        trace=trace,
    )
    final = policy.run(window, spec, inp, limit=limit)
    if notes is not None:
        notes["caps_relaxed"] = list(inp.caps_relaxed)
    explain.because_you_watched(final, recent, meta)
    explain.honest_picks(final, ctx.picks, meta)
    return final


def taste_similarity(vecs: npt.NDArray[np.float32]) -> float:
    """The mean pairwise similarity of a user's recent items (0 with fewer than 2 known)."""
    known = vecs[np.isfinite(vecs).all(axis=1)] if len(vecs) else vecs
    n = len(known)
    if n < 2:
        return 0.0
    total = known.sum(axis=0)
    # Sum over pairs i != j of v_i . v_j = |sum v|^2 - sum |v_i|^2.
    pairs = float(total @ total) - float((known * known).sum())
    return max(pairs / (n * (n - 1)), 0.0)


def _popularity(state: ServingState, window: Sequence[Candidate]) -> npt.NDArray[np.float64]:
    """Interaction weight per item (read again only where this request has not read it yet);
    +inf when Redis cannot say (nothing is throttled then)."""
    out = np.asarray([np.nan if c.popularity is None else c.popularity for c in window])
    unread = [c.item_id for c in window if c.popularity is None]
    if not unread:
        return out.astype(np.float64)
    try:
        pop = state.catalogue.popularity(unread)
    except DependencyDown:
        pop = [np.inf] * len(unread)
    out[np.isnan(out)] = pop
    return out.astype(np.float64)


def _pinned(
    state: ServingState,
    rules: Sequence[Rule],
    window: Sequence[Candidate],
    hard: HardFilters,
    constraints: Constraints,
) -> dict[str, Candidate]:
    """Pinned items that pass the safety rule and the request's constraints."""
    wanted = list(pin_positions(rules))
    if not wanted:
        return {}
    have = {c.item_id: c for c in window if c.item_id in wanted}
    missing = [i for i in wanted if i not in have]
    try:
        if missing:
            rows = itemmeta.fields(state, missing)
            for i in missing:
                if i in rows:
                    have[i] = Candidate(i, rows[i], ["pinned"], {"pinned": 1.0}, [])
    except DependencyDown:
        log.warning("pinned items not loaded: serving without the missing pins")
    return {i: c for i, c in have.items() if passes(c, hard) and constraints.admits(c.fields)}
