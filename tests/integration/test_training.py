"""Training from the durable log: cf vectors in Milvus, user vectors, fold-in, cold items."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from app.main import create_app
from core import events as ev
from core.domain import Interaction, Item
from core.settings import Settings
from core.stores.eventlog import EventLog
from core.surfaces import PolicySpec, SourceSpec
from indexing.apply import apply_item_upserts
from indexing.worker import Worker
from tests.conftest import authed
from training.interaction import MIN_RECORDS_TO_TUNE, logged_interactions, train_cf

TOPICS = {
    "space": [
        "Rocket launch to orbit",
        "Astronauts on the Moon",
        "Telescopes and galaxies",
        "Mars rover mission",
        "Saturn's rings explained",
        "Black holes and stars",
    ],
    "baking": [
        "Sourdough bread at home",
        "French croissant pastry",
        "Chocolate cake recipe",
        "Baking baguettes",
        "Cinnamon rolls from scratch",
        "Pie crust secrets",
    ],
}


def _catalogue(stores: Any) -> None:
    items = [
        Item(item_id=f"{t}-{i}", title=title, categories=[t])
        for t, titles in TOPICS.items()
        for i, title in enumerate(titles)
    ]
    apply_item_upserts(stores, items)


def test_train_publishes_vectors_and_worker_folds_in(
    stores: Any, tmp_path: Path, client: Any, settings: Settings
) -> None:
    logged = replace(stores, log=EventLog(tmp_path / "events", "w"))
    _catalogue(logged)
    worker = Worker(logged, consumer="w")
    # 20 users per topic, each touching 4 of the first 5 items of their topic; item 5 is cold.
    rng = np.random.default_rng(0)
    events = []
    for topic in TOPICS:
        for u in range(20):
            for i in rng.choice(5, 4, replace=False):
                events.append(
                    ev.interaction_event(
                        Interaction(user_id=f"{topic}-fan-{u}", item_id=f"{topic}-{i}", type="like")
                    )
                )
    ev.publish(stores.redis, stores.keys, events)
    assert worker.drain() == len(events)

    records = logged_interactions(tmp_path / "events")
    assert len(records) == len(events)
    report = train_cf(logged, records, progress=False)
    assert report.users == 40 and report.items_trained == 10 and report.items_projected == 2
    assert stores.registry.current("cf") == report.version

    cf = stores.items.vectors([f"{t}-{i}" for t in TOPICS for i in range(6)], field="cf_vec")
    fan = np.frombuffer(stores.redis.hget(stores.keys.user("space-fan-0"), "cfvec"), np.float32)
    space = [float(fan @ cf[f"space-{i}"]) for i in range(5)]
    baking = [float(fan @ cf[f"baking-{i}"]) for i in range(5)]
    assert min(space) > max(baking)
    # The cold item got a projected vector closer to its own topic.
    assert float(fan @ cf["space-5"]) > float(fan @ cf["baking-5"])

    # A new user's first events fold in against the published model at once.
    ev.publish(
        stores.redis,
        stores.keys,
        [
            ev.interaction_event(
                Interaction(user_id="newbie", item_id=f"baking-{i}", type="purchase")
            )
            for i in (0, 1)
        ],
    )
    worker.drain()
    raw = stores.redis.hget(stores.keys.user("newbie"), "cfvec")
    assert raw is not None
    newbie = np.frombuffer(raw, np.float32)
    assert float(newbie @ cf["baking-2"]) > float(newbie @ cf["space-2"])

    # Serving: a trained user's homepage comes from the collaborative space, own topic first.
    # space-fan-0 saw 4 of the 6 space items: the 2 unseen ones come first. (The personal
    # source alone and no policy rules: this checks retrieval, not the fusion or the policy.)
    def homepage(c: Any) -> tuple[list[str], list[list[str]]]:
        body = c.get("/v1/recommendations", params={"user_id": "space-fan-0", "limit": 3}).json()
        return [i["item_id"] for i in body["items"]], [i["sources"] for i in body["items"]]

    def personal_only(weights: dict[str, float]) -> Settings:
        home = settings.surfaces["homepage"].model_copy(
            update={
                "hybrid_weights": weights,
                "sources": [SourceSpec(name="personal", quota=50)],
                "policy": PolicySpec(),
            }
        )
        return settings.model_copy(update={"surfaces": {**settings.surfaces, "homepage": home}})

    cf_only = personal_only({"content_vec": 0.0, "cf_vec": 1.0})
    with authed(create_app(cf_only), cf_only) as c:
        ids, sources = homepage(c)
    assert sources == [["collaborative"]] * 3
    assert [i.split("-")[0] for i in ids] == ["space", "space", "baking"], ids
    # The default homepage (more sources, the policy) still leads with the user's topic.
    ids, sources = homepage(client)
    assert ids[0].startswith("space") and sources[0][0] == "collaborative"

    # With both spaces weighted, Milvus fuses them in one hybrid search.
    hybrid = personal_only({"content_vec": 0.5, "cf_vec": 0.5})
    with authed(create_app(hybrid), hybrid) as c:
        ids, sources = homepage(c)
    assert sources == [["hybrid_ann"]] * 3
    assert [i.split("-")[0] for i in ids][:2] == ["space", "space"], ids


def test_model_refresh_job_retrains_in_a_worker_and_serving_sees_it(
    stores: Any, tmp_path: Path, client: Any, settings: Settings
) -> None:
    """POST /v1/admin/models/refresh -> a worker's job runner trains in a child process ->
    the new version is published and listed with its metrics."""
    from indexing.jobrunner import JobRunner

    local = settings.model_copy(update={"data_dir": tmp_path})
    logged = replace(stores, log=EventLog(local.event_log_dir, "w"))
    _catalogue(logged)
    events = [
        ev.interaction_event(Interaction(user_id=f"{t}-fan-{u}", item_id=f"{t}-{i}", type="like"))
        for t in TOPICS
        for u in range(15)
        for i in range(4)
    ]
    ev.publish(stores.redis, stores.keys, events)
    assert Worker(logged, consumer="w").drain() == len(events)
    assert client.get("/v1/admin/models").json()["cf"]["current"] is None

    job = client.post("/v1/admin/models/refresh").json()
    assert JobRunner(logged, local, "runner").run_once() == 1
    done = client.get(job["status_url"]).json()
    assert done["state"] == "succeeded", done
    version = done["result"]["version"]
    assert done["result"]["users"] == 30 and done["progress"] == 1.0
    models = client.get("/v1/admin/models").json()
    assert models["cf"]["current"] == version
    assert models["cf"]["versions"][0]["version"] == version and models["cf"]["total"] == 1
    assert client.get("/v1/admin/models", params={"limit": 0}).status_code == 422
    # Every process loads the published artefact from the shared models directory.
    from core.stores.registry import ModelRegistry

    loaded = ModelRegistry(stores.redis, stores.keys, local.models_dir).cf()
    assert loaded is not None and loaded.version == version


def test_a_training_run_logs_one_info_line_and_its_fits_and_trials_at_debug(
    stores: Any, tmp_path: Path, caplog: Any
) -> None:
    """What `make run` shows while it trains on the demo: one summary line, not every fit."""
    from indexing.demo import write_demo
    from indexing.importer import import_dataset

    logged = replace(stores, log=EventLog(tmp_path / "events", "w"))
    import_dataset(logged, write_demo(tmp_path / "demo", n_items=100, n_users=150), progress=False)
    records = logged_interactions(tmp_path / "events")
    assert len(records) >= MIN_RECORDS_TO_TUNE  # so that train_cf tunes
    ours = ("core", "embeddings", "serving", "indexing", "training", "app", "vantage")
    with caplog.at_level(logging.DEBUG):
        report = train_cf(logged, records, progress=False)  # tunes: many fits and trials
    mine = [r for r in caplog.records if r.name.split(".")[0] in ours]
    info = [r.getMessage() for r in mine if r.levelno >= logging.INFO]
    assert info == [f"cf model {report.version} published: {report.as_dict()}"], info
    debug = [r.getMessage() for r in mine if r.levelno == logging.DEBUG]
    assert sum(m.startswith("iALS fit") for m in debug) > 1, debug
    assert any(m.startswith("item neighbours") for m in debug), debug
    assert any(" inner ndcg@10=" in m for m in debug), debug  # one per tuning trial
    assert report.metrics["trials"] > 1
