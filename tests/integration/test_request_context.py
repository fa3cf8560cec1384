"""Request context (device, a region override, local hour: targeting, availability, kept with
the impression) and precomputed answers (`GET /v1/recommendations/cached`), on real servers."""

from __future__ import annotations

import time
from typing import Any

from core.served_list import ServedList
from core.settings import Settings
from core.surfaces import VariantSpec
from serving.request import RecRequest
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


def _publish(registry: Any, version: str, x: Any, label: Any, names: tuple[str, ...]) -> None:
    """A real XGBoost pairwise ranker over `names`, trained on groups of 20 rows, published."""
    import xgboost as xgb

    from core.stores.registry import save_ranker

    group = 20
    dm = xgb.DMatrix(x, label=label, feature_names=list(names))
    dm.set_group([group] * (len(x) // group))
    booster = xgb.train({"objective": "rank:pairwise", "max_depth": 3}, dm, 30)
    save_ranker(registry.ranker_dir(version), booster, names, {"simulated": 1.0})
    registry.publish("ranker", version, {"published": True})


def _ranker_scores(
    settings: Settings, user: str, version: str, contexts: dict[Any, dict[str, Any]]
) -> dict[Any, dict[str, float]]:
    """The published ranker's scores of the user's homepage candidates, item by item, for
    each request context (UserContext fields), computed as serving computes them."""
    from dataclasses import replace

    from serving.features import build_features
    from serving.ranking import columns, predict
    from serving.stages import retrieve
    from serving.state import build_state

    state = build_state(settings)
    try:
        model = state.models.ranker()
        assert model is not None and model.version == version
        ctx = state.users.context(user, recent_n=500)
        req = RecRequest(user_id=user, surface="homepage", limit=10)
        cands = retrieve(state, req, ctx).candidates
        assert len(cands) >= 10
        ids = [c.item_id for c in cands]
        out = {}
        for key, fields in contexts.items():
            x = build_features(state, replace(ctx, **fields), cands)
            out[key] = dict(zip(ids, predict(model, columns(model, x)).tolist(), strict=True))
        return out
    finally:
        state.close()


def test_the_local_hour_is_a_ranker_feature(settings: Settings, worker: Any, stores: Any) -> None:
    import numpy as np

    with app_client(settings) as c:
        setup(c, worker)
        # Over two serving features only (an older feature set than serving computes): at
        # midnight it prefers what retrieval put last, at noon what it put first.
        rng = np.random.default_rng(0)
        x = np.column_stack([rng.integers(0, 40, 4000), rng.uniform(-1, 1, 4000)])
        util = x[:, 0] * x[:, 1]
        label = np.zeros(len(x))
        for g in range(0, len(x), 20):
            u = util[g : g + 20]
            label[g : g + 20] = np.searchsorted(np.quantile(u, [0.25, 0.5, 0.75]), u)
        _publish(stores.registry, "hour-v1", x, label, ("retrieval_rank", "hour_cos"))
        by_hour = _ranker_scores(
            settings, "fan", "hour-v1", {h: {"local_hour": h} for h in (0, 12)}
        )
        tops = {h: max(s, key=s.__getitem__) for h, s in by_hour.items()}
        assert tops[0] != tops[12]  # the hour turns the order around
        for hour, scores in by_hour.items():
            served = recs(c, user_id="fan", local_hour=hour)["items"]  # cached per hour
            assert served and all(i["score"] == round(scores[i["item_id"]], 6) for i in served)
        # Without a local hour the column is missing (NaN): still a ranked list.
        assert recs(c, user_id="fan")["items"][0]["score"] is not None


def test_the_device_is_a_ranker_feature(settings: Settings, worker: Any, stores: Any) -> None:
    import numpy as np

    with app_client(settings) as c:
        setup(c, worker)
        # Cooking on the television, space on the phone, then space-2 again on the television.
        events = [
            *({"item_id": f"cooking-{k}", "device": "tv"} for k in (0, 1, 2)),
            *({"item_id": f"space-{k}", "device": "mobile"} for k in (0, 1, 2)),
            {"item_id": "space-2", "device": "tv"},
        ]
        body = [
            {"user_id": "couch", "type": "like", "timestamp": time.time() - 7200 + n, **e}
            for n, e in enumerate(events)
        ]
        body[-1]["timestamp"] = time.time() - 3600  # a newer use of space-2, on the tv
        # An older use of cooking-0 on the web, delivered late, leaves the newest one's device.
        body.append({"user_id": "couch", "item_id": "cooking-0", "type": "view"})
        body[-1] |= {"device": "web", "timestamp": time.time() - 9000}
        # A later event that names no device (a server-side purchase) leaves it too.
        body.append({"user_id": "couch", "item_id": "space-0", "type": "purchase"})
        assert c.post("/v1/interactions", json=body).status_code == 202
        bad = c.post("/v1/interactions", json={**body[0], "device": "fridge"})
        assert bad.status_code == 422 and "device" in bad.text
        worker.drain()
        shown = c.get("/v1/users/couch", params={"recent": 50}).json()["recent"]
        assert {h["item_id"]: h["device"] for h in shown}["cooking-0"] == "tv"
        # A ranker over one feature: the user's share of the candidate's category among
        # what they took on the request's device (higher is better).
        share = np.random.default_rng(1).uniform(0, 1, (2000, 1))
        label = (share[:, 0] * 4).astype(int).astype(float)
        _publish(stores.registry, "device-v1", share, label, ("device_category_share",))
        on = _stores_devices(settings, "couch")
        assert on == {
            "cooking-0": "tv",
            "cooking-1": "tv",
            "cooking-2": "tv",
            "space-0": "mobile",
            "space-1": "mobile",
            "space-2": "tv",  # its newest use named the television
        }
        by_device = _ranker_scores(
            settings, "couch", "device-v1", {d: {"device": d} for d in ("tv", "mobile")}
        )
        for device, topic in (("tv", "cooking"), ("mobile", "space")):
            scores = by_device[device]
            assert max(scores, key=scores.__getitem__).startswith(topic)
            served = recs(c, user_id="couch", device=device)["items"]  # cached per device
            assert served[0]["item_id"].startswith(topic), (device, served)
            assert all(i["score"] == round(scores[i["item_id"]], 6) for i in served)


def _stores_devices(settings: Settings, user: str) -> dict[str, str]:
    from serving.state import build_state

    state = build_state(settings)
    try:
        return dict(state.users.history(user, recent_n=10, devices=True).devices)
    finally:
        state.close()
