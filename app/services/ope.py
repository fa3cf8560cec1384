"""Off-policy evaluation (`POST /v1/admin/ope`, `vantage ope`): the CTR a candidate
configuration of a surface would have had on the lists that surface served, without serving it.

1. **The logs** (`app.services.ope_logs`): the window's served lists of the surface and the
   logged variant, computed afresh (a cached or degraded list is not a draw of the policy),
   newest first, with the clicks the worker attributed to each item.
2. **The candidate's lists**, one of two ways:
   - `shadow` (a registered candidate, `core/stores/shadow.py`): the list serving computed for
     it beside each shadowed list, on the same request and user state (`serving.shadow`), with
     the logging policy's support from that request. Exact; only lists logged while the
     candidate was registered count.
   - `replay` (any configuration, `serving.replay`): each logged request replayed now, with
     the user's history rolled back to the list's time, for the candidate (exploration off:
     its exploit list, pins included) and for the logging configuration (its exploit list and
     exploration pool: the support). Vectors, popularity and candidate sets are today's, so
     the replay drifts from what was served as users click (`replay_consistent` says how
     much). One replay per distinct user state and request, not one per list.
3. **The estimators** (`core.ope`): item-position IPS, SNIPS and DR (a position-based reward
   model fitted on the same logs), each with a bootstrap interval and effective sample size.

The answer is a refusal, not a number, when the logs show too few of the candidate's
item-positions (`min_support`) or the estimate rests on too few of them (`min_ess`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from app.services.ope_logs import Logged as LoggedList
from app.services.ope_logs import logged_lists
from app.services.shadow import known_ranker
from app.state import AppState
from core.errors import InvalidRequest, NotFound
from core.ope import ESTIMATORS, Logged, estimate, position_model
from core.stores.shadow import ShadowStore
from core.surfaces import SurfaceConfig
from serving import replay
from serving.request import RecRequest
from serving.shadow import Support, candidate_config

CHOSEN = "snips"  # the estimator the answer leads with (see bench/simulate.py for why)


@dataclass(frozen=True)
class OpeQuery:
    surface: str
    overrides: dict[str, Any] = field(default_factory=dict)  # the candidate, as a variant's
    variant: str | None = None  # or the candidate is this variant of the surface
    candidate: str | None = None  # or a registered (shadowed) candidate
    reward: dict[str, float] | None = None  # event type -> weight (None: clicked or not)
    logged_variant: str = "default"
    hours: float = 24.0
    since: float | None = None  # unix time; the later of this and `hours` ago
    max_lists: int = 2000
    min_support: float = 0.9
    min_ess: float = 30.0
    alpha: float = 0.05
    boots: int = 300
    seed: int = 0


def configs(state: AppState, q: OpeQuery) -> tuple[SurfaceConfig, SurfaceConfig]:
    """(logging configuration, candidate configuration with exploration off)."""
    base = state.settings.surfaces.get(q.surface)
    if base is None:
        known = sorted(state.settings.surfaces)
        raise InvalidRequest(f"unknown surface {q.surface!r}; known: {known}")
    try:
        logging_cfg = base.arm(q.logged_variant)
    except KeyError as e:
        raise InvalidRequest(
            f"surface {q.surface} has no variant {q.logged_variant!r} "
            f"(known: default, {', '.join(base.variants) or 'no others'})"
        ) from e
    if sum((q.variant is not None, bool(q.overrides), q.candidate is not None)) > 1:
        raise InvalidRequest("give the candidate as one of `candidate`, `variant`, `overrides`")
    try:
        over = base.arm(q.variant).model_dump(exclude={"variants"}) if q.variant else q.overrides
        cand_cfg = candidate_config(base, over)
    except KeyError as e:
        raise InvalidRequest(f"surface {q.surface} has no variant {q.variant!r}") from e
    except ValueError as e:
        raise InvalidRequest(f"overrides do not make a valid surface: {e}") from e
    known_ranker(state, cand_cfg)
    return logging_cfg, cand_cfg


def _registered(state: AppState, q: OpeQuery) -> None:
    if q.candidate is None:
        return
    cand = ShadowStore(state.redis, state.keys).get(q.candidate)
    if cand is None:
        raise NotFound(f"no registered candidate {q.candidate!r} (PUT /v1/admin/ope/candidates)")
    if cand.surface != q.surface:
        raise InvalidRequest(f"candidate {q.candidate} shadows {cand.surface}, not {q.surface}")


def evaluate(state: AppState, q: OpeQuery) -> dict[str, Any]:
    started = time.perf_counter()
    logging_cfg, cand_cfg = configs(state, q)
    _registered(state, q)
    now = time.time()
    since = max(now - q.hours * 3600, q.since or 0.0)
    got = logged_lists(
        state,
        q.surface,
        q.logged_variant,
        since=since,
        limit=q.max_lists,
        shadow=q.candidate,
        reward=q.reward,
    )
    out: dict[str, Any] = {
        "surface": q.surface,
        "logged_variant": q.logged_variant,
        "reward": q.reward,
        "method": "shadow" if q.candidate else "replay",
        "candidate": _named(q),
        "since": round(since, 3),
        "until": round(now, 3),
        "lists": len(got.lists),
        "skipped": got.skipped,
        "estimates": [],
        "chosen": CHOSEN,
        "refused": None,
    }
    if not got.lists:
        out["refused"] = (
            f"no list of {q.surface} (variant {q.logged_variant}) computed and still attributable "
            f"since {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(since))} UTC: serve "
            "traffic first"
        )
        return _done(out, started)
    if q.candidate:
        shadows = [lg.shadow for lg in got.lists if lg.shadow is not None]
        cands, possible = [s[0] for s in shadows], [s[1] for s in shadows]
        replays = 0
    else:
        cands, supports, replays = _replay_all(state, q, got.lists, logging_cfg, cand_cfg)
        possible = [
            [sup.possible(i, k) for k, i in enumerate(c, 1)]
            for c, sup in zip(cands, supports, strict=True)
        ]
        out["replay_consistent"] = round(_consistent(got.lists, supports), 4)
    out.update(_estimates(q, got.lists, cands, possible))
    out["replays"] = replays
    return _done(out, started)


def _named(q: OpeQuery) -> dict[str, Any]:
    if q.candidate:
        return {"candidate": q.candidate}
    return {"variant": q.variant} if q.variant else {"overrides": q.overrides}


def _done(out: dict[str, Any], started: float) -> dict[str, Any]:
    out["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return out


def _replay_all(
    state: AppState,
    q: OpeQuery,
    lists: list[LoggedList],
    logging_cfg: SurfaceConfig,
    cand_cfg: SurfaceConfig,
) -> tuple[list[list[str]], list[Support], int]:
    """Per logged list: the candidate's items and the logging policy's support."""
    contexts: dict[str, Any] = {}
    memo: dict[tuple[Any, ...], tuple[list[str], Support]] = {}
    cands: list[list[str]] = []
    supports: list[Support] = []
    for lg in lists:
        rec = lg.record
        if rec.user not in contexts:
            contexts[rec.user] = replay.context(state, rec.user)
        ctx = replay.as_of(contexts[rec.user], rec.t)
        asked = rec.query or {"limit": len(rec.items)}
        key = (rec.user, json.dumps(asked, sort_keys=True), tuple(ctx.recent))
        if key not in memo:
            req = RecRequest(
                user_id=rec.user,
                surface=rec.surface,
                limit=int(asked.get("limit") or len(rec.items)),
                item_id=asked.get("item_id"),
                category=asked.get("category"),
                language=asked.get("language"),
                filter=asked.get("filter"),
                region=asked.get("region"),
                device=asked.get("device"),
                local_hour=asked.get("local_hour"),
            )
            cand = replay.replay(state, req, cand_cfg, ctx).ids
            memo[key] = (cand, _support(state, req, logging_cfg, ctx))
        cand, sup = memo[key]
        cands.append(cand)
        supports.append(sup)
    return cands, supports, 2 * len(memo)


def _support(state: AppState, req: RecRequest, cfg: SurfaceConfig, ctx: Any) -> Support:
    run = replay.replay(state, req, cfg, ctx)
    return Support.of(cfg, req.limit, run.ranked, run.trace, run.ids)


F = npt.NDArray[np.float64]


def _users(lists: list[LoggedList]) -> npt.NDArray[np.intp]:
    """A number per list's user (the bootstrap draws a user's lists together)."""
    known: dict[str, int] = {}
    return np.asarray([known.setdefault(lg.record.user, len(known)) for lg in lists], np.intp)


def _estimates(
    q: OpeQuery,
    lists: list[LoggedList],
    cands: list[list[str]],
    possible: list[list[bool]],
) -> dict[str, Any]:
    n = len(lists)
    # Positions are the logged lists' (a candidate's longer list counts only where it shows).
    k = max(max(len(lg.record.items) for lg in lists), 1)
    index: dict[str, int] = {}
    items = np.full((n, k), -1, dtype=np.intp)
    cand_items = np.full((n, k), -1, dtype=np.intp)
    mu, pi, clicks = np.zeros((n, k)), np.zeros((n, k)), np.zeros((n, k))
    shown, backed = 0, 0
    for row, (lg, cand, can) in enumerate(zip(lists, cands, possible, strict=True)):
        for it in lg.record.items:
            col = it.position - 1
            if 0 <= col < k:
                items[row, col] = index.setdefault(it.item_id, len(index))
                mu[row, col] = it.propensity or 0.0
                clicks[row, col] = lg.rewards.get(it.item_id, 0.0)
                pi[row, col] = float(col < len(cand) and cand[col] == it.item_id)
        shown_here = len(lg.record.items)  # the candidate counts only where the list showed
        for col, (item, ok) in enumerate(zip(cand[:shown_here], can, strict=False)):
            cand_items[row, col] = index.setdefault(item, len(index))
            shown += 1
            backed += ok
    r = position_model(items, clicks, len(index))
    cols = np.broadcast_to(np.arange(k), (n, k))
    users = _users(lists)
    logged = Logged(mu, pi, clicks, r(items, cols), r(cand_items, cols).sum(1), users)
    on_policy = Logged((items >= 0).astype(float), (items >= 0).astype(float), clicks, groups=users)
    base = estimate(on_policy, "ips", positions=k, alpha=q.alpha, boots=q.boots, seed=q.seed)
    ests = [
        estimate(logged, e, positions=k, alpha=q.alpha, boots=q.boots, seed=q.seed)
        for e in ESTIMATORS
    ]
    support = backed / shown if shown else 0.0
    ess = ests[0].ess
    refused = _refusal(q, support, ess)
    return {
        "positions": k,
        "clicks": int((clicks > 0).sum()),
        "reward_total": round(float(clicks.sum()), 6),
        "matched": int(pi.sum()),
        "support": round(support, 4),
        "logged": {"ctr": base.ctr, "low": base.low, "high": base.high},
        "estimates": [] if refused else [_row(e) for e in ests],
        "ess": round(ess, 1),
        "refused": refused,
    }


def _refusal(q: OpeQuery, support: float, ess: float) -> str | None:
    """Why no estimate is given (None: it is)."""
    if support < q.min_support:
        return (
            f"the logging policy could have shown only {support:.0%} of the candidate's "
            f"item-positions (at least {q.min_support:.0%} needed): log with more exploration "
            f"on {q.surface} (policy.exploration_share, exploration_pool, exploration_start) "
            "or evaluate a candidate closer to what it serves"
        )
    if ess < q.min_ess:
        return (
            f"the estimate rests on an effective {ess:.0f} logged item-positions (at least "
            f"{q.min_ess:g} needed): log more traffic, or with more exploration"
        )
    return None


def _consistent(lists: list[LoggedList], supports: list[Support]) -> float:
    """Share of logged lists every item of which the replayed logging configuration could
    have shown where it was (how faithful today's replay is to the day's state)."""
    ok = sum(
        all(sup.possible(it.item_id, it.position) for it in lg.record.items)
        for lg, sup in zip(lists, supports, strict=True)
    )
    return ok / len(lists)


def _row(e: Any) -> dict[str, Any]:
    return {
        "estimator": e.estimator,
        "ctr": round(e.ctr, 6),
        "low": round(e.low, 6),
        "high": round(e.high, 6),
        "ess": round(e.ess, 1),
    }
