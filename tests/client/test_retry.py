"""The client's retry loop, over `httpx.MockTransport` (the loop is the code under test; the
API's own answers are tested against the real app in test_inprocess.py).

The transport answers from a script, one entry per send; `Retry(sleep=...)` records the
waits instead of sleeping.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import httpx
import pytest
from vantage_client import (
    AsyncVantageClient,
    DependencyUnavailable,
    RateLimited,
    Retry,
    VantageClient,
    VantageConnectionError,
)

HEALTHY = {"status": "ok", "checks": {}}
JOB = {"id": "a" * 32, "kind": "reindex", "state": "queued"}
UNAVAILABLE = {"error": {"code": "dependency_unavailable", "message": "redis is unavailable"}}
LIMITED = {"error": {"code": "rate_limited", "message": "rate limit of key k exceeded"}}
Step = httpx.Response | Exception


class Script:
    """Answers each send with the next step; remembers what was sent."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def _sync(script: Script, waits: list[float], **retry: float) -> VantageClient:
    http = httpx.Client(transport=httpx.MockTransport(script), base_url="http://vantage.test")
    return VantageClient(http=http, api_key="k", retry=Retry(sleep=waits.append, **retry))


def test_a_503_with_retry_after_is_waited_for_then_the_answer_is_returned() -> None:
    script = Script(
        httpx.Response(503, json=UNAVAILABLE, headers={"Retry-After": "2"}),
        httpx.Response(200, json=HEALTHY),
    )
    waits: list[float] = []
    assert _sync(script, waits).health().status == "ok"
    assert waits == [2.0] and len(script.sent) == 2
    assert script.sent[1].headers["authorization"] == "Bearer k"


def test_the_async_client_waits_the_same_way() -> None:
    script = Script(
        httpx.Response(429, json=LIMITED, headers={"Retry-After": "3"}),
        httpx.Response(503, json=UNAVAILABLE, headers={"Retry-After": "1"}),
        httpx.Response(202, json={"event_ids": ["1-0"]}),
    )
    waits: list[float] = []

    async def send() -> list[str]:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(script), base_url="http://vantage.test"
        ) as http:
            vantage = AsyncVantageClient(http=http, retry=Retry(sleep=waits.append))
            accepted = await vantage.log_interactions(
                [{"user_id": "u", "item_id": "i", "type": "like"}]
            )
            return accepted.event_ids

    assert asyncio.run(send()) == ["1-0"]
    assert waits == [3.0, 1.0]
    keys = {r.headers["idempotency-key"] for r in script.sent}
    assert len(keys) == 1 and len(script.sent) == 3  # one key for every send of the call


def test_the_retries_are_bounded_and_the_last_error_is_raised_with_its_retry_after() -> None:
    busy = httpx.Response(503, json=UNAVAILABLE, headers={"Retry-After": "1"})
    script = Script(busy, busy, busy)
    waits: list[float] = []
    with pytest.raises(DependencyUnavailable) as raised:
        _sync(script, waits, attempts=3).get_item("x")
    assert waits == [1.0, 1.0] and len(script.sent) == 3
    assert raised.value.retry_after == 1.0 and raised.value.message == "redis is unavailable"


def test_a_retry_after_longer_than_max_delay_is_raised_not_waited_for() -> None:
    script = Script(httpx.Response(429, json=LIMITED, headers={"Retry-After": "120"}))
    waits: list[float] = []
    with pytest.raises(RateLimited) as raised:
        _sync(script, waits, max_delay=30).health()
    assert waits == [] and raised.value.retry_after == 120.0


def test_a_503_to_a_call_that_may_not_be_repeated_is_raised_at_once() -> None:
    # A reindex creates a job: without an idempotency key it is not sent twice on a 503 ...
    script = Script(httpx.Response(503, json=UNAVAILABLE, headers={"Retry-After": "1"}))
    with pytest.raises(DependencyUnavailable):
        _sync(script, []).reindex()
    # ... but a 429 is: the server refused it before doing anything.
    script = Script(
        httpx.Response(429, json=LIMITED, headers={"Retry-After": "1"}),
        httpx.Response(202, json=JOB),
    )
    assert _sync(script, []).reindex().kind == "reindex"


def _lost(request_error: Callable[..., Exception]) -> Exception:
    return request_error("connection reset", request=httpx.Request("GET", "http://vantage.test"))


def test_a_lost_answer_is_retried_with_backoff_only_when_a_repeat_is_safe() -> None:
    script = Script(_lost(httpx.ReadError), _lost(httpx.ReadTimeout), httpx.Response(200, json=JOB))
    waits: list[float] = []
    assert _sync(script, waits, backoff=0.5).get_job("a" * 32).id == "a" * 32
    # Exponential backoff with jitter: 0.5 then 1.0 seconds, each halved at most.
    assert 0.25 <= waits[0] <= 0.5 and 0.5 <= waits[1] <= 1.0

    script = Script(_lost(httpx.ReadError))
    with pytest.raises(VantageConnectionError, match="ReadError") as raised:
        _sync(script, waits).refresh_models()  # a POST without a key: maybe applied, not resent
    assert isinstance(raised.value.__cause__, httpx.ReadError) and len(script.sent) == 1


def test_a_connection_never_made_is_retried_for_any_call() -> None:
    script = Script(_lost(httpx.ConnectError), httpx.Response(202, json=JOB))
    waits: list[float] = []
    assert _sync(script, waits).refresh_models().state == "queued"
    assert len(waits) == 1


def test_a_client_without_retries_sends_once() -> None:
    script = Script(httpx.Response(503, json=UNAVAILABLE, headers={"Retry-After": "1"}))
    with pytest.raises(DependencyUnavailable):
        _sync(script, [], attempts=1).health()
    assert len(script.sent) == 1


def test_no_server_is_a_connection_error_after_the_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    waits: list[float] = []
    retry = Retry(attempts=3, sleep=waits.append)
    with (
        VantageClient(f"http://127.0.0.1:{port}", retry=retry) as vantage,
        pytest.raises(VantageConnectionError, match="no answer after 3 attempts"),
    ):
        vantage.refresh_models()  # never sent, so retried although it creates a job
    assert len(waits) == 2
