"""Bad input answers 4xx with a message that says what to fix, and stores nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient


def error(r: Any, status: int = 422) -> str:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["message"] and body["code"]
    return str(body["message"])


def test_unknown_surface_lists_valid_ones(client: TestClient) -> None:
    msg = error(client.get("/v1/recommendations", params={"user_id": "u", "surface": "nope"}))
    assert "surface" in msg and "homepage" in msg and "related" in msg


@pytest.mark.parametrize("limit", [0, -1, 101, "ten"])
def test_limit_bounds(client: TestClient, limit: object) -> None:
    msg = error(client.get("/v1/recommendations", params={"user_id": "u", "limit": limit}))
    assert "limit" in msg


def test_huge_and_hostile_ids(client: TestClient) -> None:
    assert "user_id" in error(client.get("/v1/recommendations", params={"user_id": "x" * 10_000}))
    msg = error(client.get("/v1/items/" + "y" * 10_000))
    assert msg.startswith("item_id: must be 1-128 characters"), msg
    hostile = 'x" or item_id != "'
    error(client.get("/v1/recommendations", params={"user_id": hostile}))
    error(client.put(f"/v1/items/{hostile}", json={"title": "t"}))
    error(
        client.post("/v1/interactions", json={"user_id": hostile, "item_id": "i", "type": "view"})
    )


def test_related_needs_item(client: TestClient) -> None:
    assert "item_id" in error(
        client.get("/v1/recommendations", params={"user_id": "u", "surface": "related"})
    )


def test_item_body_validation(client: TestClient) -> None:
    assert "title" in error(client.put("/v1/items/a", json={"description": "no title"}))
    assert "maturity" in error(client.put("/v1/items/a", json={"title": "t", "maturity": 19}))
    assert "status" in error(client.put("/v1/items/a", json={"title": "t", "status": "gone"}))
    assert "categories" in error(client.put("/v1/items/a", json={"title": "t", "categories": "x"}))
    assert "bogus" in error(client.put("/v1/items/a", json={"title": "t", "bogus": 1}))
    too_many = {"items": [{"item_id": f"i{n}", "title": "t"} for n in range(1001)]}
    assert "items" in error(client.post("/v1/items/batch", json=too_many))
    assert error(client.post("/v1/items/batch", json={"items": []}))


def test_interaction_validation(client: TestClient) -> None:
    ok = {"user_id": "u", "item_id": "i", "type": "view"}
    assert "type" in error(client.post("/v1/interactions", json={**ok, "type": "stare"}))
    assert "value" in error(client.post("/v1/interactions", json={**ok, "value": "lots"}))
    assert "timestamp" in error(client.post("/v1/interactions", json={**ok, "timestamp": 9e12}))
    assert error(client.post("/v1/interactions", json=[ok] * 1001))
    assert error(client.post("/v1/interactions", json=[]))
    assert error(
        client.post(
            "/v1/interactions", content=b"{not json", headers={"content-type": "application/json"}
        )
    )
    r = client.post("/v1/interactions", json=[ok, ok])
    assert r.status_code == 202 and len(r.json()["event_ids"]) == 2


def test_user_validation(client: TestClient) -> None:
    assert "birth_year" in error(client.put("/v1/users/u", json={"birth_year": 3000}))
    assert "region" in error(client.put("/v1/users/u", json={"region": "USA"}))
    assert error(client.get("/v1/users/ghost"), 404)


def test_injection_in_filter_param_does_not_widen(client: TestClient, worker: Any) -> None:
    client.post(
        "/v1/items/batch",
        json={
            "items": [
                {"item_id": "a", "title": "Jazz night", "categories": ["jazz"]},
                {"item_id": "b", "title": "Rock night", "categories": ["rock"]},
            ]
        },
    )
    worker.drain()
    client.post("/v1/interactions", json={"user_id": "u", "item_id": "a", "type": "like"})
    worker.drain()
    r = client.get(
        "/v1/recommendations",
        params={
            "user_id": "u2",
            "surface": "related",
            "item_id": "a",
            "category": 'x" or item_id != "',
        },
    )
    assert r.status_code == 200 and r.json()["items"] == []


def test_writes_answer_503_when_redis_is_down(servers: dict[str, str]) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app
    from tests.conftest import make_settings
    from vantage.stack import free_port

    s = make_settings(servers)
    s = s.model_copy(
        update={
            "redis": s.redis.model_copy(update={"url": f"redis://127.0.0.1:{free_port()}/0"}),
            # Keys live in Redis: with it down from the start nothing could be verified (503
            # too); this test is about the write path itself.
            "auth": s.auth.model_copy(update={"enabled": False}),
        }
    )
    with TestClient(create_app(s)) as c:
        r = c.post("/v1/interactions", json={"user_id": "u", "item_id": "i", "type": "view"})
        assert r.status_code == 503 and r.headers["retry-after"]
        assert "nothing was stored" in r.json()["error"]["message"]
        assert c.get("/readyz").status_code == 503
        assert c.get("/healthz").status_code == 200


def test_idempotency_key_makes_a_retry_log_nothing(
    client: TestClient, stores: Any, worker: Any
) -> None:
    batch = [
        {"user_id": "retry-u", "item_id": "i1", "type": "view"},
        {"user_id": "retry-u", "item_id": "i2", "type": "like"},
    ]
    key = {"Idempotency-Key": "5f0c7a1e-retry-1"}
    before = stores.redis.xlen(stores.keys.stream(0))
    first = client.post("/v1/interactions", json=batch, headers=key)
    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    # The client lost the answer and retries (timestamps left to the server both times).
    again = client.post("/v1/interactions", json=batch, headers=key)
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["event_ids"] == first.json()["event_ids"]
    assert stores.redis.xlen(stores.keys.stream(0)) == before + 2
    # The same key for different events is refused and stores nothing.
    msg = error(client.post("/v1/interactions", json=batch[:1], headers=key), 409)
    assert "Idempotency-Key" in msg and "new key" in msg
    assert stores.redis.xlen(stores.keys.stream(0)) == before + 2
    # A malformed key says what a key may be; a new key logs again.
    assert "Idempotency-Key" in error(
        client.post("/v1/interactions", json=batch, headers={"Idempotency-Key": "has space"})
    )
    other = client.post("/v1/interactions", json=batch, headers={"Idempotency-Key": "retry-2"})
    assert other.status_code == 202 and other.json()["event_ids"] != first.json()["event_ids"]
    worker.drain()
    assert stores.redis.zcard(stores.keys.history("retry-u")) == 2


# Strict JSON types: a number is a JSON number (never "18" or true), and text carries no
# control characters; nothing is stored (the stream does not grow).
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/items/strict-1", {"title": "T", "maturity": True}, "maturity"),
        ("/v1/items/strict-1", {"title": "T", "maturity": "18"}, "maturity"),
        ("/v1/items/strict-1", {"title": "T", "published_at": "1700000000"}, "published_at"),
        ("/v1/items/strict-1", {"title": "Night\x00fall"}, "title"),
        ("/v1/items/strict-1", {"title": "T", "description": "a\x00b"}, "description"),
        ("/v1/items/strict-1", {"title": "T", "description": "a\x1b[31mred"}, "description"),
        ("/v1/items/strict-1", {"title": "T", "categories": ["a\x07"]}, "categories.0"),
        ("/v1/items/strict-1", {"title": "T", "creator_id": "c\x85"}, "creator_id"),
        ("/v1/items/strict-1", {"title": "   "}, "title"),
    ],
)
def test_item_fields_take_strict_types_and_no_control_characters(
    client: TestClient, stores: Any, path: str, body: dict[str, Any], field: str
) -> None:
    before = stores.redis.xlen(stores.keys.stream(0))
    r = client.put(path, json=body)
    msg = error(r)
    assert msg.startswith(f"{field}:"), msg
    assert r.json()["error"]["details"][0]["field"] == field
    assert stores.redis.xlen(stores.keys.stream(0)) == before


def test_text_keeps_tabs_line_breaks_and_integral_numbers(client: TestClient) -> None:
    body = {"title": "Café", "description": "line one\n\tline two\r\n", "maturity": 12.0}
    assert client.put("/v1/items/strict-ok", json=body).status_code == 202


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "u", "item_id": "i", "type": "rate", "value": "4"},
        {"user_id": "u", "item_id": "i", "type": "rate", "value": True},
        {"user_id": "u", "item_id": "i", "type": "view", "timestamp": "1700000000"},
    ],
)
def test_interaction_numbers_are_json_numbers(client: TestClient, body: dict[str, Any]) -> None:
    assert "must be a number" in error(client.post("/v1/interactions", json=body))


def test_user_birth_year_is_a_number_not_text(client: TestClient) -> None:
    msg = error(client.put("/v1/users/strict-u", json={"birth_year": "2010"}))
    assert msg == "birth_year: must be a number, not a string"


def test_a_bad_enum_says_which_values_are_allowed(client: TestClient) -> None:
    """No pydantic internals ("function-after[...]", "list[...]") in the message."""
    one = client.post("/v1/interactions", json={"user_id": "u", "item_id": "i", "type": "poke"})
    msg = error(one)
    assert msg == (
        "type: must be one of view, click, watch, like, dislike, skip, purchase, rate"
    ), msg
    many = client.post(
        "/v1/interactions",
        json=[{"user_id": "u", "item_id": "i", "type": "view"}, {"user_id": "u", "type": "x"}],
    )
    msg = error(many)
    assert "1.type: must be one of view, click" in msg and "1.item_id: " in msg, msg
    assert "function-after" not in msg and "list[" not in msg


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/items/utf8"),
        ("POST", "/v1/items/batch"),
        ("POST", "/v1/interactions"),
        ("PUT", "/v1/users/utf8"),
        ("PATCH", "/v1/users/utf8"),
        ("PUT", "/v1/admin/rules/utf8"),
        ("POST", "/v1/admin/reindex"),
        ("POST", "/v1/admin/dead-letters/replay"),
    ],
)
def test_invalid_utf8_is_the_same_422_on_every_route(
    client: TestClient, method: str, path: str
) -> None:
    r = client.request(
        method, path, content=b'{"title": "\xff\xfe"}', headers={"Content-Type": "application/json"}
    )
    msg = error(r)
    assert r.json()["error"]["code"] == "invalid_request"
    assert "UTF-8" in msg, msg


def test_malformed_json_says_where(client: TestClient) -> None:
    r = client.put(
        "/v1/items/bad-json", content=b'{"title": }', headers={"Content-Type": "application/json"}
    )
    assert error(r).startswith("body: not valid JSON (Expecting value at character 10)")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/v1/items/batch", "POST"),
        ("OPTIONS", "/v1/items/x", "DELETE, GET, PUT"),
        ("POST", "/v1/users/x", "DELETE, GET, PATCH, PUT"),
        ("DELETE", "/v1/admin/dead-letters/replay", "POST"),
    ],
)
def test_wrong_method_is_405_with_every_allowed_method(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    r = client.request(method, path)
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == allowed
    assert allowed in r.json()["error"]["message"]


def test_schema_states_the_runtime_bounds(client: TestClient, settings: Any) -> None:
    """limit's maximum is serving.max_limit, surfaces are the configured ones, birth_year
    stops at this year, event time at the end of tomorrow: and the runtime agrees."""
    import time

    from core.domain import latest_timestamp

    schema = client.get("/openapi.json").json()
    params = {
        p["name"]: p["schema"] for p in schema["paths"]["/v1/recommendations"]["get"]["parameters"]
    }
    top = settings.serving.max_limit
    assert _branch(params["limit"], "integer")["maximum"] == top
    assert _branch(params["surface"], "string")["enum"] == sorted(settings.surfaces)
    ok = {"user_id": "u-bounds", "limit": top}
    assert client.get("/v1/recommendations", params=ok).status_code == 200
    assert "limit" in error(client.get("/v1/recommendations", params={**ok, "limit": top + 1}))
    comps = schema["components"]["schemas"]
    year = time.gmtime().tm_year
    birth = [
        b
        for b in comps["UserFields"]["properties"]["birth_year"]["anyOf"]
        if b["type"] == "integer"
    ]
    assert birth[0]["maximum"] == year
    assert client.put("/v1/users/bounds", json={"birth_year": year}).status_code == 200
    error(client.put("/v1/users/bounds", json={"birth_year": year + 1}))
    ts = [
        b
        for b in comps["InteractionIn"]["properties"]["timestamp"]["anyOf"]
        if b["type"] == "number"
    ]
    assert ts[0]["maximum"] == latest_timestamp()
    event = {"user_id": "u", "item_id": "i", "type": "view"}
    assert (
        client.post("/v1/interactions", json={**event, "timestamp": latest_timestamp()}).status_code
        == 202
    )
    error(client.post("/v1/interactions", json={**event, "timestamp": latest_timestamp() + 1}))


def _branch(schema: dict[str, Any], kind: str) -> dict[str, Any]:
    """The `kind` branch of an optional field's schema (`anyOf: [..., null]`)."""
    return next(b for b in schema.get("anyOf", [schema]) if b.get("type") == kind)


def test_every_route_documents_its_error_answers(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path, ops in schema["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, op in ops.items():
            codes = set(op["responses"])
            assert {"401", "403", "422", "429", "503"} <= codes, (method, path, codes)
            assert op["responses"]["422"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }
            if "{" in path and method in ("get", "delete") and "rules" in path:
                assert "404" in codes
            if "requestBody" in op:
                assert "413" in codes, (method, path)
