"""A Redis Cluster master killed with SIGKILL under load: its replica takes over, no accepted
event is lost or doubled, and recommendations keep answering (degraded while the slots move).

The test starts its own cluster (the shared one must keep its shape for the other tests).
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from app.main import create_app
from core.domain import EVENT_WEIGHTS
from core.keys import Keys
from indexing.connect import build_stores
from indexing.worker import Worker
from tests.conftest import _drop_test_data, authed, make_settings
from tests.integration.test_faults import _wait
from vantage.cluster import cluster_ok, start_cluster


def test_a_master_killed_under_load_loses_no_accepted_event(
    servers: dict[str, str], tmp_path: Path, embedder: Any
) -> None:
    cluster = start_cluster(tmp_path / "cluster")
    s = make_settings({**servers, "redis_url": cluster.url})
    s = s.model_copy(
        update={
            "redis": s.redis.model_copy(
                update={"cluster": True, "partitions": 4, "wait_replicas": 1}
            )
        }
    )
    keys = Keys.of(s.redis)
    stores = build_stores(s, embedder=embedder)
    worker = Worker(stores, consumer="w", block_ms=20, replicas=1, replica_timeout_ms=200)
    stop, wstop = threading.Event(), threading.Event()
    accepted, statuses = Counter[str](), Counter[int]()

    def publish(client: Any) -> None:
        k = 0
        while not stop.is_set():
            batch = [
                {"user_id": f"u{(k + j) % 40}", "item_id": f"i{(k + j) % 25}", "type": "view"}
                for j in range(5)
            ]
            idem = uuid.uuid4().hex
            # A client that retries with its Idempotency-Key until the write is accepted.
            for _ in range(600):
                r = client.post("/v1/interactions", json=batch, headers={"Idempotency-Key": idem})
                if r.status_code == 202:
                    accepted.update(e["item_id"] for e in batch)
                    break
                assert r.status_code == 503, r.text
                time.sleep(0.05)
            k += 5

    def recommend(client: Any) -> None:
        k = 0
        while not stop.is_set():
            r = client.get("/v1/recommendations", params={"user_id": f"u{k % 40}", "limit": 5})
            statuses[r.status_code] += 1
            k += 1

    threads = [threading.Thread(target=worker.run, args=(wstop,))]
    try:
        with authed(create_app(s), s) as client:
            threads += [
                threading.Thread(target=publish, args=(client,)),
                threading.Thread(target=recommend, args=(client,)),
            ]
            for t in threads:
                t.start()
            _wait(lambda: sum(accepted.values()) >= 200, 60, "writes to flow")
            # The master of partition 0's stream (where a quarter of the writes go).
            node = stores.redis.get_node_from_key(keys.stream(0))
            victim = next(n for n in cluster.nodes if n.url.endswith(f":{node.port}/0"))
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait(10)
            before = sum(accepted.values())
            survivors = [p for p in cluster.ports if p != node.port]
            _wait(lambda: cluster_ok(survivors, masters=3), 60, "the replica to take over")
            _wait(lambda: sum(accepted.values()) >= before + 200, 60, "writes after failover")
            stop.set()
            for t in threads[1:]:
                t.join(60)
        expected = {i: n * EVENT_WEIGHTS["view"] for i, n in accepted.items()}

        def pop() -> dict[str, float]:
            rows = stores.redis.zrange(keys.popularity, 0, -1, withscores=True)
            return {i.decode(): sc for i, sc in rows}

        _wait(lambda: sum(pop().values()) >= sum(expected.values()), 120, "every event")
        time.sleep(1)  # anything doubled would show now
        assert pop() == expected  # per item: nothing lost, nothing doubled
        assert statuses[200] > 0 and not any(code >= 500 for code in statuses), statuses
    finally:
        stop.set()
        wstop.set()
        for t in threads:
            if t.is_alive():
                t.join(30)
        stores.redis.close()
        _drop_test_data(s)
        cluster.stop()
