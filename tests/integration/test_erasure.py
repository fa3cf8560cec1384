"""Erasing a user: afterwards no store holds their id, except the documented aggregates.

Real Redis and Milvus, the real API and worker, a real (small) interaction model. The user is
given every kind of trace first, and the test checks the search finds each of them before
the erasure (so the search can fail), then finds nothing after it.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core import events as ev
from core.keys import RECS_SHARDS
from core.stores.eventlog import EventLog, iter_log
from core.stores.registry import ModelRegistry
from embeddings.ials import ALSModel
from embeddings.matrix import InteractionMatrix
from indexing import apply
from indexing.worker import Worker
from tests.integration.conftest import CATALOGUE
from training.interaction import CFParams, logged_interactions, train_cf

GONE = "erase-me-7f3a"  # distinctive: no other string contains it
KEPT = "keep-me-1"


def _redis_mentions(r: Any, pattern: str, needle: str) -> list[str]:
    """Keys of the deployment whose name or any value (every type) contains `needle`."""
    hits, raw = [], needle.encode()
    for key in r.scan_iter(match=pattern, count=1000):
        kind = r.type(key).decode()
        if kind == "string":
            values = [r.get(key)]
        elif kind == "hash":
            values = [b for kv in r.hgetall(key).items() for b in kv]
        elif kind == "zset":
            values = [m for m, _ in r.zrange(key, 0, -1, withscores=True)]
        elif kind == "set":
            values = list(r.smembers(key))
        elif kind == "list":
            values = r.lrange(key, 0, -1)
        else:  # stream
            values = [b for _, f in r.xrange(key) for kv in f.items() for b in kv]
        if raw in key or any(raw in (v or b"") for v in values):
            hits.append(key.decode())
    return hits


def _files_mentioning(root: Path, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


@pytest.fixture
def setup(stores: Any, settings: Any, tmp_path: Path) -> Any:
    logged = replace(
        stores,
        log=EventLog(tmp_path / "events", "w"),
        registry=ModelRegistry(stores.redis, stores.keys, tmp_path / "models"),
    )
    return logged, Worker(logged, consumer="w", block_ms=50)


def _wait_impressions(r: Any, keys: Any, n: int) -> None:
    deadline = time.monotonic() + 10
    while sum(r.xlen(keys.impressions(s)) for s in range(RECS_SHARDS)) < n:
        assert time.monotonic() < deadline, "impressions were not written"
        time.sleep(0.05)


def _give_every_trace(client: TestClient, stores: Any, worker: Worker) -> None:
    body = {"items": [{"item_id": i, **b} for i, b in CATALOGUE.items()]}
    assert client.post("/v1/items/batch", json=body).status_code == 202
    worker.drain()
    for user in (GONE, KEPT):
        r = client.put(f"/v1/users/{user}", json={"region": "US", "birth_year": 1990})
        assert r.status_code == 200
        events = [{"user_id": user, "item_id": i, "type": "like"} for i in ("space-1", "space-2")]
        r = client.post("/v1/interactions", json=events, headers={"Idempotency-Key": user})
        assert r.status_code == 202, r.text
    worker.drain()
    # Served lists: impressions, attribution records, a cached and a last good list.
    rec = client.get("/v1/recommendations", params={"user_id": GONE, "surface": "homepage"})
    assert rec.status_code == 200 and rec.json()["items"], rec.text
    _wait_impressions(stores.redis, stores.keys, 1)
    click = {
        "user_id": GONE,
        "item_id": rec.json()["items"][0]["item_id"],
        "type": "click",
        "recommendation_id": rec.json()["recommendation_id"],
    }
    assert client.post("/v1/interactions", json=click).status_code == 202
    # A dead letter naming the user (undecodable for the worker).
    ev.publish(stores.redis, stores.keys, [(ev.INTERACTION_LOGGED, {"user_id": GONE})])
    worker.drain()
    # A model trained on the log, and one written the way older versions did (with user rows).
    train_cf(stores, logged_interactions(stores.log.root), params=CFParams(), progress=False)
    records = [{"user_id": u, "item_id": "space-1", "type": "like"} for u in (GONE, KEPT)]
    legacy = ALSModel(4, iterations=2).fit(InteractionMatrix.from_records(records))
    legacy.save(stores.registry.cf_dir("legacy"), with_users=True)
    stores.sync_users_if_due(force=True)
    stores.flush_if_due(force=True)


def test_erasure_leaves_no_trace_but_the_aggregates(setup: Any, client: TestClient) -> None:
    stores, worker = setup
    r, keys = stores.redis, stores.keys
    _give_every_trace(client, stores, worker)
    before = set(_redis_mentions(r, keys.scan_pattern, GONE))
    # The search finds every kind of trace (it can fail).
    for kind in (":user", ":hist", ":aff", ":conf", ":done:", ":impressions", ":recinfo:", ":rc:"):
        assert any(kind in k for k in before), (kind, sorted(before))
    assert any(k.endswith(":events") for k in before) and any(k.endswith(":dead") for k in before)
    assert stores.users.get([GONE])
    assert _files_mentioning(stores.log.root, GONE)
    assert _files_mentioning(stores.registry.root, GONE)  # the legacy model

    # Not applied yet (no worker runs here): 202 and a pending receipt.
    got = client.delete(f"/v1/users/{GONE}", params={"wait_s": 0})
    assert got.status_code == 202 and got.json()["status"] == "pending", got.text
    worker.drain()
    receipt = client.get(f"/v1/users/{GONE}/erasure").json()
    assert receipt["status"] == "completed", receipt
    removed = receipt["removed"]
    for store in ("redis_keys", "milvus_user_rows", "impressions", "attribution_records"):
        assert removed[store] >= 1, (store, receipt)
    assert removed["cached_lists"] >= 1 and removed["dead_letters"] == 1, receipt
    assert removed["stream_events"] >= 3 and removed["model_artefacts"] == 1, receipt
    assert receipt["event_log"]["status"] == "pending_compaction"
    assert receipt["event_log"]["free_by"] > receipt["completed_at"]
    assert receipt["kept"]

    # Everything but the log files is clean now; readers of the log skip the user already.
    assert _redis_mentions(r, keys.scan_pattern, GONE) == []
    assert stores.users.get([GONE]) == {} and stores.users.get([KEPT])
    assert all(rec["data"].get("user_id") != GONE for rec in iter_log(stores.log.root))
    assert _files_mentioning(stores.registry.root, GONE) == []
    assert client.get(f"/v1/users/{GONE}").status_code == 404
    assert client.get(f"/v1/users/{KEPT}").json()["recent"]  # nobody else was touched
    assert r.zscore(keys.popularity, "space-1")  # the aggregate keeps the past contribution

    # The compaction (due `log_compaction_delay_s` after the erasure) frees the log.
    worker.stores = replace(stores, settings=replace(stores.settings, log_compaction_delay_s=0))
    assert worker.stores.compact_log_if_due() >= 3
    assert _files_mentioning(stores.log.root, GONE) == []
    assert _files_mentioning(stores.log.root, KEPT)
    log = client.get(f"/v1/users/{GONE}/erasure").json()["event_log"]
    assert log["status"] == "free" and log["lines_removed"] >= 3 and log["free_at"], log

    # The next training run knows nothing of the user, and gives them no vector.
    report = train_cf(stores, logged_interactions(stores.log.root), params=CFParams())
    assert report.users == 1 and r.exists(keys.user(GONE)) == 0
    assert _files_mentioning(stores.registry.root, GONE) == []

    # Idempotent: again, with nothing left to remove.
    assert client.delete(f"/v1/users/{GONE}", params={"wait_s": 0}).status_code == 202
    worker.drain()
    again = client.get(f"/v1/users/{GONE}/erasure").json()
    assert again["status"] == "completed" and not any(again["removed"].values()), again
    assert _redis_mentions(r, keys.scan_pattern, GONE) == []


def test_erasure_resumes_after_a_crash_midway(
    setup: Any, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores, worker = setup
    for user in (GONE, KEPT):
        assert client.put(f"/v1/users/{user}", json={"region": "US"}).status_code == 200
        body = {"user_id": user, "item_id": "space-1", "type": "like"}
        assert client.post("/v1/interactions", json=body).status_code == 202
    worker.drain()
    real = apply.erasure._milvus_rows

    def crash(*args: Any) -> Any:
        raise RuntimeError("worker killed here")

    monkeypatch.setattr(apply.erasure, "_milvus_rows", crash)
    assert client.delete(f"/v1/users/{GONE}", params={"wait_s": 0}).status_code == 202
    worker.drain()
    half = client.get(f"/v1/users/{GONE}/erasure").json()
    assert half["status"] == "pending" and half["removed"]["redis_keys"] >= 3, half
    assert "milvus_user_rows" not in half["removed"] and stores.users.get([GONE])

    # The entry stayed pending; the worker that claims it resumes after the recorded steps.
    monkeypatch.setattr(apply.erasure, "_milvus_rows", real)
    assert worker._reclaim(worker.partition(0), min_idle_ms=0) == 1
    done = client.get(f"/v1/users/{GONE}/erasure").json()
    assert done["status"] == "completed", done
    assert done["removed"]["redis_keys"] == half["removed"]["redis_keys"]  # not counted twice
    assert done["removed"]["milvus_user_rows"] == 1 and stores.users.get([GONE]) == {}
    assert stores.users.get([KEPT])
    assert _redis_mentions(stores.redis, stores.keys.scan_pattern, GONE) == []
    assert json.dumps(done).count(GONE) == 1  # the receipt names the user once: its user_id


def test_vantage_users_erase_applies_it_when_no_worker_runs(
    settings: Any,
    client: TestClient,
    stores: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import argparse

    from vantage.commands.users import cmd_users

    assert client.put(f"/v1/users/{GONE}", json={"region": "US"}).status_code == 200
    local = settings.model_copy(update={"data_dir": tmp_path})
    args = argparse.Namespace(users_command="erase", user_id=GONE, wait=60.0)
    assert cmd_users(args, local) == 0
    receipt = json.loads(capsys.readouterr().out)
    assert receipt["status"] == "completed" and receipt["removed"]["redis_keys"] >= 1, receipt
    assert client.get(f"/v1/users/{GONE}").status_code == 404
    # The command's one-off consumer leaves the groups once it holds nothing.
    from indexing.streams import leave

    def text(v: Any) -> str:
        return v.decode() if isinstance(v, bytes) else str(v)

    r, keys = stores.redis, stores.keys
    streams = [keys.stream(n) for n in range(keys.partitions)]
    groups = [(st, text(g["name"])) for st in streams for g in r.xinfo_groups(st)]
    consumers = [text(c["name"]) for st, g in groups for c in r.xinfo_consumers(st, g)]
    assert groups and not [c for c in consumers if c.startswith("cli-")], consumers
    assert not leave(r, streams[0], "nogroup", "x")
    bad = argparse.Namespace(users_command="erase", user_id="no spaces", wait=1.0)
    assert cmd_users(bad, local) == 2
