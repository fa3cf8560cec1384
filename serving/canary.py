"""Which users a running ranker canary serves: a stable share of each ranked surface's
`default` users (hashed apart from the experiment variants), who then get variant
`canary-<version>` with the canary's ranker version (one name per canary, so the counts of
one canary never mix with an earlier one's in the same hour). The canary is read from Redis
at most once a second per process; while Redis cannot say, nobody is in it (the current
ranker serves)."""

from __future__ import annotations

import hashlib
import threading
import time

import redis

from core.served_list import stats_name
from core.stores.canary import Canary, CanaryStore
from core.surfaces import SurfaceConfig
from serving.request import RecRequest
from serving.state import ServingState

VARIANT_PREFIX = "canary-"
REFRESH_S = 1.0

_lock = threading.Lock()
_seen: dict[int, tuple[float, Canary | None]] = {}  # id(state) -> (read at, canary)


def running(state: ServingState) -> Canary | None:
    """The running canary, as this process last read it (at most REFRESH_S old)."""
    now = time.monotonic()
    hit = _seen.get(id(state))
    if hit is not None and now - hit[0] < REFRESH_S:
        return hit[1]
    r = getattr(state, "redis", None)
    try:
        current = CanaryStore(r, state.keys).running() if r is not None else None
    except redis.RedisError:
        current = None
    with _lock:
        _seen[id(state)] = (now, current)
    return current


def in_canary(user_id: str, share: float) -> bool:
    h = hashlib.blake2b(f"canary\x1f{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64 < share


def assign(state: ServingState, base: SurfaceConfig, req: RecRequest) -> tuple[str, SurfaceConfig]:
    """The user's variant and configuration: the surface's own variants first; a `default`
    user of a surface served by the current ranker may be in the canary."""
    variant, cfg = base.variant(req.user_id, req.surface, req.context())
    if variant != "default" or cfg.ranker != "current":
        return variant, cfg
    canary = running(state)
    if canary is None or not in_canary(req.user_id, canary.share):
        return variant, cfg
    return variant_of(canary.version), cfg.model_copy(update={"ranker": canary.version})


def variant_of(version: str) -> str:
    """The variant name a canary's users are counted under."""
    return stats_name(VARIANT_PREFIX + version, "canary")
