"""Shadow lists: what a registered off-policy candidate (core/stores/shadow.py) would have
shown, computed beside a share of the lists a surface serves, on the same request and the same
user state, and kept for off-policy evaluation (app/services/ope.py).

A replay hours later (`serving.replay`) sees the user's vectors, the popularity counts and the
candidate sets as they are by then: every click moves them, so a late replay of an active user
rarely reproduces what the logging policy served (measured in bench/simulate.py). A shadow list
is computed while the request's state is the served list's state, so off-policy estimates from
shadow lists carry no replay drift.

`beside()` runs in the request after a list is computed afresh: it picks the candidates that
shadow this list (a stable hash of list id and candidate name against the candidate's share)
and hands the work to one background thread per process (bounded: when it falls behind, lists
are not shadowed and `vantage_shadow_lists_total{outcome="dropped"}` counts them). The thread
writes `~shadow:<name>` = {"items": [...], "possible": [0/1, ...]} into the list's attribution
hash (expiring with it): the candidate's items in order, and whether the logging policy could
have shown each at that position (its support), from the exploit list and exploration pool
this very request used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis

from core.context import UserContext
from core.stores.shadow import ShadowCandidate, ShadowStore
from core.surfaces import PolicySpec, SurfaceConfig
from serving import metrics, replay
from serving.policy import window_size
from serving.policy.exploration import exploit_marginal
from serving.request import RecRequest
from serving.retrieval import Candidate
from serving.state import ServingState

log = logging.getLogger(__name__)

FIELD_PREFIX = "~shadow:"
REFRESH_S = 1.0
MAX_PENDING = 64

_lock = threading.Lock()
_seen: dict[int, tuple[float, list[ShadowCandidate]]] = {}  # id(state) -> (read at, list)


@dataclass(frozen=True)
class Support:
    """Where the logging policy could show items on one request: its exploit list, its
    exploration pool and the list it served (pins sit at fixed positions)."""

    exploit: Sequence[str]
    pool: Sequence[str]
    served: Sequence[str]
    spec: PolicySpec

    def possible(self, item: str, pos: int) -> bool:
        """Whether the policy shows `item` at `pos` (1-based) with probability above 0."""
        share, start = self.spec.exploration_share, self.spec.exploration_start
        if pos <= len(self.served) and self.served[pos - 1] == item:
            return True
        if item in self.exploit:
            rank = list(self.exploit).index(item) + 1
            size = len(self.pool)
            return (
                exploit_marginal(rank, pos, share=share if size else 0.0, start=start, pool=size)
                > 0
            )
        return item in self.pool and share > 0 and pos >= start

    @classmethod
    def of(
        cls,
        cfg: SurfaceConfig,
        limit: int,
        ranked: Sequence[Candidate],
        trace: dict[str, Any],
        served: Sequence[str],
    ) -> Support:
        """From a policy run's trace (`policy_stage(..., trace=)`) over `ranked`."""
        window = ranked[: window_size(cfg.policy, limit)]
        exploit = [window[i].item_id for i in trace.get("picked", [])]
        pool = [window[i].item_id for i in trace.get("pool", [])]
        return cls(exploit, pool, list(served), cfg.policy)


class Runner:
    """One background thread with a bounded backlog."""

    def __init__(self, max_pending: int = MAX_PENDING):
        self.max_pending = max_pending
        self._pending = 0
        self._cv = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")

    def submit(self, fn: Callable[[], None]) -> bool:
        with self._cv:
            if self._pending >= self.max_pending:
                return False
            self._pending += 1
        self._pool.submit(self._run, fn)
        return True

    def _run(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        finally:
            with self._cv:
                self._pending -= 1
                self._cv.notify_all()

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Until nothing is pending (False on timeout): for tests and the simulator."""
        with self._cv:
            return self._cv.wait_for(lambda: self._pending == 0, timeout_s)


RUNNER = Runner()


def registered(state: ServingState) -> list[ShadowCandidate]:
    """The registered candidates, as this process last read them (at most REFRESH_S old)."""
    now = time.monotonic()
    hit = _seen.get(id(state))
    if hit is not None and now - hit[0] < REFRESH_S:
        return hit[1]
    r = getattr(state, "redis", None)
    try:
        current = ShadowStore(r, state.keys).all() if r is not None else []
    except (redis.RedisError, ValueError):
        current = []
    with _lock:
        _seen[id(state)] = (now, current)
    return current


def chosen(rec_id: str, name: str, share: float) -> bool:
    h = hashlib.blake2b(f"shadow\x1f{name}\x1f{rec_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64 < share


def candidate_config(base: SurfaceConfig, overrides: dict[str, Any]) -> SurfaceConfig:
    """The candidate's configuration: the surface with its overrides, exploration off."""
    cfg = base.with_overrides(overrides)
    return cfg.model_copy(
        update={"policy": cfg.policy.model_copy(update={"exploration_share": 0.0})}
    )


def beside(
    state: ServingState,
    req: RecRequest,
    ctx: UserContext,
    cfg: SurfaceConfig,
    ranked: Sequence[Candidate],
    trace: dict[str, Any],
    served: Sequence[str],
    rec_id: str,
) -> None:
    """Queue the shadow lists of the candidates that shadow list `rec_id` (never raises)."""
    if not req.profiling:  # a list without personal data: nothing personal to compare with
        return
    try:
        picked = [
            c
            for c in registered(state)
            if c.surface == req.surface and chosen(rec_id, c.name, c.share)
        ]
        if not picked:
            return
        support = Support.of(cfg, req.limit, ranked, trace, served)
        base = state.settings.surfaces[req.surface]
        if not RUNNER.submit(lambda: _compute(state, req, ctx, base, picked, support, rec_id)):
            metrics.SHADOW.labels("dropped").inc(len(picked))
    except Exception:
        log.exception("shadow lists not queued")


def _compute(
    state: ServingState,
    req: RecRequest,
    ctx: UserContext,
    base: SurfaceConfig,
    picked: list[ShadowCandidate],
    support: Support,
    rec_id: str,
) -> None:
    fields: dict[str, str] = {}
    for cand in picked:
        try:
            ids = replay.replay(state, req, candidate_config(base, cand.overrides), ctx).ids
        except Exception as e:
            metrics.SHADOW.labels("failed").inc()
            log.warning("shadow list of %s failed: %s: %s", cand.name, type(e).__name__, e)
            continue
        possible = [int(support.possible(i, k)) for k, i in enumerate(ids, 1)]
        fields[FIELD_PREFIX + cand.name] = json.dumps({"items": ids, "possible": possible})
        metrics.SHADOW.labels("computed").inc()
    r = getattr(state, "redis", None)
    if not fields or r is None:
        return
    key = state.keys.rec_info(rec_id)
    ttl = int(state.settings.serving.attribution_window_s)
    try:
        pipe = r.pipeline(transaction=False)
        pipe.hset(key, mapping=fields)
        pipe.expire(key, ttl)  # the impression log sets the same; whichever writes first
        pipe.execute()
    except redis.RedisError as e:
        metrics.SHADOW.labels("failed").inc(len(fields))
        log.warning("shadow lists not stored: %s", e)
