"""Circuit breakers and fallback classification (no servers needed)."""

from __future__ import annotations

import time

import pytest
import redis
from pymilvus.exceptions import MilvusException

from core.resilience import Breakers, DependencyDown, guarded


def _fail(exc: BaseException):  # type: ignore[no-untyped-def]
    def f() -> None:
        raise exc

    return f


def test_dependency_errors_become_named_reasons() -> None:
    b = Breakers(fail_max=10, reset_timeout_s=60)
    with pytest.raises(DependencyDown) as e:
        guarded(b.redis, _fail(redis.ConnectionError("refused")))
    assert e.value.reason == "redis_unavailable"
    with pytest.raises(DependencyDown) as e:
        guarded(b.redis, _fail(redis.TimeoutError("Timeout reading")))
    assert e.value.reason == "redis_timeout"
    with pytest.raises(DependencyDown) as e:
        guarded(b.milvus, _fail(MilvusException(message="DEADLINE_EXCEEDED")))
    assert e.value.reason == "milvus_timeout"
    # A Redis failure inside a Milvus-guarded stage is named for Redis.
    with pytest.raises(DependencyDown) as e:
        guarded(b.milvus, _fail(redis.ConnectionError("x")))
    assert e.value.reason == "redis_unavailable"


def test_breaker_opens_after_failures_and_recovers_by_itself() -> None:
    b = Breakers(fail_max=2, reset_timeout_s=0.2)
    calls = []

    def down() -> None:
        calls.append(1)
        raise MilvusException(message="unavailable")

    for _ in range(2):
        with pytest.raises(DependencyDown):
            guarded(b.milvus, down)
    with pytest.raises(DependencyDown) as e:
        guarded(b.milvus, down)
    assert e.value.reason == "milvus_circuit_open"
    assert len(calls) == 2  # open: the dependency is not called at all
    assert b.states()["milvus"] == "open"
    time.sleep(0.25)
    assert guarded(b.milvus, lambda: 42) == 42  # the trial call succeeds: closed again
    assert b.states()["milvus"] == "closed"


def test_bad_requests_do_not_open_a_breaker() -> None:
    b = Breakers(fail_max=1, reset_timeout_s=60)
    for _ in range(3):
        with pytest.raises(ValueError):
            guarded(b.milvus, _fail(ValueError("not an outage")))
    assert b.states() == {"redis": "closed", "milvus": "closed"}
    # Redis errors do not count against the Milvus breaker either.
    with pytest.raises(DependencyDown):
        guarded(b.milvus, _fail(redis.ConnectionError("x")))
    assert b.states()["milvus"] == "closed"


def test_guarded_calls_run_concurrently() -> None:
    """The breaker must not hold a lock around the call: sources of one request, and requests,
    run side by side (each of these calls waits until all four are inside at once)."""
    import threading

    b = Breakers()
    inside = threading.Barrier(4, timeout=5)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            guarded(b.milvus, inside.wait)
        except BaseException as e:  # a serialised breaker breaks the barrier
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_half_open_lets_one_trial_through() -> None:
    b = Breakers(fail_max=1, reset_timeout_s=0.05)
    with pytest.raises(DependencyDown):
        guarded(b.milvus, _fail(MilvusException(message="down")))
    time.sleep(0.06)
    assert b.states()["milvus"] == "half-open"
    with pytest.raises(DependencyDown):  # the trial fails: open again at once
        guarded(b.milvus, _fail(MilvusException(message="down")))
    with pytest.raises(DependencyDown) as e:
        guarded(b.milvus, lambda: 1)
    assert e.value.reason == "milvus_circuit_open"
