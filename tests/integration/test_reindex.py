"""Re-index: a new collection, catch-up of concurrent writes, an atomic alias swap, zero
failed requests while it runs, and the old collection dropped after its grace period."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi.testclient import TestClient

from app.main import create_app
from core import events as ev
from core.domain import Interaction, Item
from core.settings import Settings
from core.stores.schema import current_items_collection
from indexing.jobrunner import JobRunner
from indexing.reindex import drop_due_collections
from indexing.worker import Worker
from tests.conftest import admin_token
from tests.integration.conftest import CATALOGUE


@contextlib.contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The real app behind uvicorn on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _seed(stores: Any, worker: Worker) -> None:
    ev.publish(
        stores.redis,
        stores.keys,
        [ev.item_event(Item(item_id=i, **b)) for i, b in CATALOGUE.items()]
        + [
            ev.item_event(Item(item_id=f"bulk-{n}", title=f"Bulk item {n}", categories=["misc"]))
            for n in range(300)
        ]
        + [
            ev.interaction_event(Interaction(user_id="reader", item_id="space-1", type="like")),
        ],
    )
    worker.drain()


def _runner(stores: Any, settings: Settings) -> JobRunner:
    s = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"reindex_batch": 64})}
    )
    return JobRunner(stores, s, "test-runner")


def test_reindex_swaps_without_a_failed_request_or_a_lost_write(
    settings: Settings, stores: Any, worker: Worker, embedder: Any
) -> None:
    from indexing.connect import build_stores

    _seed(stores, worker)
    names = stores.items.names
    before = current_items_collection(stores.items.client, names)
    key = {"Authorization": f"Bearer {admin_token(settings)}"}
    with serve(settings) as base, httpx.Client(base_url=base, timeout=30, headers=key) as http:
        job = http.post("/v1/admin/reindex").json()
        stop = threading.Event()
        results: list[int] = []
        errors: list[str] = []

        def read_load() -> None:
            n = 0
            while not stop.is_set():
                params: dict[str, Any] = {"user_id": "reader", "limit": 5}
                if n % 2:
                    params.update(surface="related", item_id="space-2")
                n += 1
                try:
                    r = http.get("/v1/recommendations", params=params)
                    results.append(r.status_code)
                    if r.status_code != 200 or not r.json()["items"]:
                        errors.append(f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as e:
                    errors.append(repr(e))

        # Writes keep flowing while the copy runs: edits, new items and a delete.
        writer_stores = build_stores(settings, embedder=embedder)
        live = Worker(writer_stores, consumer="live", block_ms=20, item_batch=8, item_batch_ms=20)
        live_stop = threading.Event()

        def write_load() -> None:
            n = 0
            while not live_stop.is_set() and n < 40:
                batch = [
                    ev.item_event(Item(item_id=f"bulk-{n}", title=f"Edited bulk item {n}")),
                    ev.item_event(Item(item_id=f"new-{n}", title=f"Brand new item {n}")),
                ]
                ev.publish(stores.redis, stores.keys, batch)
                n += 1
                time.sleep(0.05)
            ev.publish(stores.redis, stores.keys, [(ev.ITEM_DELETED, {"item_id": "bulk-299"})])

        threads = [
            threading.Thread(target=read_load),
            threading.Thread(target=write_load),
            threading.Thread(target=live.run, args=(live_stop,)),
        ]
        for t in threads:
            t.start()
        try:
            assert _runner(stores, settings).run_once() == 1
        finally:
            threads[1].join(30)
            time.sleep(1.0)  # the live worker applies the tail of the writes
            live_stop.set()
            stop.set()
            for t in threads:
                t.join(30)
        done = http.get(job["status_url"]).json()
        assert done["state"] == "succeeded", done
        assert done["progress"] == 1.0 and done["rate"] > 0
        assert not errors, errors[:5]
        assert len(results) > 10 and set(results) == {200}

    after = current_items_collection(stores.items.client, names)
    assert after != before and done["result"]["collection"] == after
    # Every write, including those applied during the copy, is in the new collection.
    stores.items.flush()
    rows = stores.items.get(
        [f"bulk-{n}" for n in range(40)] + [f"new-{n}" for n in range(40)] + ["bulk-299"],
        fields=("title",),
        strong=True,
    )
    assert "bulk-299" not in rows
    assert all(rows[f"bulk-{n}"]["title"] == f"Edited bulk item {n}" for n in range(40))
    assert all(f"new-{n}" in rows for n in range(40))
    assert stores.items.count() == len(CATALOGUE) + 300 - 1 + 40
    # The old collection stays for requests in flight, then goes.
    assert stores.items.client.has_collection(before)
    assert drop_due_collections(stores, now=time.time() + 10**6) == [before]
    assert not stores.items.client.has_collection(before)


def test_reindex_with_an_unknown_model_fails_clearly_and_changes_nothing(
    settings: Settings, stores: Any, worker: Worker, client: TestClient, tmp_path: Path
) -> None:
    _seed(stores, worker)
    before = current_items_collection(stores.items.client, stores.items.names)
    collections = set(stores.items.client.list_collections())
    # Names that are not allow-listed, and paths out of the models directory, are refused
    # before any job exists; the worker never reads them.
    tag = settings.redis.key_prefix  # unique per test: the data dir may be shared
    settings.text_models_dir.mkdir(parents=True, exist_ok=True)
    (settings.text_models_dir / f"escape-{tag}").symlink_to(tmp_path)
    not_allowed = ["no-such/model-anywhere", "data/../../../../etc", f"escape-{tag}"]
    for bad in [*not_allowed, f"../{tag}", "/etc", str(tmp_path)]:
        res = client.post("/v1/admin/reindex", json={"model": bad})
        assert res.status_code == 422, (bad, res.text)
        # (Names starting with '.' or '/' already fail the name pattern.)
        if bad in not_allowed:
            assert "not allowed" in res.json()["error"]["message"]
    assert client.get("/v1/admin/jobs").json()["items"] == []
    # A directory under the models directory is allowed, and fails clearly if no model is there.
    (settings.text_models_dir / f"broken-{tag}").mkdir()
    job = client.post("/v1/admin/reindex", json={"model": f"broken-{tag}"}).json()
    assert job["params"]["model"] == str((settings.text_models_dir / f"broken-{tag}").resolve())
    _runner(stores, settings).run_once()
    done = client.get(job["status_url"]).json()
    assert done["state"] == "failed"
    assert "cannot load text model" in done["error"] and "broken" in done["error"]
    assert current_items_collection(stores.items.client, stores.items.names) == before
    assert set(stores.items.client.list_collections()) == collections
    # A failed job frees its kind: the next request queues a new one.
    assert client.post("/v1/admin/reindex").json()["id"] != job["id"]
