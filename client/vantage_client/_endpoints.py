"""The API's routes as methods, declared once for both clients.

Each attribute wraps a builder of `_calls`: on `VantageClient` calling it sends the call and
returns the answer; on `AsyncVantageClient` it returns a coroutine of the answer. `iter_*`
methods return an iterator (an async iterator) that follows the server's pages.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Self, TypeVar, overload

from vantage_client import _calls as c
from vantage_client._requests import Call, Pager

if TYPE_CHECKING:
    from vantage_client.aio import AsyncVantageClient
    from vantage_client.sync import VantageClient

P = ParamSpec("P")
T = TypeVar("T")


class _Bound:
    """Binds a builder to a client on first access (then cached on the instance)."""

    runner = ""  # the client method that runs what the builder returns

    def __init__(self, build: Callable[..., Any]) -> None:
        self._build = build
        self.__doc__ = build.__doc__
        self._name = build.__name__

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    def _bind(self, client: Any) -> Callable[..., Any]:
        build, run = self._build, getattr(client, self.runner)

        @functools.wraps(build)
        def method(*args: Any, **kwargs: Any) -> Any:
            return run(build(*args, **kwargs))

        client.__dict__[self._name] = method
        return method


class Endpoint(_Bound, Generic[P, T]):
    """A client method that sends one call."""

    runner = "_send"

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        super().__init__(build)

    @overload
    def __get__(self, client: None, owner: type[Any] | None = None) -> Self: ...
    @overload
    def __get__(self, client: VantageClient, owner: type[Any] | None = None) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, client: AsyncVantageClient, owner: type[Any] | None = None
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, client: Any, owner: type[Any] | None = None) -> Any:
        return self if client is None else self._bind(client)


class Pages(_Bound, Generic[P, T]):
    """A client method that iterates over every item of a paged list."""

    runner = "_iterate"

    def __init__(self, build: Callable[P, Pager[T, Any]]) -> None:
        super().__init__(build)

    @overload
    def __get__(self, client: None, owner: type[Any] | None = None) -> Self: ...
    @overload
    def __get__(
        self, client: VantageClient, owner: type[Any] | None = None
    ) -> Callable[P, Iterator[T]]: ...
    @overload
    def __get__(
        self, client: AsyncVantageClient, owner: type[Any] | None = None
    ) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(self, client: Any, owner: type[Any] | None = None) -> Any:
        return self if client is None else self._bind(client)


class Endpoints:
    """Every route of `vantage_client.routes.ROUTES`, and the paged lists' iterators."""

    # operations
    health = Endpoint(c.health)
    ready = Endpoint(c.ready)
    metrics = Endpoint(c.metrics)
    # catalogue
    put_item = Endpoint(c.put_item)
    put_items = Endpoint(c.put_items)
    get_item = Endpoint(c.get_item)
    search_items = Endpoint(c.search_items)
    delete_item = Endpoint(c.delete_item)
    # users
    put_user = Endpoint(c.put_user)
    patch_user = Endpoint(c.patch_user)
    get_user = Endpoint(c.get_user)
    erase_user = Endpoint(c.erase_user)
    get_erasure = Endpoint(c.get_erasure)
    list_users = Endpoint(c.list_users)
    # users' own controls
    get_controls = Endpoint(c.get_controls)
    patch_controls = Endpoint(c.patch_controls)
    add_not_interested = Endpoint(c.add_not_interested)
    remove_not_interested = Endpoint(c.remove_not_interested)
    reset_history = Endpoint(c.reset_history)
    # guests' sessions
    merge_session = Endpoint(c.merge_session)
    # events and recommendations
    log_interactions = Endpoint(c.log_interactions)
    recommend = Endpoint(c.recommend)
    why_not = Endpoint(c.why_not)
    cached_recommendations = Endpoint(c.cached_recommendations)
    # admin: jobs and models
    reindex = Endpoint(c.reindex)
    refresh_models = Endpoint(c.refresh_models)
    list_models = Endpoint(c.list_models)
    make_current = Endpoint(c.make_current)
    ranker_drift = Endpoint(c.ranker_drift)
    canary = Endpoint(c.canary)
    start_canary = Endpoint(c.start_canary)
    stop_canary = Endpoint(c.stop_canary)
    evaluate_offline = Endpoint(c.evaluate_offline)
    list_ope_candidates = Endpoint(c.list_ope_candidates)
    put_ope_candidate = Endpoint(c.put_ope_candidate)
    delete_ope_candidate = Endpoint(c.delete_ope_candidate)
    list_jobs = Endpoint(c.list_jobs)
    get_job = Endpoint(c.get_job)
    # admin: the event queue
    list_dead_letters = Endpoint(c.list_dead_letters)
    iter_dead_letters = Pages(c.iter_dead_letters)
    replay_dead_letters = Endpoint(c.replay_dead_letters)
    discard_dead_letter = Endpoint(c.discard_dead_letter)
    queue = Endpoint(c.queue)
    # admin: business rules and analytics
    put_rule = Endpoint(c.put_rule)
    get_rule = Endpoint(c.get_rule)
    delete_rule = Endpoint(c.delete_rule)
    list_rules = Endpoint(c.list_rules)
    iter_rules = Pages(c.iter_rules)
    surface_metrics = Endpoint(c.surface_metrics)
    surface_metrics_hourly = Endpoint(c.surface_metrics_hourly)
    experiments = Endpoint(c.experiments)
    # API keys
    me = Endpoint(c.me)
    create_key = Endpoint(c.create_key)
    list_keys = Endpoint(c.list_keys)
    get_key = Endpoint(c.get_key)
    revoke_key = Endpoint(c.revoke_key)
