"""Search by meaning over the catalogue: the real text model, real Milvus."""

from __future__ import annotations

from fastapi.testclient import TestClient

from indexing.worker import Worker
from tests.integration.conftest import CATALOGUE

URL = "/v1/search/items"


def test_items_are_found_by_meaning_filtered_and_deleted_ones_left_out(
    client: TestClient, worker: Worker
) -> None:
    body = {"items": [{"item_id": i, **b} for i, b in CATALOGUE.items()]}
    assert client.post("/v1/items/batch", json=body).status_code == 202
    worker.drain()

    res = client.get(URL, params={"q": "planets, moons and galaxies", "limit": 3})
    assert res.status_code == 200, res.text
    found = res.json()
    assert found["model"] == client.app.state.vantage.settings.models.text_model  # type: ignore[attr-defined]
    ids = [h["item_id"] for h in found["items"]]
    assert len(ids) == 3 and {h["categories"][0] for h in found["items"]} == {"space"}, ids
    scores = [h["score"] for h in found["items"]]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= 1
    top = found["items"][0]
    assert top["title"] == CATALOGUE[top["item_id"]]["title"] and top["status"] == "active"

    cooking = client.get(URL, params={"q": "planets", "category": "cooking"}).json()["items"]
    assert cooking and {h["categories"][0] for h in cooking} == {"cooking"}

    # Hidden items are found (the content team looks for them), with their status.
    hidden = CATALOGUE["hidden-1"]
    hits = client.get(URL, params={"q": hidden["title"], "limit": 1}).json()["items"]
    assert hits[0]["item_id"] == "hidden-1" and hits[0]["status"] == "hidden"

    assert client.delete(f"/v1/items/{ids[0]}").status_code == 202  # tombstoned at once
    again = client.get(URL, params={"q": "planets, moons and galaxies", "limit": 3}).json()
    assert ids[0] not in [h["item_id"] for h in again["items"]]

    for bad, says in [({"q": ""}, "q"), ({"q": "x", "limit": 101}, "limit"), ({}, "q")]:
        res = client.get(URL, params=bad)
        assert res.status_code == 422 and says in res.json()["error"]["message"], res.text
