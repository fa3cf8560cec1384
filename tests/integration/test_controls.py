"""Users' own controls through the API and the Python client, on real servers: not
interested (item, category, creator), pause history, reset history, lists without profiling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from core import events as ev
from core.settings import Settings
from core.stores.eventlog import EventLog
from serving.nonprofiling import SOURCES
from tests.integration.test_surfaces import app_client, recs, setup
from training.interaction import history_resets, logged_interactions


def _ids(body: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def _history(c: TestClient, user: str) -> list[str]:
    got = c.get(f"/v1/users/{user}", params={"recent": 50}).json()
    return [h["item_id"] for h in got["recent"]]


def test_not_interested_leaves_every_list_until_taken_back(settings: Settings, worker: Any) -> None:
    with app_client(settings) as c:
        setup(c, worker)
        assert any(i.startswith("space-") for i in _ids(recs(c, user_id="fan")))
        url = "/v1/users/fan/not-interested"
        assert c.post(url, json={"kind": "category", "value": "space"}).status_code == 201
        assert c.post(url, json={"kind": "category", "value": "space"}).status_code == 200
        assert c.post(url, json={"kind": "creator", "value": "cooking-maker-0"}).status_code == 201
        assert c.post(url, json={"kind": "item", "value": "garden-1"}).status_code == 201
        # A pin of an unwanted item gives way too.
        pin = {"action": "pin", "item_id": "space-3", "position": 1}
        assert c.put("/v1/admin/rules/pin-space", json=pin).status_code == 201
        for surface, extra in (("homepage", {}), ("related", {"item_id": "football-0"})):
            body = recs(c, user_id="fan", surface=surface, **extra)
            assert body["items"], body
            for item in _ids(body):
                assert not item.startswith("space-") and item != "garden-1", (surface, item)
                assert item not in {f"cooking-{k}" for k in range(0, 8, 2)}, (surface, item)
        listed = c.get("/v1/users/fan/controls").json()
        kinds = {(e["kind"], e["value"]) for e in listed["not_interested"]}
        assert kinds == {
            ("category", "space"),
            ("creator", "cooking-maker-0"),
            ("item", "garden-1"),
        }
        why = "/v1/recommendations/why-not"
        for item, said in (("space-3", "its category"), ("garden-1", "not interested in it")):
            got = c.get(why, params={"user_id": "fan", "item_id": item}).json()
            assert got["stage"] == "hard_filter" and said in got["detail"], got
        assert c.delete(f"{url}/category/space").status_code == 204
        assert c.delete(f"{url}/category/space").status_code == 404
        assert "space-3" in _ids(recs(c, user_id="fan"))  # the pin is back, at once
        bad = c.post(url, json={"kind": "mood", "value": "x"})
        assert bad.status_code == 422


def test_paused_history_counts_for_popularity_not_the_profile(
    settings: Settings, worker: Any
) -> None:
    with app_client(settings) as c:
        setup(c, worker)
        state = c.app.state.vantage  # type: ignore[attr-defined]
        before = _history(c, "cook")
        assert c.patch("/v1/users/cook/controls", json={"paused": True}).json()["paused"] is True
        pop = state.redis.zscore(state.keys.popularity, "garden-2") or 0
        assert (
            c.post(
                "/v1/interactions",
                json=[{"user_id": "cook", "item_id": "garden-2", "type": "like"}],
            ).status_code
            == 202
        )
        worker.drain()
        assert _history(c, "cook") == before  # the profile did not move
        assert (state.redis.zscore(state.keys.popularity, "garden-2") or 0) > pop  # counted
        dislike = {"user_id": "cook", "item_id": "cooking-5", "type": "dislike"}
        assert c.post("/v1/interactions", json=[dislike]).status_code == 202
        worker.drain()  # an explicit dislike is a control, kept even while paused
        assert state.redis.zscore(state.keys.negatives("cook"), "cooking-5") is not None
        assert _history(c, "cook") == before
        assert c.patch("/v1/users/cook/controls", json={"paused": False}).json()["paused"] is False
        assert (
            c.post(
                "/v1/interactions",
                json=[{"user_id": "cook", "item_id": "garden-3", "type": "like"}],
            ).status_code
            == 202
        )
        worker.drain()
        assert _history(c, "cook")[0] == "garden-3"


def test_reset_starts_the_profile_from_scratch_and_keeps_the_rest(
    settings: Settings, worker: Any, tmp_path: Path
) -> None:
    with app_client(settings) as c:
        setup(c, worker)
        state = c.app.state.vantage  # type: ignore[attr-defined]
        c.post("/v1/users/fan/not-interested", json={"kind": "item", "value": "garden-1"})
        assert _history(c, "fan")
        assert c.post("/v1/users/fan/history/reset").status_code == 202
        worker.drain()
        assert _history(c, "fan") == []
        assert state.redis.hget(state.keys.user("fan"), "cvec") is None
        assert c.get("/v1/users/fan").json()["profile"]["birth_year"] == 1980  # kept
        assert c.get("/v1/users/fan/controls").json()["not_interested"][0]["value"] == "garden-1"
        assert recs(c, user_id="fan")["items"]  # a cold user again, still served
        # Training leaves out what the user did before the reset (the durable log keeps it).
        at = history_resets(worker.stores)["fan"]
        log = EventLog(tmp_path / "events", "w")
        line = {"type": ev.INTERACTION_LOGGED, "data": {"user_id": "fan", "item_id": "x"}}
        log.append([{**line, "id": "1-1", "t": at - 5}, {**line, "id": "2-1", "t": at + 5}])
        log.append([{**line, "id": "3-1", "t": at - 5, "data": {"user_id": "cook"}}])
        kept = logged_interactions(tmp_path / "events", history_resets(worker.stores))
        assert [r["user_id"] for r in kept].count("fan") == 1 and len(kept) == 2


def test_lists_without_profiling(settings: Settings, worker: Any) -> None:
    with app_client(settings) as c:
        setup(c, worker)
        personal = recs(c, user_id="fan")
        assert personal["profiling"] is True
        plain = recs(c, user_id="fan", profiling="false")
        assert plain["profiling"] is False and plain["items"]
        for item in plain["items"]:
            assert set(item["sources"]) <= SOURCES | {"pinned"}, item
        # Safety is not personalisation: a child still never gets the adult (most popular) item.
        kid = recs(c, user_id="kid", profiling="false")
        assert kid["profiling"] is False and "adult-space" not in _ids(kid)
        # The user's own switch: every list of theirs, cached apart from the personal ones.
        assert c.patch("/v1/users/fan/controls", json={"profiling": False}).status_code == 200
        again = recs(c, user_id="fan")
        assert again["profiling"] is False and _ids(again) == _ids(plain)
        # "Why not" asks about the list the user gets: without profiling, what they liked is
        # not excluded as seen (nothing personal is read).
        why, seen = "/v1/recommendations/why-not", {"user_id": "fan", "item_id": "space-0"}
        for asked in ({}, {"profiling": "false"}):
            got = c.get(why, params={**seen, **asked}).json()
            assert got["profiling"] is False and got["stage"] != "hard_filter", got
        c.patch("/v1/users/fan/controls", json={"profiling": True})
        got = c.get(why, params=seen).json()
        assert got["profiling"] is True and "already seen" in got["detail"], got
        assert c.get(why, params={**seen, "profiling": "false"}).json()["profiling"] is False
        assert recs(c, user_id="fan")["profiling"] is True


def test_the_client_sets_controls(settings: Settings, worker: Any) -> None:
    from vantage_client import VantageClient

    with app_client(settings) as c:
        setup(c, worker)
        vantage = VantageClient(http=c)
        got = vantage.add_not_interested("fan", {"kind": "category", "value": "space"})
        assert [e.value for e in got.not_interested] == ["space"]
        assert all(not i.item_id.startswith("space-") for i in vantage.recommend("fan").items)
        assert vantage.patch_controls("fan", {"profiling": False}).profiling is False
        assert vantage.recommend("fan").profiling is False
        vantage.remove_not_interested("fan", "category", "space")
        assert vantage.get_controls("fan").not_interested == []
