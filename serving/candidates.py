"""Stage 1, candidate generation: the sources a surface names, run concurrently, unioned.

Each source returns up to its quota of candidates that already satisfy the hard constraints
(maturity, status, category, language; Milvus applies them inside the search). The union keeps
provenance: which sources proposed each item, its score and its rank in each.

Sources that may call Milvus run in the state's thread pool against the surface's time
budget; those that read only memory and Redis (a candidate set, the in-process models, the
popular snapshot) run in the request's thread meanwhile: a hand-off costs more than they do.
A source that fails or runs out of time is left out (the response is then marked degraded
with `source_<reason>`, and `debug` names the source); if the first-listed (primary) source
fails, the failure propagates so the request degrades to its fallbacks. A source past the
deadline is abandoned, not interrupted: its Milvus call ends by the client's own timeout.
"""

from __future__ import annotations

import concurrent.futures as cf_futures
import contextvars
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.candidate_sets import COLD_UNTIL
from core.context import UserContext
from core.errors import NotFound
from core.resilience import DependencyDown
from core.surfaces import SourceName, SurfaceConfig
from serving import itemmeta, preferences, retrieval, sets
from serving.policy.safety import visible
from serving.retrieval import Candidate, Constraints
from serving.state import ServingState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Seed:
    """The context item of item surfaces (up_next, related, contextual)."""

    item_id: str
    title: str
    content_vec: np.ndarray


@dataclass(frozen=True)
class Need:
    """What one request asks of its sources."""

    ctx: UserContext
    surface: SurfaceConfig
    constraints: Constraints
    seed: Seed | None
    category: str | None
    now: float
    limit: int = 20
    sets: sets.Sets | None = None  # None: every source retrieves live


@dataclass
class SourceRun:
    name: str
    count: int = 0
    ms: float = 0.0
    error: str | None = None
    origin: str = "live"  # or, from a candidate set: set, stale_set, miss (built now), none


@dataclass
class Generated:
    candidates: list[Candidate]
    runs: list[SourceRun] = field(default_factory=list)


def _fields(state: ServingState) -> retrieval.FieldsOf:
    return lambda ids: itemmeta.fields(state, ids)


def load_seed(state: ServingState, item_id: str, *, max_maturity: int, region: str | None) -> Seed:
    """The context item, or 404 if it does not exist, was deleted or hidden, or is one this
    user may not see (maturity, region): the same answer, so its existence is not revealed
    and its title never reaches a reason."""
    meta = itemmeta.current(state, [item_id]).get(item_id)
    if meta is None or not visible(meta.fields, max_maturity=max_maturity, region=region):
        raise NotFound(f"item {item_id!r} does not exist")
    return Seed(item_id, meta.title, meta.vec)


def _personal(state: ServingState, need: Need, quota: int) -> list[Candidate]:
    """ANN over the user's vectors, fused with the surface's weights.

    Spaces with weight 0 are not searched; a user without a vector in any weighted space
    falls back to their content profile. Candidates name the space that found them
    (collaborative, content_profile, or hybrid_ann for both).
    """
    ctx = need.ctx
    if need.sets and need.sets.user:
        return sets.personal(state, ctx, need.sets.user, need.surface, need.constraints, quota)
    weights = {f: w for f, w in need.surface.hybrid_weights.items() if w > 0}
    mine = {"content_vec": ctx.content_vec, "cf_vec": ctx.cf_vec}
    usable = {f: v for f, v in mine.items() if v is not None and f in weights}
    if not usable and ctx.content_vec is not None:
        usable = {"content_vec": ctx.content_vec}
    if len(usable) > 1:
        got = retrieval.hybrid(
            state.items,
            usable,
            weights,
            reason=retrieval.SPACE_REASON["cf_vec"],
            constraints=need.constraints,
            limit=quota,
        )
        return got
    for space, vec in usable.items():
        return retrieval.ann(
            state.items,
            vec,
            source=retrieval.SPACE_SOURCE[space],
            reason=retrieval.SPACE_REASON[space],
            constraints=need.constraints,
            limit=quota,
            space=space,
        )
    return []


def _preferences(state: ServingState, need: Need, quota: int) -> list[Candidate]:
    user_set = need.sets.user if need.sets else None
    return preferences.source(state, need.ctx, user_set, need.constraints, quota)


