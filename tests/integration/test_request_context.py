"""Request context (device, a region override, local hour: targeting, availability, kept with
the impression) and precomputed answers (`GET /v1/recommendations/cached`), on real servers."""

from __future__ import annotations

from typing import Any

from core.served_list import ServedList
from core.settings import Settings
from core.surfaces import VariantSpec
from tests.integration.test_surfaces import app_client, recs, setup


def _ids(body: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def test_region_override_device_targeting_and_the_impression(
    settings: Settings, worker: Any
) -> None:
    home = settings.surfaces["homepage"]
    target = {"devices": ["mobile"], "hours": [20, 6]}
    variant = VariantSpec(share=1.0, target=target, overrides={"policy": {"mmr_lambda": 0.5}})
    home = home.model_copy(update={"variants": {"evening_mobile": variant}})
    home = type(home).model_validate(home.model_dump())  # resolve the variant
    s = settings.model_copy(update={"surfaces": {**settings.surfaces, "homepage": home}})
    with app_client(s) as c:
        setup(c, worker)
        item = {
            "item_id": "us-only",
            "title": "Space rights",
            "categories": ["space"],
            "regions": ["US"],
        }
        assert c.post("/v1/items/batch", json={"items": [item]}).status_code == 202
        buys = [{"user_id": f"b{n}", "item_id": "us-only", "type": "purchase"} for n in range(12)]
        assert c.post("/v1/interactions", json=buys).status_code == 202
        worker.drain()
        # A user without a region sees only what is available everywhere; travelling in the
        # US, the US-only item too.
        assert "us-only" not in _ids(recs(c, user_id="walker", limit=20))
        assert "us-only" in _ids(recs(c, user_id="walker", limit=20, region="us"))
        assert (
            recs(c, user_id="walker", device="mobile", local_hour=22)["variant"] == "evening_mobile"
        )
        assert recs(c, user_id="walker", device="mobile", local_hour=12)["variant"] == "default"
        assert recs(c, user_id="walker", device="web", local_hour=22)["variant"] == "default"
        assert recs(c, user_id="walker")["variant"] == "default"
        bad = c.get("/v1/recommendations", params={"user_id": "w", "device": "fridge"})
        assert bad.status_code == 422
        assert (
            c.get("/v1/recommendations", params={"user_id": "w", "local_hour": 24}).status_code
            == 422
        )
        state = c.app.state.vantage  # type: ignore[attr-defined]
        state.impressions.flush()
        asked = []
        for shard in range(16):
            for _, f in state.redis.xrange(state.keys.impressions(shard)):
                rec = ServedList.from_json(f[b"data"])
                if rec.user == "walker" and rec.query and "device" in rec.query:
                    asked.append(rec.query)
        assert {"limit": 10, "device": "mobile", "local_hour": 22} in asked, asked


def test_cached_answers_without_computing(settings: Settings, stores: Any, worker: Any) -> None:
    from indexing.refresh import CandidateRefresher

    s = settings.model_copy(
        update={
            "candidates": settings.candidates.model_copy(
                update={"enabled": True, "refresh_interval_s": 0}
            )
        }
    )
    with app_client(s) as c:
        setup(c, worker)
        url = "/v1/recommendations/cached"
        served = recs(c, user_id="fan", limit=5)  # also queues the user's candidate set
        assert CandidateRefresher(stores, s).refresh_once() >= 1  # as the workers keep it
        got = c.get(url, params={"user_id": "fan", "limit": 5})
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["source"] == "result_cache" and body["cached"] is True
        assert _ids(body) == _ids(served) and body["generated_at"] == served["generated_at"]
        # Nothing cached for this shape: the worker's candidate set answers, unranked.
        other = c.get(url, params={"user_id": "fan", "limit": 7})
        assert other.status_code == 200, other.text
        assert other.json()["source"] == "candidate_set", other.json()
        assert other.json()["items"] and other.json()["cached"] is True
        assert not set(_ids(other.json())) & {"space-0", "space-1"}  # seen: excluded
        none = c.get(url, params={"user_id": "nobody-yet"})
        assert (
            none.status_code == 404 and "GET /v1/recommendations" in none.json()["error"]["message"]
        )
