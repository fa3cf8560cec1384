"""The answer when a dependency fails: a safe list without it.

Redis down -> the in-process popular snapshot; Milvus slow or down -> the user's last good list,
then the snapshot. Every fallback passes the same safety policy, and the answer says it was
degraded and why.
"""

from __future__ import annotations

from typing import Any

from core.context import UserContext
from core.resilience import DependencyDown
from serving import fallback
from serving.cache import stale_key, strict_language
from serving.policy import apply_policy
from serving.request import RecRequest, RecResult
from serving.response import response
from serving.retrieval import Candidate
from serving.state import ServingState


def degraded(
    state: ServingState,
    req: RecRequest,
    ctx: UserContext | None,
    reasons: list[str],
    variant: str,
) -> RecResult:
    """A safe list without the failed dependency: last good list, then the popular snapshot.

    Without the user's context (Redis down) nothing is known about their age or region: the
    degraded maturity ceiling applies (`SERVING__DEGRADED_MAX_MATURITY`, 0 = all-ages items
    only) and only items available in every region. Items written after a list or the
    snapshot was built (maturity raised, region restricted, hidden) are dropped, since the
    metadata those lists carry may no longer hold.
    """
    cfg = state.settings.serving
    max_m = ctx.max_maturity(cfg.unknown_age_max_maturity) if ctx else cfg.degraded_max_maturity
    region = ctx.region if ctx else None
    language = strict_language(state, ctx)
    exclude_seen = state.settings.surfaces[req.surface].policy.exclude_seen
    exclude = set(ctx.recent if ctx and exclude_seen else [])
    exclude |= set(ctx.negatives if ctx else [])
    exclude |= ctx.controls.blocked("item") if ctx else frozenset()
    if req.item_id:
        exclude.add(req.item_id)
    tomb: set[str] = set()
    cands: list[Candidate] = []
    if ctx is not None:  # Redis answers: tombstones, the change log and the last list
        try:
            cands, reasons, tomb, changed = verified_fallbacks(
                state, req, max_m, (region, language), reasons
            )
            exclude |= changed
        except DependencyDown:
            cands = []  # unverifiable now: the snapshot alone
    have = {c.item_id for c in cands}
    cands += [
        c
        for c in state.snapshot.candidates(category=req.category, language=req.language)
        if c.item_id not in have
    ]
    if not state.snapshot.taken_at:
        reasons = [*reasons, "no_snapshot_yet"]
    cands = _checkable(req, ctx, cands)
    final = apply_policy(
        cands,
        limit=req.limit,
        max_maturity=max_m,
        region=region,
        tombstoned=tomb,
        exclude=exclude,
        language=language,
        unwanted=ctx.unwanted if ctx else None,
    )
    out = response(req, final, reasons, variant)
    # Without the context only the popular snapshot answers: nothing personal either way.
    out["profiling"] = req.profiling and ctx is not None
    return out


def _checkable(req: RecRequest, ctx: UserContext | None, cands: list[Candidate]) -> list[Candidate]:
    """The request's filter and the user's "not interested" hold on the fallbacks too; items
    without fields (a last good list's) cannot be checked then, and are left out."""
    expr = req.expr
    if expr is not None or (ctx is not None and ctx.unwanted):
        cands = [c for c in cands if c.fields]
    return [c for c in cands if expr.check(c.fields)] if expr is not None else cands


def verified_fallbacks(
    state: ServingState,
    req: RecRequest,
    max_m: int,
    where: tuple[str | None, str | None],
    reasons: list[str],
) -> tuple[list[Candidate], list[str], set[str], set[str]]:
    """The user's last good list (if filtered at least as strictly as they need now), the
    tombstoned ids, and the ids written since the list or the snapshot was built."""
    # The JSON `serving.cache.remember` wrote (or None); its fields are checked one by one.
    last: Any = state.cache.get(stale_key(state, req))
    cands: list[Candidate] = []
    region, language = where
    same_place = last and last.get("region") == region and last.get("language") == language
    if same_place and "at" in last and last["max_maturity"] <= max_m:
        cands = [
            Candidate(
                i["item_id"],
                {},
                [fallback.STALE_SOURCE, *i["sources"]],
                {fallback.STALE_SOURCE: i["score"]},
                i["reasons"],
            )
            for i in last["items"]
        ]
        reasons = [*reasons, "served_last_good_list"]
    ids = [c.item_id for c in cands] + state.snapshot.ids()
    marks = state.catalogue.marks(ids)
    snap_at = state.snapshot.taken_at
    built = {i: snap_at for i in ids} | {c.item_id: float(last["at"]) for c in cands}
    return cands, reasons, set(marks.tombstoned), marks.changed_since(built)