def _popular(state: ServingState, need: Need, quota: int) -> list[Candidate]:
    """All-time popularity: the in-process snapshot while it is fresh, else Redis + Milvus.

    (What is popular in the user's region now is the `trending` source's regional scope.)
    """
    snap = state.snapshot
    if _snapshot_fresh(state, need):
        cons = need.constraints
        excluded = set(cons.exclude)
        out = []
        # Lazily: a thousand snapshot items, of which 2 x quota are taken.
        for item_id, fields, score in snap.entries(category=need.category, language=cons.language):
            if item_id in excluded or not cons.admits(fields):
                continue
            out.append((item_id, fields, score))
            if len(out) >= 2 * quota:
                break
        # Items written since the snapshot may carry outdated metadata: read theirs again.
        stale = itemmeta.marks(state, [i for i, _, _ in out]).changed_since(snap.taken_at)
        fresh = itemmeta.fields(state, list(stale)) if stale else {}
        kept = []
        for item_id, fields, score in out:
            if item_id in stale:
                if item_id not in fresh or not cons.admits(fresh[item_id]):
                    continue
                fields = fresh[item_id]
            kept.append(
                Candidate(
                    item_id, dict(fields), ["popular"], {"popular": score}, ["popular right now"]
                )
            )
            if len(kept) >= quota:
                break
        return kept
    return retrieval.popular(
        state.catalogue, _fields(state), constraints=need.constraints, limit=quota
    )


def _trending(state: ServingState, need: Need, quota: int) -> list[Candidate]:
    """Narrowest scope first: the asked category, else the user's region, else everywhere."""
    region = need.ctx.region
    if need.category:
        scope, reason = f"cat:{need.category}", f"trending in {need.category}"
    elif region:
        scope, reason = f"region:{region}", "trending in your region"
    else:
        scope, reason = "all", "trending now"
    scopes = [(scope, reason)] + ([("all", "trending now")] if scope != "all" else [])
    found: dict[str, Candidate] = {}
    for sc, why in scopes:
        if len(found) < quota:
            got = retrieval.trending(
                state.catalogue,
                _fields(state),
                scope=sc,
                reason=why,
                constraints=need.constraints,
                limit=quota,
            )
            retrieval.merge(found, [c for c in got if c.item_id not in found])
    return list(found.values())[:quota]


def _fresh(state: ServingState, need: Need, quota: int) -> list[Candidate]:
    """Recently published items nearest the user's taste (none without a vector)."""
    ctx = need.ctx
    space, vec = (
        ("cf_vec", ctx.cf_vec)
        if ctx.cf_vec is not None and need.surface.hybrid_weights.get("cf_vec", 0) > 0
        else ("content_vec", ctx.content_vec if ctx.content_vec is not None else ctx.pref_vec)
    )
    if vec is None:
        return []
    cutoff = int(need.now - need.surface.fresh_days * 86_400)
    cons = dataclasses.replace(need.constraints, published_after=cutoff)
    return retrieval.ann(
        state.items, vec, source="fresh", reason="new", constraints=cons, limit=quota, space=space
    )


def _similar_item(state: ServingState, need: Need, quota: int) -> list[Candidate]:
    assert need.seed is not None
    if need.sets and need.sets.item:
        return sets.listed(
            state,
            need.sets.item,
            "similar_item",
            reason=f"similar to {need.seed.title}",
            constraints=need.constraints,
            quota=quota,
        )
    return retrieval.ann(
        state.items,
        need.seed.content_vec,
        source="similar_item",
        reason=f"similar to {need.seed.title}",
        constraints=need.constraints,
        limit=quota,
    )


def _item_neighbours(state: ServingState, need: Need, quota: int) -> list[Candidate]:
    assert need.seed is not None
    return retrieval.neighbours(
        state.models.cf(),
        _fields(state),
        need.seed.item_id,
        reason=f"people who watched {need.seed.title} also watched it",
        constraints=need.constraints,
        limit=quota,
    )


def _contextual(state: ServingState, need: Need, quota: int) -> list[Candidate]:
    """ANN over the context item blended with the user's content profile."""
    assert need.seed is not None
    ctx = need.ctx
    user = ctx.content_vec if ctx.content_vec is not None else ctx.pref_vec
    w = need.surface.context_weight
    query = need.seed.content_vec
    if user is not None and len(user) == len(query):
        query = w * query + (1 - w) * user
        query = query / max(float(np.linalg.norm(query)), 1e-12)
    if _origin(need, "contextual") in ("set", "stale_set") and need.sets is not None:
        return sets.contextual(
            state,
            query,
            need.sets,
            reason=f"goes with {need.seed.title}",
            constraints=need.constraints,
            quota=quota,
        )
    return retrieval.ann(
        state.items,
        query,
        source="contextual",
        reason=f"goes with {need.seed.title}",
        constraints=need.constraints,
        limit=quota,
    )


SOURCES: dict[str, Callable[[ServingState, Need, int], list[Candidate]]] = {
    "personal": _personal,
    "preferences": _preferences,
    "popular": _popular,
    "trending": _trending,
    "fresh": _fresh,
    "similar_item": _similar_item,
    "item_neighbours": _item_neighbours,
    "contextual": _contextual,
}


