"""Circuit breakers for the two dependencies: stop hammering a failed one, recover by itself.

After `fail_max` consecutive dependency errors a breaker opens: calls fail at once (the
pipeline serves its fallbacks) until `reset_timeout_s` has passed, then one trial call decides
whether it closes again. Only dependency errors count: a bad request is not an outage.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
import pybreaker
import redis
from pymilvus.exceptions import MilvusException

T = TypeVar("T")

REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError,)
MILVUS_ERRORS: tuple[type[BaseException], ...] = (
    MilvusException,
    grpc.RpcError,
    TimeoutError,
    ConnectionError,
    socket.timeout,
)
DEPENDENCY_ERRORS = REDIS_ERRORS + MILVUS_ERRORS


class DependencyDown(Exception):
    """A dependency failed or its breaker is open; `reason` names it for the response."""

    def __init__(self, reason: str, cause: BaseException | None = None):
        super().__init__(reason)
        self.reason = reason
        self.cause = cause


def dependency_of(exc: BaseException) -> str | None:
    if isinstance(exc, REDIS_ERRORS):  # redis' own TimeoutError/ConnectionError first
        return "redis"
    if isinstance(exc, MILVUS_ERRORS):
        return "milvus"
    return None


class Breakers:
    def __init__(self, fail_max: int = 3, reset_timeout_s: float = 5.0):
        # Each breaker counts only its own dependency's failures.
        self.redis = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout_s,
            exclude=[lambda e: dependency_of(e) != "redis"],
            name="redis",
        )
        self.milvus = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout_s,
            exclude=[lambda e: dependency_of(e) != "milvus"],
            name="milvus",
        )

    def states(self) -> dict[str, str]:
        return {b.name: str(b.current_state) for b in (self.redis, self.milvus)}


def guarded(breaker: pybreaker.CircuitBreaker, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Call `fn` through `breaker`; any dependency failure becomes DependencyDown."""
    try:
        return breaker.call(fn, *args, **kw)
    except pybreaker.CircuitBreakerError as e:
        raise DependencyDown(f"{breaker.name}_circuit_open", e) from e
    except DEPENDENCY_ERRORS as e:
        dep = dependency_of(e) or breaker.name
        text = f"{type(e).__name__} {e}".lower()
        kind = "timeout" if ("timeout" in text or "deadline" in text) else "unavailable"
        raise DependencyDown(f"{dep}_{kind}", e) from e
