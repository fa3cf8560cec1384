"""Circuit breakers for the two dependencies: stop hammering a failed one, recover by itself.

After `fail_max` consecutive dependency errors a breaker opens: calls fail at once (the
pipeline serves its fallbacks) until `reset_timeout_s` has passed, then one trial call decides
whether it closes again. Only dependency errors count: a bad request is not an outage.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import grpc
import redis
from pymilvus.exceptions import MilvusException

from core.errors import DependencyUnavailable
from core.tracing import span

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


class DependencyDown(DependencyUnavailable):
    """A dependency failed or its breaker is open; `reason` names it for the response.

    The read path degrades on it (fallback lists); anywhere else it is a 503 like its base."""

    def __init__(self, reason: str, cause: BaseException | None = None):
        super().__init__(f"{reason.split('_')[0]} is unavailable; retry shortly")
        self.reason = reason
        self.cause = cause


def dependency_of(exc: BaseException) -> str | None:
    if isinstance(exc, REDIS_ERRORS):  # redis' own TimeoutError/ConnectionError first
        return "redis"
    if isinstance(exc, MILVUS_ERRORS):
        return "milvus"
    return None


class CircuitOpen(Exception):
    """The breaker is open: the dependency is not called (`guarded` raises DependencyDown)."""


class CircuitBreaker:
    """Closed -> open after `fail_max` consecutive dependency errors -> after `reset_timeout_s`
    one trial call (half-open) -> closed on success, open again on failure.

    Thread-safe, and the guarded call runs *outside* the lock. (pybreaker holds its lock for
    the whole call, which serialised every Milvus and Redis call of the process: concurrent
    sources and requests waited on each other.)
    """

    def __init__(self, name: str, fail_max: int, reset_timeout_s: float):
        self.name = name
        self.fail_max = fail_max
        self.reset_timeout_s = reset_timeout_s
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False  # a half-open trial call is in flight

    @property
    def current_state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if time.monotonic() - self._opened_at >= self.reset_timeout_s:
                return "half-open"
            return "open"

    def open(self) -> None:
        with self._lock:
            self._opened_at = time.monotonic()
            self._trial = False

    def close(self) -> None:
        with self._lock:
            self._opened_at, self._failures, self._trial = None, 0, False

    def _admit(self) -> bool:
        """May a call go ahead now? (It is the trial call if the breaker was open.)"""
        with self._lock:
            if self._opened_at is None:
                return True
            if time.monotonic() - self._opened_at < self.reset_timeout_s or self._trial:
                return False
            self._trial = True
            return True

    def _record(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self._opened_at, self._failures, self._trial = None, 0, False
                return
            self._failures += 1
            if self._trial or self._failures >= self.fail_max:
                self._opened_at, self._trial = time.monotonic(), False

    def call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        if not self._admit():
            raise CircuitOpen(self.name)
        try:
            with span(f"{self.name} {_operation(fn)}", **{"db.system": self.name}):
                out = fn(*args, **kw)
        except BaseException as e:
            # Only this dependency's errors count: a bad request is not an outage.
            self._record(ok=dependency_of(e) != self.name)
            raise
        self._record(ok=True)
        return out


def _operation(fn: Callable[..., Any]) -> str:
    """A dependency call's name for its span: the client method's (`search`, `execute`)."""
    return str(getattr(fn, "__name__", type(fn).__name__))


class Breakers:
    def __init__(self, fail_max: int = 3, reset_timeout_s: float = 5.0):
        # Each breaker counts only its own dependency's failures.
        self.redis = CircuitBreaker("redis", fail_max, reset_timeout_s)
        self.milvus = CircuitBreaker("milvus", fail_max, reset_timeout_s)

    def states(self) -> dict[str, str]:
        return {b.name: b.current_state for b in (self.redis, self.milvus)}


def guarded(breaker: CircuitBreaker, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Call `fn` through `breaker`; any dependency failure becomes DependencyDown."""
    with map_dependency_errors(breaker.name):
        try:
            return breaker.call(fn, *args, **kw)
        except CircuitOpen as e:
            raise DependencyDown(f"{breaker.name}_circuit_open", e) from e


@contextmanager
def map_dependency_errors(dependency: str) -> Iterator[None]:
    """The store boundary: a client library's failure (redis-py, pymilvus, grpc, a socket)
    leaves as `DependencyDown` with a reason such as `redis_timeout` or `milvus_unavailable`,
    so nothing above the stores catches a library's exception types."""
    try:
        yield
    except DEPENDENCY_ERRORS as e:
        dep = dependency_of(e) or dependency
        text = f"{type(e).__name__} {e}".lower()
        kind = "timeout" if ("timeout" in text or "deadline" in text) else "unavailable"
        raise DependencyDown(f"{dep}_{kind}", e) from e
