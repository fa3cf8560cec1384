"""Redis state that would grow without bound is pruned."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from core import events as ev
from core.domain import Interaction
from core.settings import Settings
from indexing.jobrunner import JobRunner
from tests.integration.test_api_flow import load_catalogue


def test_old_tombstones_of_items_milvus_no_longer_has_are_pruned(
    client: TestClient, worker: Any, stores: Any, settings: Settings
) -> None:
    load_catalogue(client, worker)
    assert client.delete("/v1/items/cook-1").status_code == 202
    worker.drain()  # cook-1 leaves Milvus; its tombstone stays
    r, k = stores.redis, stores.keys
    long_ago = time.time() - 30 * 86_400
    # hidden-1 is tombstoned too (hidden items are), but Milvus still has it.
    r.zadd(k.tombstones, {"cook-1": long_ago, "hidden-1": long_ago, "space-1": time.time()})
    runner = JobRunner(stores, settings, "test-runner")
    assert runner.prune_tombstones(keep_s=7 * 86_400) == 1
    left = {m.decode() for m in r.zrange(k.tombstones, 0, -1)}
    assert "cook-1" not in left and {"hidden-1", "space-1"} <= left
    assert runner.prune_tombstones(keep_s=7 * 86_400) == 0
    # Pruned or not, the deleted item is still never served.
    body = client.get("/v1/recommendations", params={"user_id": "x", "limit": 50}).json()
    assert "cook-1" not in {i["item_id"] for i in body["items"]}


def test_a_users_per_item_state_is_bounded_by_their_history(stores: Any, worker: Any) -> None:
    """Affinity and confidence keep only the items the history keeps (its newest N)."""
    n = stores.settings.history_len
    events = [
        ev.interaction_event(
            Interaction(user_id="heavy", item_id=f"x{k}", type="watch", timestamp=1_700_000_000 + k)
        )
        for k in range(n + 15)
    ]
    ev.publish(stores.redis, stores.keys, events)
    worker.drain()
    r, k = stores.redis, stores.keys
    hist = {m.decode() for m in r.zrange(k.history("heavy"), 0, -1)}
    assert len(hist) == n and "x0" not in hist and f"x{n + 14}" in hist
    for key in (k.affinity("heavy"), k.confidence("heavy")):
        fields = {f.decode() for f in r.hkeys(key)}
        assert fields <= hist and len(fields) == n, key
    assert float(r.zscore(k.popularity, "x0") or 0) > 0  # aggregates keep the contribution
