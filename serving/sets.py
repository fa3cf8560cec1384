"""Stage 1a: the request's candidate sets, read from the store, or built on a miss and kept.

The personal sources (personal, preferences) read the user's set and similar_item reads the
context item's: no Milvus call while the sets exist. A set built from older models or an
older collection (its tag) is still served, re-scored live, and queued for a refresh. On a
miss (a new user, a new context item, an expired set) the request retrieves live, exactly as
without sets, and queues the set: the refresher builds it, batched with others, before the
owner's next request. Requests with a category or language filter retrieve live: a set of a
few hundred candidates may hold too few of them. A filter expression reads the sets and is
checked on their candidates in process; when fewer than twice the list match, the request
retrieves live (serving/stages.py).

From a set, candidates are re-scored with the user's current vectors (the in-process item
vectors and the interaction model's factors), and the item neighbours of what the user
engaged with since the set was built join it: a click changes the next list at once, before
any refresh. Every candidate passes the hard constraints on its current metadata.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.candidate_sets import set_tag
from core.context import UserContext
from core.resilience import DependencyDown
from core.stores.item_cache import ItemMeta
from core.stores.protocols import CandidateSet, item_owner, user_owner
from core.surfaces import SurfaceConfig
from serving import itemmeta
from serving.retrieval import SPACE_REASON, SPACE_SOURCE, Candidate, Constraints
from serving.state import ServingState

log = logging.getLogger(__name__)

USER_SOURCES = frozenset({"personal", "preferences"})
ITEM_SOURCES = frozenset({"similar_item"})
BOTH_SOURCES = frozenset({"contextual"})  # the context item blended with the user's taste
RECENT_NEIGHBOURS = 5  # newest engagements since the set whose neighbours join it
NEIGHBOURS_EACH = 20


@dataclass
class Sets:
    """The sets one request uses; `origin` says, per owner kind, where each came from:
    set (stored, current), stale_set (stored, older models: refresh queued), miss (none
    stored: retrieved live, set queued), none (nothing to build: a user without vectors)."""

    user: CandidateSet | None = None
    item: CandidateSet | None = None
    origin: dict[str, str] = field(default_factory=dict)


def current_tag(state: ServingState) -> str:
    cf = state.models.cf()
    return set_tag(state.items.collection, cf.version if cf else None)


def load_sets(
    state: ServingState,
    cfg: SurfaceConfig,
    ctx: UserContext,
    seed: str | None,
    *,
    filtered: bool,
) -> Sets | None:
    """The sets this request's sources read (None: retrieve live)."""
    if not state.settings.candidates.enabled or filtered:
        return None
    names = {s.name for s in cfg.sources}
    want_user = bool(names & (USER_SOURCES | BOTH_SOURCES))
    want_item = bool(names & (ITEM_SOURCES | BOTH_SOURCES)) and seed is not None
    owners = [user_owner(ctx.user_id)] if want_user else []
    owners += [item_owner(seed)] if want_item and seed else []
    if not owners:
        return None
    got = state.candidates.get(owners)
    tag = current_tag(state)
    out = Sets()
    if want_user:
        out.user = _user_set(state, ctx, got.get(owners[0]), tag, out.origin)
    if want_item and seed:
        out.item = _item_set(state, seed, got.get(item_owner(seed)), tag, out.origin)
    # Every candidate's marks in one round trip, before the sources read them concurrently.
    held = [i for s in (out.user, out.item) if s for hits in s.sources.values() for i, _ in hits]
    if held:
        itemmeta.marks(state, held)
    return out


def _user_set(
    state: ServingState,
    ctx: UserContext,
    have: CandidateSet | None,
    tag: str,
    origin: dict[str, str],
) -> CandidateSet | None:
    has_vectors = not (ctx.cf_vec is None and ctx.content_vec is None and ctx.pref_vec is None)
    # A set built before the user had a vector lacks that space (a new user's first likes
    # give them a content profile): retrieve live, so their own history speaks at once.
    spaces = {"collaborative": ctx.cf_vec, "content_profile": ctx.content_vec}
    lacking = (
        any(v is not None and src not in have.sources for src, v in spaces.items())
        if have
        else False
    )
    if have is not None and not lacking and (any(have.sources.values()) or not has_vectors):
        origin["user"] = _served(state, have, tag)
        return have
    if not has_vectors:
        origin["user"] = "none"
        return None
    origin["user"] = _missed(state, user_owner(ctx.user_id))
    return None


