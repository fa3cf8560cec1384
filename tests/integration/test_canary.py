"""The ranker canary end to end on real servers: started over the API, served to a share of
users as variant `canary` with its own ranker, judged on the counts of its traffic, rolled
back when worse and promoted (made current) when not worse."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from app.services import canary as canary_service
from core.served_list import hour_of
from core.settings import Settings
from serving.features import FEATURE_NAMES
from tests.integration.test_surfaces import app_client, setup

URL = "/v1/admin/models/ranker/canary"


def _ranker(registry: Any, version: str, *, publish: bool, seed: int) -> None:
    """A small real XGBoost ranker over the serving features, saved (and published)."""
    import xgboost as xgb

    from core.stores.registry import save_ranker

    rng = np.random.default_rng(seed)
    x = rng.random((200, len(FEATURE_NAMES)))
    dm = xgb.DMatrix(x, label=(x[:, 0] > 0.5).astype(int))
    dm.set_group([20] * 10)
    booster = xgb.train({"objective": "rank:ndcg"}, dm, 3)
    save_ranker(registry.ranker_dir(version), booster, FEATURE_NAMES, {"val_ndcg10_ranker": 0.3})
    if publish:
        registry.publish("ranker", version, {"published": True})


def _count(state: Any, variant: str, imps: int, clicks: int) -> None:
    """Counts for the homepage's `variant` in this hour, as the impression log and the
    attribution script would keep them."""
    key = state.keys.surface_stats_hour(0, hour_of(time.time()))
    for field, n in (("imp", imps), ("click", clicks), ("list", imps // 10)):
        state.redis.hincrby(key, f"{field}|homepage|*|{variant}", n)
    state.redis.hincrby(key, f"lat|homepage|50|{variant}", imps // 10)
    state.redis.expire(key, 3600)


def test_a_worse_canary_is_rolled_back_and_a_better_one_promoted(
    settings: Settings, worker: Any
) -> None:
    with app_client(settings) as c:
        setup(c, worker)
        state = c.app.state.vantage  # type: ignore[attr-defined]
        _ranker(state.models, "v1-live", publish=True, seed=1)
        _ranker(state.models, "v2-worse", publish=False, seed=2)
        assert c.get(URL).json() == {"canary": None, "log": [], "now": None}

        res = c.post(URL, json={"version": "v2-worse", "share": 0.5, "margin": 0.002})
        assert res.status_code == 201, res.text
        assert res.json()["baseline"] == "v1-live" and res.json()["state"] == "running"
        assert c.post(URL, json={"version": "v2-worse"}).status_code == 409  # one at a time
        time.sleep(1.1)  # serving reads the canary at most once a second
        variants = {}
        for n in range(24):
            body = c.get("/v1/recommendations", params={"user_id": f"cu-{n}", "limit": 5}).json()
            variants[f"cu-{n}"] = body["variant"]
            assert not body["degraded"], body  # the canary's ranker really scores
        assert set(variants.values()) == {"default", "canary-v2-worse"}, variants

        _count(state, "default", 200_000, 10_000)
        _count(state, "canary-v2-worse", 200_000, 8_000)
        now = c.get(URL).json()["now"]
        assert now["decision"] == "rollback" and now["ctr_diff_high"] < 0, now
        assert canary_service.judge(state) == "rollback"
        got = c.get(URL).json()
        assert got["canary"]["state"] == "rolled_back" and got["now"] is None
        assert [e["event"] for e in got["log"]] == ["rolled_back", "started"]
        assert state.models.current("ranker") == "v1-live"
        time.sleep(1.1)
        again = {
            u: c.get("/v1/recommendations", params={"user_id": u, "limit": 5}).json()["variant"]
            for u in variants
        }
        assert set(again.values()) == {"default"}

        _ranker(state.models, "v3-better", publish=False, seed=3)
        assert c.post(URL, json={"version": "v3-better", "share": 0.5}).status_code == 201
        time.sleep(1.1)
        for u in variants:  # real lists of its own arm: v2's counts are kept apart
            c.get("/v1/recommendations", params={"user_id": u, "limit": 5})
        state.impressions.flush()
        _count(state, "canary-v3-better", 200_000, 11_000)
        assert canary_service.judge(state) == "promote", canary_service.status(state)["log"][0]
        assert state.models.current("ranker") == "v3-better"
        listed = c.get("/v1/admin/models").json()["ranker"]
        promoted = next(v for v in listed["versions"] if v["version"] == "v3-better")
        assert promoted["published"] is True and "not worse" in promoted["canary"]
        assert c.post(f"{URL}/stop").status_code == 404  # nothing runs now
        assert c.post(URL, json={"version": "nope"}).status_code == 404
        assert c.post(URL, json={"version": "v3-better"}).status_code == 409  # current already


def test_a_ranker_that_passes_the_gate_starts_a_canary_instead_of_publishing(
    stores: Any,
) -> None:
    import xgboost as xgb

    from core.stores.canary import CanaryStore
    from training.ranker.gate import gate_and_publish
    from training.ranker.params import RankerParams
    from training.ranker.report import RankerReport

    registry = stores.registry
    _ranker(registry, "v1-live", publish=True, seed=1)
    rng = np.random.default_rng(4)
    x = rng.random((100, len(FEATURE_NAMES)))
    model = xgb.XGBRanker(n_estimators=3).fit(x, (x[:, 1] > 0.5).astype(int), group=[10] * 10)
    passed = RankerReport(None, val_ndcg10_ranker=0.4, val_ndcg10_fallback=0.3, val_t=5.0)
    params = RankerParams(canary_share=0.2, canary_margin=0.001)
    gate_and_publish(registry, model, passed, params, False, False)
    assert passed.published is False and "canary" in passed.reason
    running = CanaryStore(registry.r, registry.keys).running()
    assert running is not None and running.version == passed.version
    assert (running.share, running.margin, running.baseline) == (0.2, 0.001, "v1-live")
    assert registry.current("ranker") == "v1-live"  # not published: serving a share first
    # A second one passing meanwhile waits, saved, while the first canary runs.
    second = RankerReport(None, val_ndcg10_ranker=0.4, val_ndcg10_fallback=0.3, val_t=5.0)
    gate_and_publish(registry, model, second, params, False, False)
    assert "not a canary" in second.reason and registry.current("ranker") == "v1-live"
