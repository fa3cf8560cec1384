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
    before = stores.redis.xlen(stores.keys.events)
    first = client.post("/v1/interactions", json=batch, headers=key)
    assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
    # The client lost the answer and retries (timestamps left to the server both times).
    again = client.post("/v1/interactions", json=batch, headers=key)
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["event_ids"] == first.json()["event_ids"]
    assert stores.redis.xlen(stores.keys.events) == before + 2
    # The same key for different events is refused and stores nothing.
    msg = error(client.post("/v1/interactions", json=batch[:1], headers=key), 409)
    assert "Idempotency-Key" in msg and "new key" in msg
    assert stores.redis.xlen(stores.keys.events) == before + 2
    # A malformed key says what a key may be; a new key logs again.
    assert "Idempotency-Key" in error(
        client.post("/v1/interactions", json=batch, headers={"Idempotency-Key": "has space"})
    )
    other = client.post("/v1/interactions", json=batch, headers={"Idempotency-Key": "retry-2"})
    assert other.status_code == 202 and other.json()["event_ids"] != first.json()["event_ids"]
    worker.drain()
    assert stores.redis.zcard(stores.keys.history("retry-u")) == 2