def _item_set(
    state: ServingState, seed: str, have: CandidateSet | None, tag: str, origin: dict[str, str]
) -> CandidateSet | None:
    if have is not None:
        origin["item"] = _served(state, have, tag)
        return have
    origin["item"] = _missed(state, item_owner(seed))
    return None


def _served(state: ServingState, have: CandidateSet, tag: str) -> str:
    """set, or stale_set (older models or collection): served, re-scored live, and queued."""
    if have.tag == tag:
        return "set"
    with contextlib.suppress(DependencyDown):
        state.candidates.mark_stale([have.owner], have.built_at)
    return "stale_set"


def _missed(state: ServingState, owner: str) -> str:
    """No set: this request retrieves live (as without sets), and the set is queued, so the
    refresher builds it, many owners per Milvus call, before the owner's next request."""
    with contextlib.suppress(DependencyDown):
        state.candidates.mark_stale([owner], time.time())
    return "miss"


def admitted(
    state: ServingState, ids: Sequence[str], constraints: Constraints
) -> dict[str, ItemMeta]:
    """The current metadata of the ids that pass the hard constraints and are not tombstoned
    (the change log tells the process cache which entries to read again)."""
    marks = itemmeta.marks(state, ids)
    meta = state.item_cache.get(state.items, ids, marks.changed_at)
    excluded = set(constraints.exclude) | marks.tombstoned
    return {i: m for i, m in meta.items() if i not in excluded and constraints.admits(m.fields)}


def _live_cf(state: ServingState, ctx: UserContext, ids: Sequence[str]) -> dict[str, float]:
    """User cf vector . item factors, for the items the interaction model knows."""
    cf = state.models.cf()
    if cf is None or ctx.cf_vec is None or len(ctx.cf_vec) != cf.als.item_factors.shape[1]:
        return {}
    known = [(i, cf.item_index[i]) for i in ids if i in cf.item_index]
    if not known:
        return {}
    rows = cf.als.item_factors[[p for _, p in known]]
    scores = rows @ ctx.cf_vec.astype(np.float32)
    return dict(zip([i for i, _ in known], scores.tolist(), strict=True))


def _since_set(state: ServingState, ctx: UserContext, built_at: float) -> list[tuple[str, float]]:
    """Neighbours (interaction model) of what the user engaged with after the set was built."""
    cf = state.models.cf()
    if cf is None or cf.neighbours is None:
        return []
    newer = [i for i, t in zip(ctx.recent, ctx.recent_ts, strict=True) if t > built_at]
    out: dict[str, float] = {}
    ids = cf.als.item_ids or []
    for seed in newer[:RECENT_NEIGHBOURS]:
        if seed not in cf.item_index:
            continue
        indices, weights = cf.neighbours.row(cf.item_index[seed])
        order = np.argsort(-weights, kind="stable")[:NEIGHBOURS_EACH]
        for k in order:
            if weights[k] > 0:
                item = str(ids[indices[k]])
                out[item] = max(out.get(item, 0.0), float(weights[k]))
    return list(out.items())


def _fused(w: Mapping[str, float], scores: Mapping[str, float]) -> float:
    """Milvus' WeightedRanker over inner products: sum of w * (0.5 + atan(s) / pi)."""
    return sum(w[f] * (0.5 + math.atan(s) / math.pi) for f, s in scores.items())


