"""The ranker canary as operators and the API's background loop see it: start one, judge it
on the traffic it served (every ranked surface's `default` users against its `canary` ones,
pooled), promote or roll it back, and say why."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from app.services.experiments import count_arms
from app.state import AppState
from core.errors import Conflict, NotFound
from core.experiments import ArmStats, canary_verdict
from core.served_list import hour_of
from core.stores.canary import Canary, CanaryStore
from core.stores.registry import load_ranker
from serving.canary import variant_of

log = logging.getLogger(__name__)
MAX_HOURS = 192  # hourly counts are kept 8 days


def store(state: AppState) -> CanaryStore:
    return CanaryStore(state.redis, state.keys)


def start(state: AppState, version: str, share: float, margin: float) -> Canary:
    """Serve `version` (a saved re-ranker) to `share` of the ranked surfaces' users."""
    registry = state.models
    baseline = registry.current("ranker")
    if baseline is None:
        raise Conflict("no ranker is current: publish one first (a canary needs a baseline)")
    if version == baseline:
        raise Conflict(f"{version} is the current ranker already")
    try:
        load_ranker(registry.ranker_dir(version), version)
    except FileNotFoundError as e:
        raise NotFound(f"no saved ranker {version}") from e
    except Exception as e:
        raise Conflict(f"ranker {version} cannot be loaded ({type(e).__name__}: {e})") from e
    try:
        return store(state).start(version, share, margin, baseline)
    except ValueError as e:
        raise Conflict(str(e)) from e


def _arms(state: AppState, canary: Canary) -> tuple[ArmStats, ArmStats]:
    """Pooled counts of the current ranker's users and the canary's since it started."""
    now = hour_of(time.time())
    first = max(hour_of(canary.started_at), now - MAX_HOURS + 1)
    ranked = [n for n, c in state.settings.surfaces.items() if c.ranker == "current"]
    arm_name = variant_of(canary.version)
    arms = {(n, v): ArmStats(v) for n in ranked for v in ("default", arm_name)}
    hours = range(first, now + 1)
    if arms:
        count_arms(state, hours, arms, distinct=False)  # a union per arm below, not a sum
    pooled = {v: ArmStats(v) for v in ("default", arm_name)}
    for (_, v), a in arms.items():
        pooled[v].absorb(a)
    for v, p in pooled.items():  # distinct items over every surface: one union per arm
        keys = [state.keys.served_items_hour(n, h, v) for n in ranked for h in hours]
        p.distinct_items = int(state.redis.pfcount(*keys)) if keys else 0
    return pooled["default"], pooled[arm_name]


def verdict(state: AppState, canary: Canary) -> tuple[str, str, dict[str, Any]]:
    base, arm = _arms(state, canary)
    expired = time.time() - canary.started_at > state.settings.canary.max_hours * 3600
    cfg = state.settings.experiments
    decision, reason, cmp = canary_verdict(base, arm, cfg, margin=canary.margin, expired=expired)
    cmp["arms"] = [base.as_dict(), arm.as_dict()]
    return decision, reason, cmp


def judge(state: AppState) -> str | None:
    """Decide the running canary if the evidence allows; the decision taken (None: none ran)."""
    canary = store(state).running()
    if canary is None:
        return None
    decision, reason, _ = verdict(state, canary)
    if decision == "continue":
        return decision
    return _apply(state, canary, decision, reason)


def stop(state: AppState, reason: str) -> Canary:
    """Roll the running canary back now (an operator's call)."""
    canary = store(state).running()
    if canary is None:
        raise NotFound("no canary is running")
    _apply(state, canary, "rollback", reason)
    got = store(state).get()
    assert got is not None
    return got


def _apply(state: AppState, canary: Canary, decision: str, reason: str) -> str:
    info = None
    if decision == "promote":
        raw = state.redis.hget(state.keys.model_versions("ranker"), canary.version)
        info = {**(json.loads(raw) if raw else {}), "published": True, "canary": reason}
    ended = "promoted" if decision == "promote" else "rolled_back"
    if store(state).decide(canary.version, ended, reason, publish=info):
        log.warning("ranker canary %s %s: %s", canary.version, ended, reason)
    return decision


def loop(state: AppState, stop_event: threading.Event, every_s: float) -> None:
    """Judge a running canary every `every_s` (in every API process: a decision is taken once,
    by whichever gets there first)."""
    while not stop_event.wait(every_s):
        try:
            judge(state)
        except Exception as e:  # the thread must outlive any failure
            log.warning("canary not judged: %s: %s", type(e).__name__, e)


def status(state: AppState) -> dict[str, Any]:
    canary = store(state).get()
    out: dict[str, Any] = {
        "canary": canary.as_dict() if canary else None,
        "log": store(state).log(),
    }
    if canary is not None and canary.state == "running":
        decision, reason, cmp = verdict(state, canary)
        out["now"] = {**cmp, "decision": decision, "reason": reason}
    return out
