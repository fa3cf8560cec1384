"""Bulk refreshes of candidate sets on the real stores: a new interaction model (or a re-index
swap) rebuilds every held set in the background without ever serving a deleted item, and a
worker killed during the bulk refresh loses nothing: the next one finishes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from core.settings import CandidateSettings, Settings, settings_env
from core.stores.candidates import RedisCandidates
from indexing.refresh import CandidateRefresher
from tests.conftest import _drop_test_data, authed, make_settings
from tests.integration.conftest import CATALOGUE
from tests.integration.test_api_flow import load_catalogue
from training.interaction import CFParams, train_cf

TOPICS = ("space", "cook")


@pytest.fixture
def settings(servers: dict[str, str], tmp_path: Path) -> Iterator[Settings]:
    s = make_settings(servers, candidates=CandidateSettings(enabled=True, refresh_interval_s=0))
    s = s.model_copy(update={"data_dir": tmp_path})
    yield s
    _drop_test_data(s)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with authed(create_app(settings), settings) as c:
        yield c


def _fans(client: TestClient, worker: Any, n: int) -> list[dict[str, Any]]:
    """`n` users, each liking two items of one topic; the records for training."""
    records = []
    for u in range(n):
        topic = TOPICS[u % 2]
        items = [i for i in CATALOGUE if i.startswith(topic)][:2]
        records += [
            {"user_id": f"fan-{u}", "item_id": i, "type": "like", "timestamp": 1.7e9 + u + k}
            for k, i in enumerate(items)
        ]
    for k in range(0, len(records), 500):
        r = client.post("/v1/interactions", json=records[k : k + 500])
        assert r.status_code == 202, r.text
    worker.drain()
    # Events alone queue no set: each fan asks for a list, and that first request (a miss)
    # queues theirs, as here.
    RedisCandidates(worker.stores.redis, worker.stores.keys).mark_stale(
        [f"u:fan-{u}" for u in range(n)], time.time()
    )
    return records


def _drain(refresher: CandidateRefresher, sets: RedisCandidates) -> None:
    for _ in range(200):
        if refresher.refresh_once() == 0 and sets.queued() == 0:
            return
    raise AssertionError("the refresh queue did not drain")


def _tags(sets: RedisCandidates) -> dict[str, str]:
    owners = [o for o, _ in sets.held()]
    return {o: s.tag for o, s in sets.get(owners).items()}


def _wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_model_refresh_rebuilds_every_set_and_never_serves_a_deleted_item(
    client: TestClient, worker: Any, stores: Any, settings: Settings
) -> None:
    load_catalogue(client, worker)
    records = _fans(client, worker, 6)
    sets = RedisCandidates(stores.redis, stores.keys)
    refresher = CandidateRefresher(stores, settings)
    _drain(refresher, sets)
    related = {"user_id": "fan-0", "surface": "related", "item_id": "cook-2"}
    assert client.get("/v1/recommendations", params=related).status_code == 200
    _drain(refresher, sets)  # the related miss queued the item's set
    before = _tags(sets)
    assert len(before) == 7 and set(before.values()) == {refresher.tag()}
    gone = next(i for i in sets.get(["u:fan-0"])["u:fan-0"].ids())
    assert client.delete(f"/v1/items/{gone}").status_code == 202

    train_cf(stores, records, params=CFParams(iterations=3), progress=False)
    new_tag = refresher.tag()
    assert new_tag not in before.values()
    # Until refreshed, old sets are served (re-scored live), never with the deleted item.
    for u in range(6):
        body = client.get("/v1/recommendations", params={"user_id": f"fan-{u}"}).json()
        assert gone not in [i["item_id"] for i in body["items"]]
    worker.drain()  # the delete reaches Milvus
    _drain(refresher, sets)
    after = _tags(sets)
    assert after.keys() == before.keys() and set(after.values()) == {new_tag}
    assert not any(gone in s.ids() for s in sets.get(list(after)).values())
    assert refresher.refresh_once() == 0  # queued once per tag


def test_a_worker_killed_during_a_bulk_refresh_loses_nothing(
    client: TestClient, worker: Any, stores: Any, settings: Settings
) -> None:
    load_catalogue(client, worker)
    records = _fans(client, worker, 150)
    sets = RedisCandidates(stores.redis, stores.keys)
    refresher = CandidateRefresher(stores, settings)
    _drain(refresher, sets)
    assert len(_tags(sets)) == 150
    train_cf(stores, records, params=CFParams(iterations=3), progress=False)
    new_tag = refresher.tag()

    # One owner per round: the bulk refresh of 150 sets takes many rounds.
    slow = settings.model_copy(
        update={
            "candidates": CandidateSettings(
                enabled=True, refresh_batch=1, search_batch=1, refresh_interval_s=0
            )
        }
    )
    env = {**os.environ, **settings_env(slow), "HF_HUB_OFFLINE": "1"}

    def spawn(name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "indexing", "--consumer", name],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def refreshed() -> int:
        return sum(t == new_tag for t in _tags(sets).values())

    victim = spawn("victim")
    try:
        _wait(lambda: refreshed() >= 5, 120, "the bulk refresh to start")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
    finally:
        if victim.poll() is None:
            victim.kill()
    done = refreshed()
    assert done < 150 and sets.queued() > 0, "killed too late to test a resume"
    heir = spawn("heir")
    try:
        _wait(lambda: sets.queued() == 0, 180, "the bulk refresh to finish")
    finally:
        heir.send_signal(signal.SIGTERM)
        heir.wait(30)
    tags = _tags(sets)
    assert len(tags) == 150 and set(tags.values()) == {new_tag}