def _origin(need: Need, source: str) -> str:
    if need.sets is None:
        return "live"
    if source in sets.USER_SOURCES:
        return need.sets.origin.get("user", "live")
    if source in sets.ITEM_SOURCES:
        return need.sets.origin.get("item", "live")
    if source in sets.BOTH_SOURCES:
        # From the sets when both are there (a user without vectors has nothing to blend in).
        item, user = need.sets.origin.get("item", "live"), need.sets.origin.get("user", "live")
        if item not in ("set", "stale_set") or user in ("set", "stale_set", "none"):
            return item
        return user
    return "live"


def _in_memory(state: ServingState, need: Need, source: str) -> bool:
    """Whether `source` answers without a Milvus call (barring item-cache misses)."""
    if source in sets.USER_SOURCES | sets.ITEM_SOURCES | sets.BOTH_SOURCES:
        if source == "preferences" and not need.ctx.picks:
            return True  # nothing to retrieve: no picks
        return _origin(need, source) in ("set", "stale_set")
    # The neighbour model is in process; the popular source is while its snapshot is fresh.
    return source == "item_neighbours" or (source == "popular" and _snapshot_fresh(state, need))


def _snapshot_fresh(state: ServingState, need: Need) -> bool:
    """Whether the popular source answers from the in-process snapshot (else Redis + Milvus)."""
    snap, max_age = state.snapshot, 3 * state.settings.serving.snapshot_refresh_s
    return bool(snap.taken_at and need.now - snap.taken_at < max_age and len(snap))


def _in_context(
    pool: cf_futures.Executor, fn: Callable[..., list[Candidate]], *args: Any
) -> cf_futures.Future[list[Candidate]]:
    """`fn` on the pool, in a copy of the request's context (its pinned model versions)."""
    return pool.submit(contextvars.copy_context().run, fn, *args)


def _collect(
    futures: dict[SourceName, cf_futures.Future[list[Candidate]]],
    runs: dict[SourceName, SourceRun],
    results: dict[SourceName, list[Candidate]],
    deadline: float,
) -> None:
    """The pooled sources' results by `deadline` into `results`; the rest `over_budget`."""
    cf_futures.wait(futures.values(), timeout=max(deadline - time.monotonic(), 0.0))
    for name, fut in futures.items():
        if not fut.done():
            fut.cancel()
            runs[name].error = "over_budget"
            continue
        try:
            results[name] = fut.result()
        except DependencyDown as e:
            runs[name].error = e.reason


def generate(state: ServingState, need: Need, *, extra: int, deadline: float) -> Generated:
    """Run every source of the surface (each asked for its quota + `extra`) until `deadline`."""
    cold = len(need.ctx.recent) < COLD_UNTIL
    specs = [s for s in need.surface.sources if cold or not s.cold_only] or need.surface.sources
    runs = {s.name: SourceRun(s.name, origin=_origin(need, s.name)) for s in specs}

    def run(name: SourceName, quota: int) -> list[Candidate]:
        t = time.perf_counter()
        try:
            return SOURCES[name](state, need, quota)
        except DependencyDown:
            raise
        except Exception as e:
            # A broken source (an unreadable model artefact, a bug) costs its candidates, not
            # the request.
            log.exception("source %s failed", name)
            raise DependencyDown("source_error", e) from e
        finally:
            runs[name].ms = round((time.perf_counter() - t) * 1000, 2)

    quota = {s.name: min(s.quota + extra, retrieval.MILVUS_MAX_TOPK) for s in specs}
    first = specs[0].name
    overfetch = need.limit * state.settings.serving.overfetch + extra
    quota[first] = min(max(quota[first], overfetch), retrieval.MILVUS_MAX_TOPK)
    pooled = [s.name for s in specs if not _in_memory(state, need, s.name)]
    futures = (
        {n: _in_context(state.pool, run, n, quota[n]) for n in pooled} if len(specs) > 1 else {}
    )
    results: dict[SourceName, list[Candidate]] = {}
    for s in specs:
        if s.name not in futures:
            try:
                results[s.name] = run(s.name, quota[s.name])
            except DependencyDown as e:
                runs[s.name].error = e.reason
    if futures:
        _collect(futures, runs, results, deadline)
    found: dict[str, Candidate] = {}
    for s in specs:  # merged in the surface's order: the first source's provenance leads
        got = results.get(s.name, [])[: quota[s.name]]
        for rank, c in enumerate(got):
            c.ranks[s.name] = rank
        runs[s.name].count = len(got)
        retrieval.merge(found, got)
    failed = [r.error for r in runs.values() if r.error]
    if runs[first].error or (failed and not runs[first].count):
        # Without its primary source a surface is not itself: the request's fallbacks (its
        # last good list, then the popular snapshot) serve it better than the other sources.
        reason = runs[first].error or failed[0]
        raise DependencyDown(reason if reason != "over_budget" else "milvus_timeout")
    return Generated(list(found.values()), list(runs.values()))
