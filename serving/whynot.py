""" "Why not this item?": runs the pipeline for a request, as `recommend` does but traced and
never cached, and says at which stage an item left the list, with the numbers that decided.

Stages, in pipeline order (the first one that lost the item):

- `unknown_item`: no such item (never written, or deleted);
- `hard_filter`: a safety or availability rule drops it for this user (status, maturity,
  region, language, already seen, disliked, "not interested" in it, its category or its
  creator, the context item itself); nothing brings it back;
- `request_filter`: the request's own `category`, `language` or `filter` excludes it;
- `not_retrieved`: it passes every filter, but no source of the surface returned it (each
  source returns its best candidates up to its quota: the counts are given);
- `below_rank_depth`: retrieved and allowed, but fused below the `rank_depth` best;
- `below_policy_window`: ranked below the window the policy rules look at;
- `category_cap` / `creator_cap` / `unproven_cap`: the list already held as many of its
  category or creator (or of new, signal-less items) as the surface allows (after any cap
  gave way to fill the list);
- `buried`: a bury rule lowered it below the list's length;
- `policy_cut`: scored below the list's length after the policy rules (feedback, freshness,
  boosts);
- `mmr`: it scored high enough, but was too similar to items placed above it;
- `explored_out`: it was in the list, and exploration showed another item in its place;
- `pinned_out`: it made the list, and pins took its place;
- `served`: it is in the list (its `position`).

With `recommendation_id`, exploration draws as it did for that list (same seed); the inputs
(events, catalogue, models) are today's. A list without profiling (`profiling=false`, or the
user's own switch) is asked about as recommend builds it: non-personal sources, no ranker.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from core.context import UserContext
from core.surfaces import SurfaceConfig
from serving import canary, itemmeta, nonprofiling, policy, replay
from serving.policy import HardFilters
from serving.policy.business import rule_deltas
from serving.policy.safety import not_wanted, visible
from serving.request import RecRequest
from serving.retrieval import Candidate, speaks
from serving.stages import Retrieved
from serving.state import ServingState


def why_not(
    state: ServingState, req: RecRequest, item_id: str, recommendation_id: str | None = None
) -> dict[str, Any]:
    """Where `item_id` left the list `req` asks for (see the module docstring)."""
    ctx = replay.context(state, req.user_id)
    if req.region:
        ctx = dataclasses.replace(ctx, region_override=req.region)
    base = state.settings.surfaces[req.surface]
    variant, cfg = canary.assign(state, base, req)
    if nonprofiling.wanted(req, ctx):  # the list without personal data, as recommend builds it
        req = dataclasses.replace(req, profiling=False)
        ctx, cfg, variant = nonprofiling.context(ctx), nonprofiling.config(base), "default"
    run = replay.replay(state, req, cfg, ctx, rec_id=recommendation_id)
    got, ranked, trace, final = run.got, run.ranked, run.trace, run.final
    stage, detail, numbers = _locate(state, req, ctx, cfg, item_id, got, ranked, trace, final)
    return {
        "item_id": item_id,
        "user_id": req.user_id,
        "surface": req.surface,
        "variant": variant,
        "profiling": req.profiling,
        "stage": stage,
        "served": stage == "served",
        "detail": detail,
        "numbers": numbers,
        "items": [c.item_id for c in final],
    }


def _locate(
    state: ServingState,
    req: RecRequest,
    ctx: UserContext,
    cfg: SurfaceConfig,
    item_id: str,
    got: Retrieved,
    ranked: list[Candidate],
    trace: dict[str, Any],
    final: list[Candidate],
) -> tuple[str, str, dict[str, Any]]:
    """(stage, detail, numbers) of the first stage that lost `item_id`."""
    ids = [c.item_id for c in final]
    if item_id in ids:
        at = ids.index(item_id) + 1
        return "served", f"at position {at}", {"position": at}
    fused = {c.item_id: (n, c) for n, c in enumerate(got.fused, 1)}
    if item_id not in fused:
        return _not_fused(state, req, ctx, item_id, got)
    n, cand = fused[item_id]
    refused = _refused(cand.fields, item_id, got.hard, ctx)
    if refused:
        return "hard_filter", refused, {"fused_position": n}
    kept = [c.item_id for c in got.candidates]
    if item_id not in kept:
        allowed_before = sum(1 for c in got.fused[: n - 1] if c.item_id in set(kept))
        return (
            "below_rank_depth",
            f"fused at {allowed_before + 1} among allowed candidates; the ranker sees the best "
            f"{cfg.rank_depth}",
            {"allowed_position": allowed_before + 1, "rank_depth": cfg.rank_depth},
        )
    ranked_ids = [c.item_id for c in ranked]
    pos = ranked_ids.index(item_id) + 1
    window = list(ranked[: policy.window_size(cfg.policy, req.limit)])
    if item_id not in {c.item_id for c in window} or "picked" not in trace:
        return (
            "below_policy_window",
            f"ranked {pos}; the policy rules look at the best {len(window)} for {req.limit} items",
            {"ranked_position": pos, "window": len(window), "score": _score(ranked[pos - 1])},
        )
    return _in_window(state, req, item_id, window, trace, pos)


def _not_fused(
    state: ServingState, req: RecRequest, ctx: UserContext, item_id: str, got: Retrieved
) -> tuple[str, str, dict[str, Any]]:
    meta = itemmeta.current(state, [item_id]).get(item_id)
    if meta is None:  # tombstoned (deleted or hidden) or unknown: the stored row says which
        row = state.items.get([item_id]).get(item_id)
        if row is not None and row.get("status") == "hidden":
            return "hard_filter", "status 'hidden': not shown to users", {}
        return "unknown_item", "no such item (never written, or deleted)", {}
    fields = dict(meta.fields)
    refused = _refused(fields, item_id, got.hard, ctx)
    if refused:
        return "hard_filter", refused, {}
    cat, lang = fields.get("category"), str(fields.get("language") or "und")
    if req.category and cat != req.category:
        return "request_filter", f"its category is {cat!r}, the request asks {req.category!r}", {}
    if req.language and not speaks(req.language, lang):
        return "request_filter", f"its language is {lang!r}, the request asks {req.language!r}", {}
    if req.expr is not None and not req.expr.check(fields):
        return "request_filter", f"the request's filter excludes it: {req.filter}", {}
    counts = {r.name: r.count for r in got.runs}
    said = ", ".join(f"{k} {v}" for k, v in counts.items())
    return (
        "not_retrieved",
        f"no source of the surface returned it (each returns its best candidates: {said})",
        {"sources": counts},
    )


def _refused(fields: dict[str, Any], item_id: str, hard: HardFilters, ctx: UserContext) -> str:
    """Which safety or availability rule drops the item for this user ('' if none)."""
    if item_id in hard.tombstoned:
        return "deleted"
    if fields.get("status", "active") != "active":
        return f"status {fields.get('status')!r}: not shown to users"
    maturity = int(fields.get("maturity") or 0)
    if maturity > hard.max_maturity:
        return f"maturity {maturity} is above this user's ceiling {hard.max_maturity}"
    if not visible(fields, max_maturity=hard.max_maturity, region=hard.region):
        return f"not available in the user's region ({hard.region or 'unknown'})"
    if hard.language and not speaks(hard.language, str(fields.get("language") or "und")):
        return f"in {fields.get('language')!r}, the user reads {hard.language!r}"
    if item_id in ctx.controls.blocked("item"):
        return "the user said they are not interested in it"
    if hard.unwanted is not None and not_wanted(fields, hard.unwanted):
        return "the user said they are not interested in its category or creator"
    if item_id in ctx.negatives:
        return "the user disliked or skipped it"
    if item_id in hard.exclude:
        return "already seen by the user (or the context item itself)"
    return ""


def _score(c: Candidate) -> float:
    return round(float(next(iter(c.scores.values()), c.score)), 6)


def _in_window(
    state: ServingState,
    req: RecRequest,
    item_id: str,
    window: list[Candidate],
    trace: dict[str, Any],
    ranked_pos: int,
) -> tuple[str, str, dict[str, Any]]:
    """It reached the policy rules: the traced steps say which lost it (MMR under the caps,
    exploration, pins), the scores and counts say why."""
    scores = np.asarray([c.scores.get(policy.POLICY, 0.0) for c in window])
    row = next(i for i, c in enumerate(window) if c.item_id == item_id)
    policy_rank = int((scores > scores[row]).sum()) + 1
    numbers: dict[str, Any] = {
        "ranked_position": ranked_pos,
        "policy_score": round(float(scores[row]), 6),
        "policy_rank": policy_rank,
        "limit": req.limit,
    }
    picked, placed = list(trace["picked"]), list(trace["placed"])
    if row in placed:
        return "pinned_out", "it made the list; pins took its place", numbers
    if row in picked:
        numbers["exploit_position"] = picked.index(row) + 1
        return "explored_out", "exploration showed another item in its place", numbers
    cap = _cap(row, picked, trace)
    if cap:
        return cap, f"the list already holds as many as the {cap.replace('_', ' ')} allows", numbers
    rules = state.rules.snapshot().for_surface(req.surface, time.time())
    buries = [r for r in rules if r.action == "bury"]
    if policy_rank > req.limit:
        if buries and rule_deltas(buries, [window[row]])[0] < 0:
            return "buried", "a bury rule lowered it below the list", numbers
        said = f"policy rank {policy_rank}, below the {req.limit} items asked"
        return "policy_cut", said, numbers
    return "mmr", "too similar to the items placed above it (maximal marginal relevance)", numbers


def _cap(row: int, picked: list[int], trace: dict[str, Any]) -> str | None:
    """The diversity cap (as it held in the end) the picked rows already fill for `row`."""
    traits, caps = trace["traits"], trace["caps"]
    category, creator = traits.categories[row], traits.creators[row]
    if category is not None:
        limit = caps.of_category(category)
        if limit is not None and sum(traits.categories[i] == category for i in picked) >= limit:
            return "category_cap"
    creators = sum(traits.creators[i] == creator for i in picked)
    if creator is not None and caps.creator is not None and creators >= caps.creator:
        return "creator_cap"
    unproven = sum(traits.unproven[i] for i in picked)
    if traits.unproven[row] and caps.unproven is not None and unproven >= caps.unproven:
        return "unproven_cap"
    return None
