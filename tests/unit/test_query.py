"""app.query: a hot route's query string read in one validation, with FastAPI's semantics
and FastAPI's own OpenAPI declaration of the same parameters."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from app.params import DeviceQ, FilterQ, LimitQ, UserIdQ
from app.query import QueryModel, parsed, query_parameters
from app.routes.recommendations import RecQuery


class Asked(QueryModel):
    user_id: UserIdQ = None
    limit: LimitQ = None
    device: DeviceQ = None
    filter_: FilterQ = None
    kind: Annotated[Literal["a", "b"], Query(description="which")]


def _request(qs: str) -> Request:
    return Request({"type": "http", "method": "GET", "query_string": qs.encode(), "headers": []})


def test_the_last_of_a_repeated_parameter_wins_and_unknown_ones_are_ignored() -> None:
    q = parsed(Asked, _request("kind=a&limit=3&limit=4&other=1&filter=x%20%3D%201"))
    assert (q.kind, q.limit, q.filter_, q.user_id) == ("a", 4, "x = 1", None)


def test_every_wrong_parameter_is_reported_in_the_query() -> None:
    with pytest.raises(RequestValidationError) as e:
        parsed(Asked, _request("limit=0&device=fridge&user_id=a%20b"))
    locs = {tuple(err["loc"]) for err in e.value.errors()}
    assert locs == {
        ("query", "limit"),
        ("query", "device"),
        ("query", "user_id"),
        ("query", "kind"),  # required, and missing
    }


def test_the_declared_parameters_are_the_models_fields_by_alias() -> None:
    params = {p["name"]: p for p in query_parameters(Asked)["parameters"]}
    assert set(params) == {"user_id", "limit", "device", "filter", "kind"}
    assert all(p["in"] == "query" for p in params.values())
    assert params["kind"]["required"] is True and params["limit"]["required"] is False
    assert params["kind"]["schema"]["enum"] == ["a", "b"]
    limit = params["limit"]["schema"]["anyOf"][0]
    assert limit == {"type": "integer", "maximum": 1000, "minimum": 1}


def test_the_list_route_declares_what_it_reads() -> None:
    declared = {p["name"] for p in query_parameters(RecQuery)["parameters"]}
    read = {f.alias or name for name, f in RecQuery.model_fields.items()}
    assert declared == read


def test_a_field_that_refers_to_another_model_is_refused() -> None:
    class Inner(BaseModel):
        x: int

    class Nested(QueryModel):
        inner: Inner | None = None

    with pytest.raises(TypeError, match="must not refer"):
        query_parameters(Nested)
