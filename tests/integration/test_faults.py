"""Fault tests: workers killed with SIGKILL mid-stream, redis-server killed and restarted.

Every accepted event must be applied exactly once in effect: counters equal the events sent,
nothing lost, nothing doubled, and every event is in the durable log once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from app.main import create_app
from core import events as ev
from core.domain import EVENT_WEIGHTS, Interaction
from core.keys import Keys
from core.settings import Settings, settings_env
from core.stores.eventlog import iter_log
from indexing.connect import build_stores
from indexing.partitions import holders, live_workers
from indexing.worker import Worker
from tests.conftest import _drop_test_data, authed, make_settings
from vantage.stack import start_redis

N_EVENTS = 10_000
N_ITEMS = 100


def _spawn(settings: Settings, name: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings_env(settings), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "indexing", "--consumer", name],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _applied(stores: Any) -> float:
    """Events applied so far, from the popularity counters (every view adds 0.5)."""
    top = stores.redis.zrange(stores.keys.popularity, 0, -1, withscores=True)
    return sum(s for _, s in top) / EVENT_WEIGHTS["view"]


def _sharing(r: Any, keys: Keys, n: int) -> bool:
    """`n` workers are live and every partition is held by one of them."""
    live = live_workers(r, keys)
    return len(live) >= n and all(h in live for h in holders(r, keys).values())


def _pending(r: Any, keys: Keys, group: str) -> int:
    return sum(int(r.xpending(keys.stream(p), group)["pending"]) for p in range(keys.partitions))


def _wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_workers_killed_three_times_lose_and_double_nothing(
    settings: Settings, stores: Any, tmp_path: Path
) -> None:
    # Two workers share four partitions: a kill moves the victim's to the other (or to its
    # restart) once its leases lapse, and its pending entries are claimed there.
    s = settings.model_copy(
        update={
            "data_dir": tmp_path,
            "redis": settings.redis.model_copy(update={"partitions": 4}),
            "worker": settings.worker.model_copy(
                update={"claim_idle_ms": 1500, "jobs_enabled": False, "block_ms": 50}
            ),
        }
    )
    keys = Keys.of(s.redis)
    sent: Counter[str] = Counter()

    def publish() -> None:
        # ~800 events/s for ~12 s: the kills land while events flow.
        for b in range(N_EVENTS // 100):
            batch = [
                Interaction(
                    user_id=f"u{(b * 100 + k) % 250}",
                    item_id=f"i{(b + k) % N_ITEMS}",
                    type="view",
                    timestamp=1_700_000_000 + b,
                )
                for k in range(100)
            ]
            sent.update(e.item_id for e in batch)
            ev.publish(stores.redis, keys, [ev.interaction_event(e) for e in batch])
            time.sleep(0.12)

    steady = _spawn(s, "steady")
    victim = _spawn(s, "victim")
    publisher = threading.Thread(target=publish)
    kills = 0
    try:
        _wait(lambda: _sharing(stores.redis, keys, 2), 120, "both workers to share the partitions")
        publisher.start()
        for threshold in (1_500, 4_000, 6_500):
            _wait(lambda t=threshold: _applied(stores) >= t, 120, f"{threshold} events")
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            kills += 1
            # Restarted under the same name (its own pending entries first) or a new one
            # (the survivor reclaims the dead one's entries once idle).
            victim = _spawn(s, "victim" if kills % 2 else f"victim-{kills}")
        publisher.join(120)
        _wait(lambda: _applied(stores) >= N_EVENTS, 180, "every event to be applied")
        _wait(
            lambda: _pending(stores.redis, keys, s.worker.group) == 0,
            60,
            "pending entries to be reclaimed",
        )
    finally:
        for p in (steady, victim):
            p.terminate()
            p.wait(30)
    assert kills == 3
    pop = {
        i.decode(): sc
        for i, sc in stores.redis.zrange(stores.keys.popularity, 0, -1, withscores=True)
    }
    expected = {i: n * EVENT_WEIGHTS["view"] for i, n in sent.items()}
    assert sum(sent.values()) == N_EVENTS
    assert pop == expected  # per item: nothing lost, nothing doubled
    assert sum(stores.redis.xlen(keys.dead_letters(p)) for p in range(4)) == 0
    logged = list(iter_log(s.event_log_dir))
    assert len(logged) == N_EVENTS  # each once (readers dedupe a crash's repeated lines)


def test_redis_restart_loses_no_accepted_event(
    servers: dict[str, str], tmp_path: Path, embedder: Any
) -> None:
    from urllib.parse import urlparse

    srv = start_redis(tmp_path / "redis")
    port = urlparse(srv.url).port
    s = make_settings({**servers, "redis_url": srv.url})
    try:
        with authed(create_app(s), s) as client:
            accepted = 0
            for b in range(5):
                body = [{"user_id": f"u{k}", "item_id": f"r{b}", "type": "view"} for k in range(60)]
                res = client.post("/v1/interactions", json=body)
                assert res.status_code == 202
                accepted += len(res.json()["event_ids"])
            srv.proc.send_signal(signal.SIGKILL)  # no shutdown, no final save
            srv.proc.wait(10)
            down = client.post(
                "/v1/interactions", json={"user_id": "u", "item_id": "lost", "type": "view"}
            )
            # Never a 202 for an event that was not stored.
            assert down.status_code == 503 and down.headers["retry-after"]
            srv = start_redis(tmp_path / "redis", port)  # same files: the AOF is replayed
            after = client.post(
                "/v1/interactions", json={"user_id": "u", "item_id": "after", "type": "view"}
            )
            assert after.status_code == 202  # the API reconnects by itself
        stores = build_stores(s, embedder=embedder)
        Worker(stores, consumer="w").drain()
        pop = {
            i.decode(): sc
            for i, sc in stores.redis.zrange(stores.keys.popularity, 0, -1, withscores=True)
        }
        assert accepted == 300
        assert pop == {**{f"r{b}": 30.0 for b in range(5)}, "after": 0.5}
        stores.items.client.close()
    finally:
        _drop_test_data(s)
        srv.stop()
