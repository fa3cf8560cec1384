"""Candidate sets on the real stores: the worker queues, the refresher builds, requests serve
from them; events change lists before any refresh, and deleted items never come out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from core.settings import CandidateSettings, Settings
from core.stores.candidates import RedisCandidates
from core.stores.protocols import CandidateSet
from indexing.refresh import CandidateRefresher
from tests.conftest import _drop_test_data, authed, make_settings
from tests.integration.test_api_flow import load_catalogue


@pytest.fixture
def settings(servers: dict[str, str]) -> Iterator[Settings]:
    """Candidate sets on (they are off by default)."""
    s = make_settings(servers, candidates=CandidateSettings(enabled=True, refresh_interval_s=0))
    yield s
    _drop_test_data(s)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with authed(create_app(settings), settings) as c:
        yield c


def _debug(client: TestClient, **params: Any) -> dict[str, Any]:
    r = client.get("/v1/recommendations", params={"debug": "true", **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _origin(body: dict[str, Any], source: str) -> str:
    return str(next(s["origin"] for s in body["debug"]["sources"] if s["name"] == source))


def _ids(body: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def test_worker_queues_refresher_builds_requests_serve(
    client: TestClient, worker: Any, stores: Any, settings: Settings
) -> None:
    load_catalogue(client, worker)
    sets = RedisCandidates(stores.redis, stores.keys)
    refresher = CandidateRefresher(stores, settings)
    r = client.post(
        "/v1/interactions",
        json=[
            {"user_id": "ann", "item_id": "space-1", "type": "like"},
            {"user_id": "ann", "item_id": "space-2", "type": "watch"},
        ],
    )
    assert r.status_code == 202
    worker.drain()
    assert sets.queued() == 0  # events alone queue nothing: ann has not asked for a list
    assert _origin(_debug(client, user_id="ann", limit=5), "personal") == "miss"
    assert [o for o, _ in sets.stale(10)] == ["u:ann"]  # her first request queued her set
    assert refresher.refresh_once() == 1 and sets.queued() == 0
    kept = sets.get(["u:ann"])["u:ann"]
    assert kept.sources["content_profile"] and not {"space-1", "space-2"} & set(kept.ids())

    first = _debug(client, user_id="ann", limit=5)
    assert _origin(first, "personal") == "set" and not first["degraded"]
    # A filter expression is checked on the set's candidates; too few matches: retrieved live.
    wide = 'category = "space" or category = "cooking"'
    both = _debug(client, user_id="ann", limit=2, filter=wide)
    assert _origin(both, "personal") == "set" and both["items"]
    assert all(i.split("-")[0] in ("space", "cook") for i in _ids(both)), _ids(both)
    rare = _debug(client, user_id="ann", limit=5, filter='category = "horror"')
    assert _origin(rare, "personal") == "live"
    top = _ids(first)[0]
    # A click, applied but not refreshed: the next list changes at once.
    client.post("/v1/interactions", json={"user_id": "ann", "item_id": top, "type": "watch"})
    worker.drain()
    assert sets.queued() == 1
    after = _debug(client, user_id="ann", limit=5)
    assert _origin(after, "personal") == "set" and top not in _ids(after)
    # Deleted: tombstoned at once, never served from the set that still holds it.
    gone = _ids(after)[0]
    assert gone in sets.get(["u:ann"])["u:ann"].ids()
    assert client.delete(f"/v1/items/{gone}").status_code == 202
    assert gone not in _ids(_debug(client, user_id="ann", limit=20))
    seed = next(i for i in ("space-3", "space-4", "cook-1") if i != gone)
    assert gone not in _ids(_debug(client, user_id="ann", surface="related", item_id=seed))


def test_a_new_model_marks_sets_stale_and_they_are_rebuilt(
    client: TestClient, worker: Any, stores: Any, settings: Settings
) -> None:
    load_catalogue(client, worker)
    client.post("/v1/interactions", json={"user_id": "bo", "item_id": "cook-1", "type": "like"})
    worker.drain()
    assert _origin(_debug(client, user_id="bo"), "personal") == "miss"
    refresher = CandidateRefresher(stores, settings)
    assert refresher.refresh_once() == 1
    assert _origin(_debug(client, user_id="bo"), "personal") == "set"
    related = _debug(client, user_id="bo", surface="related", item_id="cook-2")
    assert _origin(related, "similar_item") == "miss"  # served live, the set queued
    assert refresher.refresh_once() == 1
    assert (
        _origin(_debug(client, user_id="bo", surface="related", item_id="cook-2"), "similar_item")
        == "set"
    )
    # A re-index or model refresh changes what sets are built from (their tag): a set of an
    # older tag is still served, and queued.
    sets = RedisCandidates(stores.redis, stores.keys)
    current = sets.get(["u:bo"])["u:bo"]
    sets.put([CandidateSet("u:bo", "items_v0|m0", current.built_at, current.sources)], 60)
    stale = _debug(client, user_id="bo")
    assert _origin(stale, "personal") == "stale_set" and not stale["degraded"]
    assert "u:bo" in {o for o, _ in sets.stale(10)}
    assert refresher.refresh_once() >= 1
    assert sets.get(["u:bo"])["u:bo"].tag == current.tag == refresher.tag()
    assert _origin(_debug(client, user_id="bo"), "personal") == "set"
