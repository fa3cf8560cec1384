"""Admin API: dead letters (list, page, replay exactly once, discard), queue, jobs, trending."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.testclient import TestClient

from core import events as ev
from core.domain import Interaction, Item, User
from indexing.worker import Worker


def _pop(stores: Any, item: str) -> float:
    return float(stores.redis.zscore(stores.keys.popularity, item) or 0.0)


def test_dead_letters_are_listed_paged_and_discarded(
    client: TestClient, stores: Any, worker: Worker
) -> None:
    worker.ensure_group()
    for n in range(3):
        stores.redis.xadd(stores.keys.stream(0), {"type": "nonsense", "data": f"{n}", "t": "1"})
    ev.publish(
        stores.redis,
        stores.keys,
        [ev.interaction_event(Interaction(user_id="u", item_id="ok", type="like"))],
    )
    worker.drain()
    assert _pop(stores, "ok") > 0  # the poison did not block the stream

    page = client.get("/v1/admin/dead-letters", params={"limit": 2}).json()
    assert page["total"] == 3 and len(page["items"]) == 2 and page["next"]
    assert "unknown type" in page["items"][0]["error"]
    rest = client.get("/v1/admin/dead-letters", params={"after": page["next"]}).json()
    assert len(rest["items"]) == 1 and rest["next"] is None

    gone = rest["items"][0]["id"]
    assert client.delete(f"/v1/admin/dead-letters/{gone}").status_code == 204
    assert client.delete(f"/v1/admin/dead-letters/{gone}").status_code == 404
    assert client.get("/v1/admin/dead-letters").json()["total"] == 2

    bad = client.get("/v1/admin/dead-letters", params={"after": "yesterday"})
    assert bad.status_code == 422 and "after" in bad.json()["error"]["message"]


def test_replayed_dead_letter_applies_exactly_once(
    client: TestClient, stores: Any, worker: Worker
) -> None:
    """A dead-lettered event that was in fact applied is not counted again on replay."""
    worker.ensure_group()
    (eid,) = ev.publish(
        stores.redis,
        stores.keys,
        [ev.interaction_event(Interaction(user_id="u", item_id="twice", type="purchase"))],
    )
    entry = stores.redis.xrange(stores.keys.stream(0), eid, eid)[0]
    worker.drain()
    applied = _pop(stores, "twice")
    assert applied > 0
    # The same event also ended in the dead-letter stream (e.g. it failed after its effects
    # were stored, then exhausted its deliveries): replaying it must change nothing.
    worker._dead_letter(worker.partition(0), entry, "simulated: failed 6 deliveries")
    # ... and one that never applied (here: a dead letter of an event not seen before).
    fresh = ev.encode(ev.INTERACTION_LOGGED, {"user_id": "u", "item_id": "late", "type": "like"})
    stores.redis.xadd(
        stores.keys.dead_letters(0), {**fresh, "original_id": "1-1", "error": "timeout"}
    )
    ids = [d["id"] for d in client.get("/v1/admin/dead-letters").json()["items"]]
    res = client.post("/v1/admin/dead-letters/replay", json={"ids": [*ids, "9-9"]})
    assert res.status_code == 200, res.text
    assert len(res.json()["replayed"]) == 2 and res.json()["missing"] == ["9-9"]
    worker.drain()
    assert _pop(stores, "twice") == applied
    assert _pop(stores, "late") > 0
    assert client.get("/v1/admin/dead-letters").json()["total"] == 0

    bad = client.post("/v1/admin/dead-letters/replay", json={"ids": ["drop table"]})
    assert bad.status_code == 422
    assert client.post("/v1/admin/dead-letters/replay", json={"ids": []}).status_code == 422


def test_queue_status_reports_pending_and_lag(client: TestClient, stores: Any) -> None:
    w = Worker(stores, consumer="q")
    w.ensure_group()
    ev.publish(
        stores.redis,
        stores.keys,
        [
            ev.interaction_event(Interaction(user_id="u", item_id=f"q{n}", type="view"))
            for n in range(5)
        ],
    )
    w._read_new(None)  # delivered (pending), 0 undelivered
    q = client.get("/v1/admin/queue").json()
    assert q["pending"] == 5 and q["lag"] == 0
    assert q["consumers"][0]["name"] == "q" and q["consumers"][0]["pending"] == 5
    ev.publish(
        stores.redis,
        stores.keys,
        [ev.interaction_event(Interaction(user_id="u", item_id="q9", type="view"))],
    )
    assert client.get("/v1/admin/queue").json()["lag"] == 1


def test_jobs_are_deduplicated_and_validated(client: TestClient) -> None:
    first = client.post("/v1/admin/reindex")
    assert first.status_code == 202
    job = first.json()
    assert job["state"] == "queued" and first.headers["location"] == job["status_url"]
    again = client.post("/v1/admin/reindex", json={})
    assert again.json()["id"] == job["id"]
    assert again.headers["x-vantage-job"] == "already-active"
    assert client.get(job["status_url"]).json()["kind"] == "reindex"
    assert [j["id"] for j in client.get("/v1/admin/jobs").json()["items"]] == [job["id"]]
    assert client.get("/v1/admin/jobs", params={"kind": "train"}).json()["items"] == []
    assert client.get("/v1/admin/jobs/" + "0" * 32).status_code == 404
    assert client.get("/v1/admin/jobs/not-a-job").status_code == 422
    bad = client.post("/v1/admin/reindex", json={"model": "../../etc/passwd"})
    assert bad.status_code == 422 and "model" in bad.json()["error"]["message"]
    assert client.post("/v1/admin/reindex", json={"batch_size": 1}).status_code == 422
    refresh = client.post("/v1/admin/models/refresh")
    assert refresh.status_code == 202 and refresh.json()["kind"] == "train"
    models = client.get("/v1/admin/models").json()
    assert set(models) == {"cf", "ranker"} and models["cf"]["versions"] == []


def test_trending_is_time_decayed_and_scoped(
    client: TestClient, stores: Any, worker: Worker
) -> None:
    now = time.time()
    ev.publish(
        stores.redis,
        stores.keys,
        [
            ev.item_event(Item(item_id="old-hit", title="Old hit", categories=["music"])),
            ev.item_event(Item(item_id="new-hit", title="New hit", categories=["music"])),
            ev.item_event(Item(item_id="film", title="Film", categories=["film"])),
            ev.user_event(User(user_id="fr-user", region="FR")),
        ],
    )
    worker.drain()
    day = 24 * 3600
    events = [
        # Ten likes three days ago weigh less than four likes now (half-life: one day).
        *[
            Interaction(user_id=f"a{n}", item_id="old-hit", type="like", timestamp=now - 3 * day)
            for n in range(10)
        ],
        *[Interaction(user_id=f"b{n}", item_id="new-hit", type="like") for n in range(4)],
        Interaction(user_id="fr-user", item_id="film", type="like"),
    ]
    ev.publish(stores.redis, stores.keys, [ev.interaction_event(e) for e in events])
    worker.drain()
    top = stores.trending.top("all", 10)
    assert [i for i, _ in top][:2] == ["new-hit", "old-hit"]
    weights = dict(top)
    like = Interaction(user_id="x", item_id="x", type="like").weight
    assert abs(weights["new-hit"] - 4 * like) < 0.01 * like
    assert abs(weights["old-hit"] - 10 * like / 8) < 0.01 * like
    assert [i for i, _ in stores.trending.top("cat:film")] == ["film"]
    assert [i for i, _ in stores.trending.top("region:FR")] == ["film"]

    r = client.get("/v1/recommendations", params={"user_id": "fr-viewer", "surface": "trending"})
    assert r.status_code == 200, r.text
    got = r.json()["items"]
    assert [i["item_id"] for i in got][:2] == ["new-hit", "old-hit"]
    assert got[0]["sources"][0] == "trending" and got[0]["reasons"][0] == "trending now"
    scoped = client.get(
        "/v1/recommendations",
        params={"user_id": "v", "surface": "trending", "category": "film"},
    ).json()["items"]
    assert scoped[0]["item_id"] == "film" and scoped[0]["reasons"][0] == "trending in film"
    assert json.loads(json.dumps(scoped))  # plain JSON all the way


def _save_ranker(registry: Any, version: str, withdrawn: str | None = None) -> None:
    """A tiny real XGBoost ranker saved and published as `version` (withdrawn, if given)."""
    import numpy as np
    import xgboost as xgb

    from core.stores.registry import save_ranker

    x = np.random.default_rng(0).random((20, 2))
    booster = xgb.train({"objective": "rank:ndcg"}, xgb.DMatrix(x, label=x[:, 0] > 0.5), 2)
    save_ranker(registry.ranker_dir(version), booster, ("a", "b"), {"val_ndcg10_ranker": 0.5})
    registry.publish("ranker", version, {"val_ndcg10_ranker": 0.5, "published": True})
    if withdrawn:
        registry.withdraw("ranker", withdrawn)


def test_an_older_ranker_is_made_current_again(client: TestClient) -> None:
    registry = client.app.state.vantage.models  # type: ignore[attr-defined]
    url = "/v1/admin/models/ranker/current"
    _save_ranker(registry, "v1-old", withdrawn="refused successor v1-mid")
    _save_ranker(registry, "v2-new")
    assert registry.current("ranker") == "v2-new"

    refused = client.put(url, json={"version": "v1-old"})
    assert refused.status_code == 409 and "force=true" in refused.json()["error"]["message"]
    res = client.put(url, json={"version": "v1-old", "force": True})
    assert res.status_code == 200, res.text
    assert res.json() == {
        "kind": "ranker",
        "current": "v1-old",
        "previous": "v2-new",
        "changed": True,
    }
    assert registry.ranker().version == "v1-old"  # what serving loads now
    listed = client.get("/v1/admin/models").json()["ranker"]
    old = next(v for v in listed["versions"] if v["version"] == "v1-old")
    assert listed["current"] == "v1-old" and "withdrawn" not in old and old["replaced"] == "v2-new"
    again = client.put(url, json={"version": "v1-old"}).json()
    assert again["changed"] is False
    back = client.put(url, json={"version": "v2-new"}).json()  # a published one needs no force
    assert back["current"] == "v2-new" and back["previous"] == "v1-old"

    assert client.put(url, json={"version": "v9"}).status_code == 404
    # Listed, but its artefact is missing.
    registry.r.hset(registry.keys.model_versions("ranker"), "v3-gone", json.dumps({}))
    gone = client.put(url, json={"version": "v3-gone"})
    assert gone.status_code == 409 and "cannot be loaded" in gone.json()["error"]["message"]
    cf = client.put("/v1/admin/models/cf/current", json={"version": "v1-old"})
    assert cf.status_code == 409 and "retraining" in cf.json()["error"]["message"]
    assert client.put("/v1/admin/models/nope/current", json={"version": "x"}).status_code == 422
    assert client.put(url, json={"version": "v1-old", "extra": 1}).status_code == 422


def test_ranker_drift_lists_features_most_drifted_first(
    client: TestClient, monkeypatch: Any
) -> None:
    import numpy as np

    from app.routes import admin as admin_routes
    from serving.drift import MIN_ROWS, DriftMonitor, reference

    monitor = DriftMonitor()
    monkeypatch.setattr(admin_routes, "MONITOR", monitor)
    assert client.get("/v1/admin/models/ranker/drift").json() == {
        "version": None,
        "rows": 0.0,
        "min_rows": MIN_ROWS,
        "features": [],
    }
    rng = np.random.default_rng(0)
    trained = np.column_stack([rng.normal(0, 1, 4000), rng.normal(0, 1, 4000)])
    served = np.column_stack([rng.normal(0, 1, 1000), rng.normal(1.5, 1, 1000)])
    monitor.observe("v7", reference(trained, ("steady", "moved")), ("steady", "moved"), served)
    got = client.get("/v1/admin/models/ranker/drift").json()
    assert got["version"] == "v7" and got["rows"] == 1000
    assert [f["feature"] for f in got["features"]] == ["moved", "steady"]
    assert [f["level"] for f in got["features"]] == ["drift", "stable"]
