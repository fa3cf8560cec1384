"""Business rules API: create / replace / read / delete, validation messages, scope, version."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from core.settings import Settings
from tests.conftest import admin_token

BOOST = {"action": "boost", "category": "news", "weight": 0.3, "note": "election week"}
PIN = {"action": "pin", "item_id": "launch-1", "position": 2, "surfaces": ["homepage"]}


@pytest.fixture
def pin_target(client: TestClient, worker: Any) -> None:
    """The item PIN targets, in the catalogue (rules on unknown items are refused)."""
    item = {"item_id": PIN["item_id"], "title": "Launch day"}
    assert client.post("/v1/items/batch", json={"items": [item]}).status_code == 202
    worker.drain()


def _version(client: TestClient) -> int:
    return int(client.get("/v1/admin/rules").json()["version"])


def _error(res: Any, status: int = 422) -> str:
    assert res.status_code == status, res.text
    return str(res.json()["error"]["message"])


def test_rules_are_created_replaced_listed_and_deleted(
    client: TestClient, pin_target: None
) -> None:
    empty = {"items": [], "total": 0, "version": 0, "next_after": None}
    assert client.get("/v1/admin/rules").json() == empty

    res = client.put("/v1/admin/rules/news-up", json=BOOST)
    assert res.status_code == 201, res.text
    assert res.headers["location"] == "/v1/admin/rules/news-up"
    made = res.json()
    assert made["rule_id"] == "news-up" and made["weight"] == 0.3 and made["expired"] is False
    assert made["created_at"] == made["updated_at"] and made["surfaces"] == []

    res = client.put("/v1/admin/rules/news-up", json={**BOOST, "weight": 0.6})
    assert res.status_code == 200, res.text
    replaced = res.json()
    assert replaced["weight"] == 0.6 and replaced["created_at"] == made["created_at"]
    assert replaced["updated_at"] > made["updated_at"]
    assert client.put("/v1/admin/rules/news-up", json={**BOOST, "weight": 0.6}).status_code == 200

    assert client.put("/v1/admin/rules/launch:pin.1", json=PIN).status_code == 201
    listed = client.get("/v1/admin/rules").json()
    assert [r["rule_id"] for r in listed["items"]] == ["launch:pin.1", "news-up"]
    assert listed["total"] == 2 and listed["version"] == 4 and listed["next_after"] is None
    # A page at a time: next_after leads to the rest.
    first = client.get("/v1/admin/rules", params={"limit": 1}).json()
    assert [r["rule_id"] for r in first["items"]] == ["launch:pin.1"] and first["total"] == 2
    rest = client.get("/v1/admin/rules", params={"limit": 1, "after": first["next_after"]}).json()
    assert [r["rule_id"] for r in rest["items"]] == ["news-up"] and rest["next_after"] is None
    assert "limit" in _error(client.get("/v1/admin/rules", params={"limit": 0}))
    pin = client.get("/v1/admin/rules/launch:pin.1").json()
    assert pin["position"] == 2 and pin["weight"] is None and pin["surfaces"] == ["homepage"]
    # The surface filter keeps the rules that apply there (empty surfaces: everywhere).
    related = client.get("/v1/admin/rules", params={"surface": "related"}).json()
    assert [r["rule_id"] for r in related["items"]] == ["news-up"]

    assert client.delete("/v1/admin/rules/news-up").status_code == 204
    gone = client.get("/v1/admin/rules/news-up")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert "news-up" in _error(client.delete("/v1/admin/rules/news-up"), 404)
    assert client.get("/v1/admin/rules").json()["total"] == 1


def test_bad_rules_get_messages_that_say_what_to_fix(client: TestClient) -> None:
    msg = _error(client.put("/v1/admin/rules/r1", json={**BOOST, "surfaces": ["home"]}))
    assert "'home'" in msg and "homepage, related, trending" in msg
    msg = _error(client.get("/v1/admin/rules", params={"surface": "inbox"}))
    assert "'inbox'" in msg and "homepage, related, trending" in msg
    pin_cat = {"action": "pin", "category": "news", "position": 1}
    assert "pin needs item_id" in _error(client.put("/v1/admin/rules/r1", json=pin_cat))
    boost_pos = {"action": "boost", "item_id": "a", "position": 3}
    assert "position applies to pin only" in _error(
        client.put("/v1/admin/rules/r1", json=boost_pos)
    )
    past = {**BOOST, "expires_at": time.time() - 60}
    assert "expires_at" in (m := _error(client.put("/v1/admin/rules/r1", json=past)))
    assert "in the past" in m
    assert "colour" in _error(client.put("/v1/admin/rules/r1", json={**BOOST, "colour": 1}))
    assert "weight" in _error(client.put("/v1/admin/rules/r1", json={**BOOST, "weight": 11}))
    assert "rule_id" in _error(client.put("/v1/admin/rules/-bad", json=BOOST))
    assert "rule_id" in _error(client.get("/v1/admin/rules/" + "x" * 65))
    assert _version(client) == 0  # nothing was stored


def test_rule_count_is_capped(client: TestClient, pin_target: None) -> None:
    client.app.state.vantage.rules.max_rules = 2  # type: ignore[attr-defined]
    for n in range(2):
        assert client.put(f"/v1/admin/rules/r{n}", json=BOOST).status_code == 201
    res = client.put("/v1/admin/rules/r2", json=BOOST)
    assert "already 2 rules" in _error(res) and res.json()["error"]["code"] == "too_many_rules"
    assert client.put("/v1/admin/rules/r1", json=PIN).status_code == 200  # replacing is fine


def test_rules_need_the_admin_scope(client: TestClient, settings: Settings) -> None:
    catalog = {"Authorization": f"Bearer {admin_token(settings, ('catalog',))}"}
    with TestClient(create_app(settings)) as anon:
        for method, url, body in (
            ("PUT", "/v1/admin/rules/r1", BOOST),
            ("GET", "/v1/admin/rules", None),
            ("GET", "/v1/admin/rules/r1", None),
            ("DELETE", "/v1/admin/rules/r1", None),
        ):
            assert anon.request(method, url, json=body).status_code == 401
            res = anon.request(method, url, json=body, headers=catalog)
            assert "'admin' scope" in _error(res, 403)
    assert _version(client) == 0


def test_every_change_bumps_the_version_and_reaches_the_snapshot(
    client: TestClient, pin_target: None
) -> None:
    store = client.app.state.vantage.rules  # type: ignore[attr-defined]
    store.refresh_s = 0  # no once-a-second wait in this test
    assert store.snapshot().version == 0
    seen = []
    client.put("/v1/admin/rules/a", json=BOOST)
    seen.append(_version(client))
    client.put("/v1/admin/rules/a", json={**BOOST, "weight": 1})
    seen.append(_version(client))
    client.delete("/v1/admin/rules/a")
    seen.append(_version(client))
    client.delete("/v1/admin/rules/a")  # 404: no change, no bump
    seen.append(_version(client))
    assert seen == [1, 2, 3, 3]

    soon = {**PIN, "expires_at": time.time() + 1}
    client.put("/v1/admin/rules/short", json=soon)
    snap = store.snapshot()
    assert snap.version == 4 and [r.rule_id for r in snap.for_surface("homepage")] == ["short"]
    assert snap.for_surface("related") == []
    time.sleep(1.2)
    # Listed, flagged, until pruned; the next snapshot prunes it and bumps the version.
    assert client.get("/v1/admin/rules/short").json()["expired"] is True
    assert [r["expired"] for r in client.get("/v1/admin/rules").json()["items"]] == [True]
    snap = store.snapshot()
    assert snap.version == 5 and snap.rules == ()
    assert client.get("/v1/admin/rules/short").status_code == 404


def test_rules_on_unknown_or_deleted_items_are_refused(
    client: TestClient, pin_target: None, worker: Any
) -> None:
    for action in ({"action": "pin", "position": 1}, {"action": "boost"}, {"action": "bury"}):
        res = client.put("/v1/admin/rules/p", json={**action, "item_id": "no-such-item"})
        assert "'no-such-item' does not exist" in _error(res)
    assert _version(client) == 0  # nothing was stored
    assert client.put("/v1/admin/rules/p", json=PIN).status_code == 201
    assert client.delete(f"/v1/items/{PIN['item_id']}").status_code == 202
    worker.drain()
    assert "does not exist" in _error(client.put("/v1/admin/rules/p2", json=PIN))
