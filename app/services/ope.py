"""Off-policy evaluation (`POST /v1/admin/ope`, `vantage ope`): the CTR a candidate
configuration of a surface would have had on the lists that surface served, without serving it.

1. **The logs** (`app.services.ope_logs`): the window's served lists of the surface and the
   logged variant, computed afresh (a cached or degraded list is not a draw of the policy),
   newest first, with the clicks the worker attributed to each item.
2. **The replays** (`serving.replay`): for each logged request, with the user's history rolled
   back to when the list was served, the candidate's list (exploration off: its exploit list,
   pins included) and the logging configuration's exploit list and exploration pool, which say
   where the logging policy could have shown each of the candidate's items (its support).
   One replay per distinct user state and request, not one per list.
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
from app.state import AppState
from core.errors import InvalidRequest, NotFound
from core.ope import ESTIMATORS, Logged, estimate, position_model
from core.surfaces import PolicySpec, SurfaceConfig
from serving import replay
from serving.policy import window_size
from serving.policy.exploration import exploit_marginal
from serving.request import RecRequest

CHOSEN = "snips"  # the estimator the answer leads with (see bench/simulate.py for why)


@dataclass(frozen=True)
class OpeQuery:
    surface: str
    overrides: dict[str, Any] = field(default_factory=dict)  # the candidate, as a variant's
    variant: str | None = None  # or the candidate is this variant of the surface
    logged_variant: str = "default"
    hours: float = 24.0
    since: float | None = None  # unix time; the later of this and `hours` ago
    max_lists: int = 2000
    min_support: float = 0.9
    min_ess: float = 30.0
    alpha: float = 0.05
    boots: int = 300
    seed: int = 0


@dataclass
class _Support:
    """Where the logging configuration could show items, for one replayed request."""

    exploit: list[str]
    pool: list[str]
    final: list[str]
    spec: PolicySpec

    def possible(self, item: str, pos: int) -> bool:
        """Whether the logging configuration shows `item` at `pos` with probability > 0."""
        share, start = self.spec.exploration_share, self.spec.exploration_start
        if pos <= len(self.final) and self.final[pos - 1] == item:
            return True  # pins sit at fixed positions
        if item in self.exploit:
            rank = self.exploit.index(item) + 1
            return exploit_marginal(rank, pos, share=share if self.pool else 0.0, start=start) > 0
        return item in self.pool and share > 0 and pos >= start


def configs(state: AppState, q: OpeQuery) -> tuple[SurfaceConfig, SurfaceConfig]:
    """(logging configuration, candidate configuration with exploration off)."""
    base = state.settings.surfaces.get(q.surface)
    if base is None:
        raise NotFound(f"unknown surface {q.surface!r}; known: {sorted(state.settings.surfaces)}")
    try:
        logging_cfg = base.arm(q.logged_variant)
    except KeyError as e:
        raise InvalidRequest(
            f"surface {q.surface} has no variant {q.logged_variant!r} "
            f"(known: default, {', '.join(base.variants) or 'no others'})"
        ) from e
    if q.variant is not None and q.overrides:
        raise InvalidRequest("give the candidate as `variant` or as `overrides`, not both")
    try:
        cand = base.arm(q.variant) if q.variant is not None else base.with_overrides(q.overrides)
    except KeyError as e:
        raise InvalidRequest(f"surface {q.surface} has no variant {q.variant!r}") from e
    except ValueError as e:
        raise InvalidRequest(f"overrides do not make a valid surface: {e}") from e
    policy = cand.policy.model_copy(update={"exploration_share": 0.0})
    return logging_cfg, cand.model_copy(update={"policy": policy})


def evaluate(state: AppState, q: OpeQuery) -> dict[str, Any]:
    started = time.perf_counter()
    logging_cfg, cand_cfg = configs(state, q)
    now = time.time()
    since = max(now - q.hours * 3600, q.since or 0.0)
    got = logged_lists(state, q.surface, q.logged_variant, since=since, limit=q.max_lists)
    out: dict[str, Any] = {
        "surface": q.surface,
        "logged_variant": q.logged_variant,
        "candidate": {"variant": q.variant} if q.variant else {"overrides": q.overrides},
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
    cands, supports, replays = _replay_all(state, q, got.lists, logging_cfg, cand_cfg)
    out.update(_estimates(q, got.lists, cands, supports, out))
    out["replays"] = replays
    return _done(out, started)


def _done(out: dict[str, Any], started: float) -> dict[str, Any]:
    out["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return out


def _replay_all(
    state: AppState,
    q: OpeQuery,
    lists: list[LoggedList],
    logging_cfg: SurfaceConfig,
    cand_cfg: SurfaceConfig,
) -> tuple[list[list[str]], list[_Support], int]:
    """Per logged list: the candidate's items and the logging policy's support."""
    contexts: dict[str, Any] = {}
    memo: dict[tuple[Any, ...], tuple[list[str], _Support]] = {}
    cands: list[list[str]] = []
    supports: list[_Support] = []
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
            )
            cand = replay.replay(state, req, cand_cfg, ctx).ids
            memo[key] = (cand, _support(state, req, logging_cfg, ctx))
        cand, sup = memo[key]
        cands.append(cand)
        supports.append(sup)
    return cands, supports, 2 * len(memo)


def _support(state: AppState, req: RecRequest, cfg: SurfaceConfig, ctx: Any) -> _Support:
    run = replay.replay(state, req, cfg, ctx)
    window = run.ranked[: window_size(cfg.policy, req.limit)]
    rows = run.trace
    exploit = [window[i].item_id for i in rows.get("picked", [])]
    pool = [window[i].item_id for i in rows.get("pool", [])]
    return _Support(exploit, pool, run.ids, cfg.policy)


F = npt.NDArray[np.float64]


def _estimates(
    q: OpeQuery,
    lists: list[LoggedList],
    cands: list[list[str]],
    supports: list[_Support],
    out: dict[str, Any],
) -> dict[str, Any]:
    n = len(lists)
    k = max(max(len(lg.record.items) for lg in lists), max(len(c) for c in cands), 1)
    index: dict[str, int] = {}
    items = np.full((n, k), -1, dtype=np.intp)
    cand_items = np.full((n, k), -1, dtype=np.intp)
    mu, pi, clicks = np.zeros((n, k)), np.zeros((n, k)), np.zeros((n, k))
    shown, backed = 0, 0
    for row, (lg, cand, sup) in enumerate(zip(lists, cands, supports, strict=True)):
        for it in lg.record.items:
            col = it.position - 1
            if 0 <= col < k:
                items[row, col] = index.setdefault(it.item_id, len(index))
                mu[row, col] = it.propensity or 0.0
                clicks[row, col] = float(it.item_id in lg.clicked)
                pi[row, col] = float(col < len(cand) and cand[col] == it.item_id)
        for col, item in enumerate(cand):
            cand_items[row, col] = index.setdefault(item, len(index))
            shown += 1
            backed += sup.possible(item, col + 1)
    r = position_model(items, clicks, len(index))
    cols = np.broadcast_to(np.arange(k), (n, k))
    logged = Logged(mu, pi, clicks, r_logged=r(items, cols), r_candidate=r(cand_items, cols).sum(1))
    on_policy = Logged((items >= 0).astype(float), (items >= 0).astype(float), clicks)
    base = estimate(on_policy, "ips", positions=k, alpha=q.alpha, boots=q.boots, seed=q.seed)
    ests = [
        estimate(logged, e, positions=k, alpha=q.alpha, boots=q.boots, seed=q.seed)
        for e in ESTIMATORS
    ]
    support = backed / shown if shown else 0.0
    ess = ests[0].ess
    refused = None
    if support < q.min_support:
        refused = (
            f"the logging policy could have shown only {support:.0%} of the candidate's "
            f"item-positions (at least {q.min_support:.0%} needed): log with more exploration "
            f"on {q.surface} (policy.exploration_share, exploration_pool, exploration_start) "
            "or evaluate a candidate closer to what it serves"
        )
    elif ess < q.min_ess:
        refused = (
            f"the estimate rests on an effective {ess:.0f} logged item-positions (at least "
            f"{q.min_ess:g} needed): log more traffic, or with more exploration"
        )
    return {
        "positions": k,
        "clicks": int(clicks.sum()),
        "matched": int(pi.sum()),
        "support": round(support, 4),
        "replay_consistent": round(_consistent(lists, supports), 4),
        "logged": {"ctr": base.ctr, "low": base.low, "high": base.high},
        "estimates": [] if refused else [_row(e) for e in ests],
        "ess": round(ess, 1),
        "refused": refused,
    }


def _consistent(lists: list[LoggedList], supports: list[_Support]) -> float:
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
