"""Paging a recommendation list: `pages=N` then `cursor=next_cursor`, through the API and the
Python client, on real servers."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from core.settings import Settings
from tests.integration.test_surfaces import app_client, setup


def _page(c: TestClient, **params: Any) -> Any:
    r = c.get("/v1/recommendations", params={"user_id": "fan", **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_pages_share_one_list_and_survive_events(settings: Settings, worker: Any) -> None:
    with app_client(settings) as c:
        setup(c, worker)
        first = _page(c, limit=4, pages=3)
        assert len(first["items"]) == 4 and first["next_cursor"]
        assert [i["position"] for i in first["items"]] == [1, 2, 3, 4]
        # An event arrives while the user pages: the pages are still the list's.
        event = {"user_id": "fan", "item_id": first["items"][0]["item_id"], "type": "click"}
        assert c.post("/v1/interactions", json=[event]).status_code == 202
        worker.drain()
        second = _page(c, cursor=first["next_cursor"])
        third = _page(c, cursor=second["next_cursor"])
        assert (
            second["recommendation_id"] == third["recommendation_id"] == first["recommendation_id"]
        )
        assert [i["position"] for i in second["items"]] == [5, 6, 7, 8]
        shown = [i["item_id"] for p in (first, second, third) for i in p["items"]]
        assert len(shown) == len(set(shown)) == 12  # no item twice
        assert third["next_cursor"] is None  # built for three pages
        assert _page(c, cursor=second["next_cursor"]) == third  # a page asked again is the same

        # Clicks on page 2 are attributed to the list (impressions logged per page).
        c.app.state.vantage.impressions.flush()  # type: ignore[attr-defined]
        rec = first["recommendation_id"]
        clicked = {"user_id": "fan", "item_id": second["items"][1]["item_id"], "type": "click"}
        assert (
            c.post("/v1/interactions", json=[{**clicked, "recommendation_id": rec}]).status_code
            == 202
        )
        worker.drain()
        state = c.app.state.vantage  # type: ignore[attr-defined]
        info = state.redis.hgetall(state.keys.rec_info(rec))
        assert f"~clicked:{clicked['item_id']}".encode() in info
        assert len([k for k in info if not k.startswith(b"~")]) == 12  # every page's items

        # An item deleted since the list was built is left out of its page.
        nxt = _page(c, user_id="cook", limit=3, pages=2)["next_cursor"]
        before = c.get("/v1/recommendations", params={"user_id": "cook", "cursor": nxt}).json()
        gone = before["items"][0]["item_id"]
        assert c.delete(f"/v1/items/{gone}").status_code == 202
        worker.drain()
        time.sleep(0.1)
        after = c.get("/v1/recommendations", params={"user_id": "cook", "cursor": nxt}).json()
        assert [i["item_id"] for i in after["items"]] == [i["item_id"] for i in before["items"][1:]]
        # And an item the user says they are not interested in, after the list was built.
        unwanted = {"kind": "item", "value": after["items"][0]["item_id"]}
        assert c.post("/v1/users/cook/not-interested", json=unwanted).status_code == 201
        last = c.get("/v1/recommendations", params={"user_id": "cook", "cursor": nxt}).json()
        assert unwanted["value"] not in [i["item_id"] for i in last["items"]]


def test_cursors_are_checked(settings: Settings, worker: Any) -> None:
    with app_client(settings) as c:
        setup(c, worker)
        first = _page(c, limit=5, pages=2)
        cur = first["next_cursor"]
        other = c.get("/v1/recommendations", params={"user_id": "cook", "cursor": cur})
        assert other.status_code == 422 and "another user" in other.json()["error"]["message"]
        bad = c.get("/v1/recommendations", params={"user_id": "fan", "cursor": "bm90LWEtY3Vyc29y"})
        assert bad.status_code == 422 and "next_cursor" in bad.json()["error"]["message"]
        big = c.get("/v1/recommendations", params={"user_id": "fan", "limit": 60, "pages": 2})
        assert big.status_code == 422 and "limit x pages" in big.json()["error"]["message"]
        assert _page(c, limit=5)["next_cursor"] is None  # not built for paging
        state = c.app.state.vantage  # type: ignore[attr-defined]
        state.redis.delete(state.keys.pages(first["recommendation_id"]))
        gone = c.get("/v1/recommendations", params={"user_id": "fan", "cursor": cur})
        assert gone.status_code == 404 and "expired" in gone.json()["error"]["message"]


def test_the_client_pages(settings: Settings, worker: Any) -> None:
    from vantage_client import VantageClient

    with app_client(settings) as c:
        setup(c, worker)
        vantage = VantageClient(http=c)
        page = vantage.recommend("fan", limit=3, pages=2)
        nxt = vantage.recommend("fan", cursor=page.next_cursor)
        assert nxt.recommendation_id == page.recommendation_id and nxt.next_cursor is None
        assert not {i.item_id for i in page.items} & {i.item_id for i in nxt.items}
