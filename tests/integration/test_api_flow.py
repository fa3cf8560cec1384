"""End to end through the HTTP API: catalogue in, events queued, recommendations out."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from core import events as ev
from core.domain import User
from tests.integration.conftest import CATALOGUE


def load_catalogue(client: TestClient, worker: Any) -> None:
    body = {"items": [{"item_id": i, **b} for i, b in CATALOGUE.items()]}
    r = client.post("/v1/items/batch", json=body)
    assert r.status_code == 202, r.text
    assert len(r.json()["event_ids"]) == len(CATALOGUE)
    assert worker.drain() == len(CATALOGUE)


def rec_ids(client: TestClient, **params: Any) -> list[str]:
    r = client.get("/v1/recommendations", params=params)
    assert r.status_code == 200, r.text
    return [i["item_id"] for i in r.json()["items"]]


def test_item_put_get_delete(client: TestClient, worker: Any) -> None:
    r = client.put("/v1/items/space-1", json=CATALOGUE["space-1"])
    assert r.status_code == 202 and r.json()["status"] == "queued"
    assert client.get("/v1/items/space-1").status_code == 404  # not applied yet
    worker.drain()
    got = client.get("/v1/items/space-1").json()
    assert got["title"] == CATALOGUE["space-1"]["title"] and got["categories"] == ["space"]
    assert client.delete("/v1/items/space-1").status_code == 202
    # The tombstone hides it at once, before the worker removes it from Milvus.
    assert client.get("/v1/items/space-1").status_code == 404
    worker.drain()
    assert client.get("/v1/items/space-1").status_code == 404


def test_homepage_follows_interactions(client: TestClient, worker: Any) -> None:
    load_catalogue(client, worker)
    assert client.put("/v1/users/ann", json={"birth_year": 1990, "region": "US"}).status_code == 200
    # No history yet: popularity (empty here) gives nothing, and nothing errors.
    assert rec_ids(client, user_id="ann", surface="homepage") == []

    r = client.post(
        "/v1/interactions",
        json=[
            {"user_id": "ann", "item_id": "space-1", "type": "like"},
            {"user_id": "ann", "item_id": "space-2", "type": "watch"},
        ],
    )
    assert r.status_code == 202 and len(r.json()["event_ids"]) == 2
    worker.drain()
    space_first = rec_ids(client, user_id="ann", surface="homepage", limit=3)
    assert {"space-3", "space-4"} <= set(space_first[:3])
    assert not {"space-1", "space-2"} & set(space_first)  # already seen
    assert "hidden-1" not in space_first and "fr-1" not in space_first  # hidden / region

    client.post(
        "/v1/interactions",
        json=[{"user_id": "ann", "item_id": f"cook-{i}", "type": "purchase"} for i in (1, 2, 3)],
    )
    worker.drain()
    now = rec_ids(client, user_id="ann", surface="homepage", limit=3)
    assert now != space_first and now[0] == "cook-4"

    user = client.get("/v1/users/ann").json()
    assert user["recent"][0]["item_id"].startswith("cook-") and user["has_profile_vector"]


def test_patch_changes_some_profile_fields_and_keeps_the_others(
    client: TestClient, worker: Any
) -> None:
    load_catalogue(client, worker)
    full = {"birth_year": 2014, "region": "US", "language": "en"}
    assert client.put("/v1/users/kid2", json=full).status_code == 200
    res = client.patch("/v1/users/kid2", json={"preferences": {"categories": ["space"]}})
    assert res.status_code == 200, res.text
    profile = res.json()["profile"]
    # The safety-relevant birth year survives a partial update.
    assert profile["birth_year"] == 2014 and profile["region"] == "US"
    assert profile["preferences"]["categories"] == ["space"]
    worker.drain()  # the worker's mirror of the profile is the merged one too
    assert client.get("/v1/users/kid2").json()["profile"]["birth_year"] == 2014
    assert "horror-1" not in rec_ids(client, user_id="kid2", surface="homepage", limit=20)
    # null clears a field; PUT replaces the whole profile (documented), PATCH validates.
    cleared = client.patch("/v1/users/kid2", json={"region": None}).json()["profile"]
    assert cleared["region"] is None and cleared["birth_year"] == 2014
    assert client.patch("/v1/users/kid2", json={"birth_year": 1800}).status_code == 422
    assert client.patch("/v1/users/new-user", json={"language": "de"}).status_code == 200
    replaced = client.put("/v1/users/kid2", json={"language": "en"}).json()["profile"]
    assert replaced["birth_year"] is None


def test_profile_events_that_reach_the_stream_late_cannot_undo_a_newer_profile(
    client: TestClient, worker: Any, stores: Any
) -> None:
    """Concurrent writes of one profile may publish their events out of order (the profile
    and the stream are in different Redis Cluster slots): the older one is skipped."""
    assert client.put("/v1/users/late", json={"region": "US"}).status_code == 200
    assert client.patch("/v1/users/late", json={"region": "FR"}).status_code == 200
    # The first write's event, once more, after the second's: as if it had been slower.
    ev.publish(stores.redis, stores.keys, [ev.user_event(User(user_id="late", region="US"), 1)])
    worker.drain()
    assert client.get("/v1/users/late").json()["profile"]["region"] == "FR"
    # An unversioned event (a producer writing the stream directly) applies in stream order.
    ev.publish(stores.redis, stores.keys, [ev.user_event(User(user_id="late", region="DE"))])
    worker.drain()
    assert client.get("/v1/users/late").json()["profile"]["region"] == "DE"


def test_safety_minor_and_cache(client: TestClient, worker: Any) -> None:
    load_catalogue(client, worker)
    client.put("/v1/users/kid", json={"birth_year": 2016})
    client.post(
        "/v1/interactions", json={"user_id": "adult", "item_id": "horror-1", "type": "purchase"}
    )
    client.post("/v1/interactions", json={"user_id": "kid", "item_id": "space-1", "type": "like"})
    worker.drain()
    for _ in range(2):  # second call comes from the cache and must be as safe
        ids = rec_ids(client, user_id="kid", surface="homepage", limit=20)
        assert "horror-1" not in ids and ids
    r = client.get("/v1/recommendations", params={"user_id": "kid", "limit": 20})
    assert r.json()["cached"] is True
    # Popularity path for an unknown user (unknown age -> capped maturity).
    assert "horror-1" not in rec_ids(client, user_id="stranger", limit=20)


def test_related_surface(client: TestClient, worker: Any) -> None:
    load_catalogue(client, worker)
    ids = rec_ids(client, user_id="ann", surface="related", item_id="cook-1", limit=3)
    assert "cook-1" not in ids
    assert all(i.startswith("cook-") for i in ids), ids
    body = client.get(
        "/v1/recommendations",
        params={"user_id": "ann", "surface": "related", "item_id": "cook-1", "limit": 1},
    ).json()
    assert body["items"][0]["sources"] == ["similar_item"]
    assert body["items"][0]["reasons"] == ["similar to Perfect sourdough bread"]
    r = client.get(
        "/v1/recommendations", params={"user_id": "ann", "surface": "related", "item_id": "nope"}
    )
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"]["redis"] == "ok"
    cache = r.json()["checks"]["item_cache"]
    assert cache["items"] >= 0 and cache["max_items"] > 0 and isinstance(cache["warm"], bool)
    # Readiness never counts the catalogue (a scan on Milvus Lite): it shows /metrics' count.
    assert client.get("/metrics").status_code == 200
    counted = client.get("/readyz").json()["checks"]["items"]
    assert isinstance(counted, int) and counted == client.app.state.vantage.items.count()
    assert client.get("/openapi.json").status_code == 200


def test_cached_list_drops_items_deleted_since(client: TestClient, worker: Any) -> None:
    load_catalogue(client, worker)
    client.post("/v1/interactions", json={"user_id": "cy", "item_id": "space-1", "type": "like"})
    worker.drain()
    first = client.get("/v1/recommendations", params={"user_id": "cy", "limit": 3}).json()
    victim = first["items"][0]["item_id"]
    assert client.delete(f"/v1/items/{victim}").status_code == 202
    again = client.get("/v1/recommendations", params={"user_id": "cy", "limit": 3}).json()
    assert again["cached"] is True
    assert victim not in [i["item_id"] for i in again["items"]]
    assert again["recommendation_id"] != first["recommendation_id"]


def test_popularity_fallback_survives_a_flood_of_unknown_ids(
    client: TestClient, worker: Any
) -> None:
    load_catalogue(client, worker)
    client.post("/v1/interactions", json={"user_id": "real", "item_id": "cook-1", "type": "like"})
    # 600 fake ids outrank the one real item (a buggy client or a poisoning attempt).
    fake = [{"user_id": f"bot{n}", "item_id": f"fake-{n}", "type": "purchase"} for n in range(600)]
    client.post("/v1/interactions", json=fake[:300])
    client.post("/v1/interactions", json=fake[300:])
    worker.drain()
    ids = [
        i["item_id"]
        for i in client.get(
            "/v1/recommendations", params={"user_id": "newcomer", "limit": 5}
        ).json()["items"]
    ]
    assert ids == ["cook-1"]


def test_details_add_current_titles_and_categories(client: TestClient, worker: Any) -> None:
    load_catalogue(client, worker)
    params = {"user_id": "ann", "surface": "related", "item_id": "cook-1", "limit": 3}
    plain = client.get("/v1/recommendations", params=params).json()
    assert all(it["title"] is None and it["category"] is None for it in plain["items"])
    rich = client.get("/v1/recommendations", params={**params, "details": "true"}).json()
    assert [it["item_id"] for it in rich["items"]] == [it["item_id"] for it in plain["items"]]
    for it in rich["items"]:
        assert it["title"] == CATALOGUE[it["item_id"]]["title"] and it["category"] == "cooking"
    again = client.get("/v1/recommendations", params=params).json()
    assert all(it["title"] is None for it in again["items"])  # nothing of it was cached
    # An edited title shows at once (the item change log invalidates the process's cache).
    first = rich["items"][0]["item_id"]
    body = {**CATALOGUE[first], "title": "Renamed loaf"}
    assert client.put(f"/v1/items/{first}", json=body).status_code == 202
    worker.drain()
    renamed = client.get("/v1/recommendations", params={**params, "details": "true"}).json()
    titles = {it["item_id"]: it["title"] for it in renamed["items"]}
    assert titles.get(first, "Renamed loaf") == "Renamed loaf"
