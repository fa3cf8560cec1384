"""`AsyncVantageClient`: the API over an `httpx.AsyncClient`, every method a coroutine."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, TypeVar

import httpx

from vantage_client._base import ClientBase
from vantage_client._endpoints import Endpoints
from vantage_client._requests import Call, Pager, answer

T = TypeVar("T")


class AsyncVantageClient(ClientBase[httpx.AsyncClient], Endpoints):
    """The Vantage API, one coroutine method per route (see `ClientBase` for the options).

    >>> async with AsyncVantageClient("http://127.0.0.1:8000", api_key=key) as vantage:
    ...     recs = await vantage.recommend("u-0001", "homepage", limit=5)
    """

    def _new_http(self, base_url: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=base_url)

    async def _send(self, call: Call[T]) -> T:
        """Send `call`, again as the retry policy allows; its answer, or its error."""
        request = self._request(call)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.send(request)
            except httpx.TransportError as error:
                await self._wait(self._retry.after_error(call, attempt, error))
                continue
            delay = self._retry.after_response(call, attempt, response)
            if delay is None:
                return answer(call, response)
            await response.aclose()
            await self._wait(delay)

    async def _wait(self, delay: float) -> None:
        if self._retry.sleep is None:
            await asyncio.sleep(delay)
        elif inspect.isawaitable(waited := self._retry.sleep(delay)):
            await waited

    async def _iterate(self, pager: Pager[T, Any]) -> AsyncIterator[T]:
        call: Call[Any] | None = pager.first
        while call is not None:
            page = await self._send(call)
            for item in pager.items(page):
                yield item
            call = pager.following(page)

    async def aclose(self) -> None:
        """Close the HTTP client if this client made it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncVantageClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