def personal(
    state: ServingState,
    ctx: UserContext,
    s: CandidateSet,
    cfg: SurfaceConfig,
    constraints: Constraints,
    quota: int,
) -> list[Candidate]:
    """The personal source from the user's set, re-scored with the user's current vectors."""
    weights = {f: w for f, w in cfg.hybrid_weights.items() if w > 0}
    lists = {f: list(s.sources.get(SPACE_SOURCE[f], [])) for f in ("cf_vec", "content_vec")}
    usable = [f for f in lists if lists[f] and f in weights]
    if not usable and lists["content_vec"]:
        usable, weights = ["content_vec"], {"content_vec": 1.0}
    if not usable:
        return []
    kept = {f: dict(lists[f]) for f in usable}
    if "cf_vec" in usable:
        for item, w in _since_set(state, ctx, s.built_at):
            kept["cf_vec"].setdefault(item, w)
    ids = list(dict.fromkeys(i for f in usable for i in kept[f]))
    meta = admitted(state, ids, constraints)
    live: dict[str, dict[str, float]] = {"cf_vec": {}, "content_vec": {}}
    if "cf_vec" in usable:
        live["cf_vec"] = _live_cf(state, ctx, list(meta))
    if "content_vec" in usable and ctx.content_vec is not None:  # else scored for nothing
        mine = ctx.content_vec.astype(np.float32)
        live["content_vec"] = {
            i: float(m.vec @ mine) for i, m in meta.items() if len(m.vec) == len(mine)
        }
    scored = []
    for i in meta:
        # A space scores the items it found (as in Milvus' fusion), with the live score.
        per_space = {f: live[f].get(i, kept[f][i]) for f in usable if i in kept[f]}
        first = per_space[usable[0]] if len(usable) == 1 else _fused(weights, per_space)
        scored.append((first, i, per_space))
    scored.sort(key=lambda t: -t[0])
    # Candidates only for the quota (a set holds a few hundred items).
    return [
        _personal_candidate(i, meta[i], per_space, usable, weights)
        for _, i, per_space in scored[:quota]
    ]


def _personal_candidate(
    item_id: str,
    meta: ItemMeta,
    per_space: dict[str, float],
    usable: list[str],
    weights: Mapping[str, float],
) -> Candidate:
    scores = {SPACE_SOURCE[f]: v for f, v in per_space.items()}
    if len(usable) > 1:
        source, reason = "hybrid_ann", SPACE_REASON["cf_vec"]
        scores["hybrid_ann"] = _fused(weights, per_space)
    else:
        source, reason = SPACE_SOURCE[usable[0]], SPACE_REASON[usable[0]]
    return Candidate(item_id, dict(meta.fields), [source], scores, [reason])


def listed(
    state: ServingState,
    s: CandidateSet,
    source: str,
    *,
    reason: str,
    constraints: Constraints,
    quota: int,
) -> list[Candidate]:
    """One source's list of a set, as stored (best first), that passes the constraints: read
    in slices of 1.5x the quota, until the quota is met (a set holds a few hundred items; most
    pass, so the rest is never looked up)."""
    hits = s.sources.get(source, [])
    out: list[Candidate] = []
    step = quota + quota // 2 + 1
    for start in range(0, len(hits), step):
        part = hits[start : start + step]
        meta = admitted(state, [i for i, _ in part], constraints)
        out += [
            Candidate(i, dict(meta[i].fields), [source], {source: sc}, [reason])
            for i, sc in part
            if i in meta
        ]
        if len(out) >= quota:
            break
    return out[:quota]


def contextual(
    state: ServingState,
    query: np.ndarray,
    sets: Sets,
    *,
    reason: str,
    constraints: Constraints,
    quota: int,
) -> list[Candidate]:
    """The contextual source from the sets: the context item's content neighbours and the
    user's content-profile and preference candidates, ranked by the blended query (the item
    and the user's profile) on the items' in-process content vectors. The items nearest a
    blend are mostly near one of its parts, so this finds nearly what a live ANN over the blend
    finds (on the unit tests' catalogue: the same top 5), with no Milvus call."""
    parts = (
        (sets.item, "similar_item"),
        (sets.user, "content_profile"),
        (sets.user, "preferences"),
    )
    pool = [i for s, source in parts if s for i, _ in s.sources.get(source, [])]
    meta = admitted(state, list(dict.fromkeys(pool)), constraints)
    q = query.astype(np.float32)
    out = [
        Candidate(i, dict(m.fields), ["contextual"], {"contextual": float(m.vec @ q)}, [reason])
        for i, m in meta.items()
        if len(m.vec) == len(q)
    ]
    out.sort(key=lambda c: -c.score)
    return out[:quota]
