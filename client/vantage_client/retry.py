"""When a call is sent again, and after how long.

- 429 `rate_limited` is retried for every call: the server refused it before doing anything.
- 503 `dependency_unavailable` and a lost answer (read error, timeout) are retried only for
  calls a repeat cannot apply twice: GET, PUT, PATCH and DELETE, item batches (upserts),
  dead-letter replays (events keep their identity), and interaction batches, which always
  carry an `Idempotency-Key` reused by every retry of the call.
- A connection that could not be made is retried for every call: nothing was sent.

The wait is the answer's `Retry-After` when it has one; a `Retry-After` over `max_delay` is
not waited for (the error is raised, with its `retry_after`). Otherwise exponential backoff:
`backoff * 2**(attempt - 1)`, at most `max_delay`, with jitter.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from vantage_client._requests import Call
from vantage_client.errors import VantageConnectionError, parse_retry_after

# Failures before the request left this process: a repeat cannot apply anything twice.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Retry:
    """The retry policy; `Retry(attempts=1)` sends every call once."""

    attempts: int = 4  # sends per call, the first one included
    backoff: float = 0.5  # seconds before the second send when no Retry-After says otherwise
    max_delay: float = 30.0
    jitter: bool = True
    # Replaces the wait (tests pass a recorder); the async client awaits what it returns if
    # it is awaitable. None: time.sleep / asyncio.sleep.
    sleep: Callable[[float], Any] | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff < 0 or self.max_delay < 0:
            raise ValueError("attempts must be >= 1, backoff and max_delay >= 0")

    def backoff_delay(self, attempt: int) -> float:
        """Seconds to wait after the `attempt`-th send failed without a Retry-After."""
        delay = min(self.max_delay, self.backoff * 2.0 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0) if self.jitter else delay

    def after_response(
        self, call: Call[Any], attempt: int, response: httpx.Response
    ) -> float | None:
        """Seconds to wait before sending `call` again, or None: the answer is final."""
        status = response.status_code
        if response.is_success or status in call.answers or attempt >= self.attempts:
            return None
        if status != 429 and not (status == 503 and call.retry_safe):
            return None
        wait = parse_retry_after(response.headers.get("retry-after"))
        if wait is None:
            return self.backoff_delay(attempt)
        return wait if wait <= self.max_delay else None

    def after_error(self, call: Call[Any], attempt: int, error: httpx.TransportError) -> float:
        """Seconds to wait before sending `call` again; raises when it must not be."""
        if attempt < self.attempts and (call.retry_safe or isinstance(error, NOT_SENT)):
            return self.backoff_delay(attempt)
        tries = f"after {attempt} attempt{'s' if attempt > 1 else ''}"
        raise VantageConnectionError(
            f"{call.method} {call.path}: no answer {tries} ({type(error).__name__}: {error})"
        ) from error
