"""Two API processes on one Redis Cluster serve the same users consistently: what one accepts,
the other reads; the lists they answer agree; a delete through one hides the item in both."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core.settings import Settings, settings_env
from indexing.connect import build_stores
from indexing.worker import Worker
from tests.conftest import admin_token
from tests.integration.test_api_flow import load_catalogue, rec_ids
from vantage.stack import free_port, port_open


@pytest.fixture
def s4(settings: Settings) -> Settings:
    """The cluster settings with 4 event partitions."""
    return settings.model_copy(
        update={"redis": settings.redis.model_copy(update={"partitions": 4})}
    )


@pytest.fixture
def two_apis(s4: Settings) -> Iterator[list[httpx.Client]]:
    s = s4
    env = {**os.environ, **settings_env(s), "HF_HUB_OFFLINE": "1", "VANTAGE_LOG_LEVEL": "WARNING"}
    procs, clients = [], []
    token = admin_token(s)
    try:
        for _ in range(2):
            port = free_port()
            cmd = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
            procs.append(subprocess.Popen([*cmd, "--port", str(port)], env=env))
            deadline = time.monotonic() + 120
            while not port_open("127.0.0.1", port):
                assert time.monotonic() < deadline and procs[-1].poll() is None, "API down"
                time.sleep(0.1)
            clients.append(
                httpx.Client(
                    base_url=f"http://127.0.0.1:{port}",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )
            )
        yield clients
    finally:
        for c in clients:
            c.close()
        for p in procs:
            p.terminate()
            p.wait(30)


def test_two_api_processes_serve_the_same_users_consistently(
    two_apis: list[httpx.Client], s4: Settings, embedder: Any
) -> None:
    a, b = two_apis
    stores = build_stores(s4, embedder=embedder)
    worker = Worker(stores, consumer="two-apis", block_ms=20)
    load_catalogue(a, worker)
    assert b.get("/v1/items/space-1").json()["title"] == a.get("/v1/items/space-1").json()["title"]
    assert a.put("/v1/users/ann", json={"birth_year": 1990, "region": "US"}).status_code == 200
    assert b.get("/v1/users/ann").json()["profile"]["region"] == "US"
    events = [
        {"user_id": "ann", "item_id": "space-1", "type": "like"},
        {"user_id": "ann", "item_id": "space-2", "type": "watch"},
    ]
    assert b.post("/v1/interactions", json=events).status_code == 202
    worker.drain()
    from_a = rec_ids(a, user_id="ann", surface="homepage", limit=5)
    from_b = rec_ids(b, user_id="ann", surface="homepage", limit=5)
    assert from_a == from_b and {"space-3", "space-4"} <= set(from_a[:3])
    assert not {"space-1", "space-2"} & set(from_a)  # both know what ann has seen
    assert b.delete("/v1/items/space-3").status_code == 202
    for client in (a, b):  # the tombstone is shared at once, cached lists included
        assert "space-3" not in rec_ids(client, user_id="ann", surface="homepage", limit=5)
    worker.drain()
    assert a.get("/v1/items/space-3").status_code == 404
    stores.redis.close()
