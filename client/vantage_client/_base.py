"""What both clients share besides the calls: settings, the HTTP client, building requests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import httpx

from vantage_client._requests import Call
from vantage_client.retry import Retry

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 10.0
USER_AGENT = "vantage-client/0.1.0"
H = TypeVar("H", httpx.Client, httpx.AsyncClient)


class ClientBase(Generic[H]):
    """Settings and the HTTP client; subclasses send calls blocking or as coroutines.

    `http`: an `httpx.Client` / `httpx.AsyncClient` to send with (its transport, base URL,
    proxies and hooks are used; the caller closes it). Without it the client makes its own for
    `base_url` and closes it on `close()`. With both, `base_url` is prefixed to every path.
    `api_key` goes in `Authorization: Bearer <key>`; `timeout` (seconds or an
    `httpx.Timeout`) applies to each send; `retry` says when a call is sent again.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        http: H | None = None,
        retry: Retry | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._owns_http = http is None
        self._http: H = self._new_http(base_url or DEFAULT_BASE_URL) if http is None else http
        self._prefix = (base_url or "").rstrip("/") if http is not None else ""
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._retry = retry or Retry()
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def _new_http(self, base_url: str) -> H:
        """The HTTP client made when none is given (timeouts are set on each request)."""
        raise NotImplementedError

    def _request(self, call: Call[Any]) -> httpx.Request:
        """The HTTP request of `call`: built once, sent again as it is on a retry."""
        return self._http.build_request(
            call.method,
            self._prefix + call.path,
            params=call.params or None,
            json=call.json,
            headers={**self._headers, **call.headers},
            timeout=self._timeout_for(call),
        )

    def _timeout_for(self, call: Call[Any]) -> httpx.Timeout:
        t = self._timeout
        if not call.slow_s or t.read is None:
            return t
        read = t.read + call.slow_s
        return httpx.Timeout(connect=t.connect, read=read, write=t.write, pool=t.pool)
