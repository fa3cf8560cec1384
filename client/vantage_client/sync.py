"""`VantageClient`: the API over a blocking `httpx.Client`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, TypeVar

import httpx

from vantage_client._base import ClientBase
from vantage_client._endpoints import Endpoints
from vantage_client._requests import Call, Pager, answer

T = TypeVar("T")


class VantageClient(ClientBase[httpx.Client], Endpoints):
    """The Vantage API, one blocking method per route (see `ClientBase` for the options).

    >>> with VantageClient("http://127.0.0.1:8000", api_key=key) as vantage:
    ...     recs = vantage.recommend("u-0001", "homepage", limit=5)
    """

    def _new_http(self, base_url: str) -> httpx.Client:
        return httpx.Client(base_url=base_url)

    def _send(self, call: Call[T]) -> T:
        """Send `call`, again as the retry policy allows; its answer, or its error."""
        request = self._request(call)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.send(request)
            except httpx.TransportError as error:
                self._wait(self._retry.after_error(call, attempt, error))
                continue
            delay = self._retry.after_response(call, attempt, response)
            if delay is None:
                return answer(call, response)
            response.close()
            self._wait(delay)

    def _wait(self, delay: float) -> None:
        (self._retry.sleep or time.sleep)(delay)

    def _iterate(self, pager: Pager[T, Any]) -> Iterator[T]:
        call: Call[Any] | None = pager.first
        while call is not None:
            page = self._send(call)
            yield from pager.items(page)
            call = pager.following(page)

    def close(self) -> None:
        """Close the HTTP client if this client made it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> VantageClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
