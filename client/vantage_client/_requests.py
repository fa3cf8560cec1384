"""What each client method sends and how its answer is read, shared by both clients.

A builder returns a `Call`: method, path (from `ROUTES`), query, body, headers, how to parse
the answer, and whether a repeat is safe. The sync and async clients only send it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from vantage_client.errors import UnexpectedResponse, error_from_response
from vantage_client.routes import ROUTES

T = TypeVar("T")
PageT = TypeVar("PageT")
M = TypeVar("M", bound=BaseModel)
Params = dict[str, str | int | float | bool]
Body = BaseModel | Mapping[str, Any]

# Repeating these cannot apply anything twice (PATCH here sets fields, it does not add).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "PATCH"})


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request, built once per client call and sent unchanged on every retry."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Params = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    answers: frozenset[int] = frozenset()  # statuses besides 2xx read as answers, not errors
    retry_safe: bool = False  # sending it again cannot apply it twice
    slow_s: float = 0.0  # how long the server may deliberately take, added to the read timeout


@dataclass(frozen=True)
class Pager(Generic[T, PageT]):
    """A paged list: the first page's call, a page's items, and the call for the next page."""

    first: Call[PageT]
    items: Callable[[PageT], list[T]]
    following: Callable[[PageT], Call[PageT] | None]


def build(
    name: str,
    parse: Callable[[httpx.Response], T],
    path: Mapping[str, str] | None = None,
    params: Mapping[str, str | int | float | bool | None] | None = None,
    *,
    json: Any = None,
    headers: dict[str, str] | None = None,
    answers: frozenset[int] = frozenset(),
    retry_safe: bool | None = None,
    slow_s: float = 0.0,
) -> Call[T]:
    """The call of the route `ROUTES[name]`; path parameters are escaped, None params dropped.

    `retry_safe` defaults to whether the HTTP method is idempotent."""
    method, template = ROUTES[name]
    escaped = {k: quote(v, safe="") for k, v in (path or {}).items()}
    return Call(
        method,
        template.format(**escaped),
        parse,
        params={k: v for k, v in (params or {}).items() if v is not None},
        json=json,
        headers=headers or {},
        answers=answers,
        retry_safe=method in IDEMPOTENT_METHODS if retry_safe is None else retry_safe,
        slow_s=slow_s,
    )


def answer(call: Call[T], response: httpx.Response) -> T:
    """The parsed answer, or the exception of an error answer."""
    if not (response.is_success or response.status_code in call.answers):
        raise error_from_response(response)
    try:
        return call.parse(response)
    except (ValidationError, ValueError) as e:
        raise UnexpectedResponse(
            f"{call.method} {call.path}: unreadable {response.status_code} answer: {e}", response
        ) from e


def body(value: Body, shape: type[BaseModel] | None = None) -> Any:
    """JSON of a request body: the fields of a model that were set (only those `shape` has:
    a fetched `ItemOut` sent back as `ItemFields` leaves its id and times out), or a mapping
    as it is."""
    if isinstance(value, BaseModel):
        keep = set(shape.model_fields) if shape is not None else None
        return value.model_dump(mode="json", exclude_unset=True, include=keep)
    return dict(value)


def parse_model(cls: type[M]) -> Callable[[httpx.Response], M]:
    def parse(response: httpx.Response) -> M:
        return cls.model_validate_json(response.content)

    return parse


def adapted(adapter: TypeAdapter[T]) -> Callable[[httpx.Response], T]:
    def parse(response: httpx.Response) -> T:
        return adapter.validate_json(response.content)

    return parse


def nothing(response: httpx.Response) -> None:
    """A 204 answer has no body."""


def text(response: httpx.Response) -> str:
    return response.text


def new_idempotency_key() -> str:
    return uuid.uuid4().hex
