"""Impressions, click attribution, negative feedback, onboarding vectors, surface metrics."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app import collectors
from core import events as ev
from core.connect import connect_redis
from core.domain import Interaction, Item, Preferences, User
from core.keys import RECS_SHARDS, Keys
from core.served_list import Attribution, ServedItem, ServedList
from core.settings import Settings
from core.stores.erasures import ErasureRecords
from indexing.apply import apply_interactions, apply_item_upserts, apply_user_updates
from indexing.worker import Worker
from serving.impressions import ImpressionLogger, to_record
from tests.integration.conftest import CATALOGUE

REC = "rec0001"


def _response(rec_id: str = REC, variant: str = "B") -> dict[str, Any]:
    """A response as `recommend()` returns it: `a` came from two sources, `b` from one."""
    return {
        "recommendation_id": rec_id,
        "user_id": "u",
        "surface": "homepage",
        "variant": variant,
        "items": [
            {
                "item_id": "a",
                "score": 0.9,
                "sources": ["content", "popular"],
                "reasons": [],
                "position": 1,
                "explored": False,
                "propensity": 0.8,
            },
            {
                "item_id": "b",
                "score": 0.5,
                "sources": ["cf"],
                "reasons": [],
                "position": 2,
                "explored": True,
                "propensity": 0.1,
            },
        ],
        "generated_at": time.time(),
        "cached": False,
        "degraded": False,
        "degraded_reasons": [],
    }


def _logged(stores: Any, *responses: dict[str, Any]) -> None:
    """Log responses through a started logger and wait until they are written."""
    logger = ImpressionLogger(stores.redis, stores.keys, flush_ms=5)
    logger.start()
    for r in responses:
        logger.log(r)
    logger.stop()


def _stats(stores: Any) -> dict[str, int]:
    """The surface counters summed over every shard of served lists."""
    out: dict[str, int] = {}
    for shard in range(RECS_SHARDS):
        for k, v in stores.redis.hgetall(stores.keys.surface_stats(shard)).items():
            out[k.decode()] = out.get(k.decode(), 0) + int(v)
    return out


def _wait(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _dropped(reason: str) -> float:
    value = REGISTRY.get_sample_value("vantage_impressions_dropped_total", {"reason": reason})
    return value or 0.0


def test_never_started_logger_is_a_noop(settings: Settings) -> None:
    r = connect_redis(settings)
    keys = Keys.of(settings.redis)
    logger = ImpressionLogger(r, keys, max_queue=2)
    for n in range(5):
        logger.log(_response(f"r{n}"))
    assert logger.queued == 0
    shard = keys.rec_shard("r0")
    assert not r.exists(keys.impressions(shard), keys.surface_stats(shard), keys.rec_info("r0"))
    r.close()


def test_full_queue_drops_and_counts(settings: Settings) -> None:
    r = connect_redis(settings)
    logger = ImpressionLogger(r, Keys.of(settings.redis), max_queue=2, flush_ms=0)
    writing, release = threading.Event(), threading.Event()
    written: list[int] = []

    def slow_write(batch: Any, counts: Any = None) -> None:
        writing.set()
        release.wait(5)
        written.append(len(batch))

    logger.write = slow_write  # type: ignore[method-assign]
    before = _dropped("queue_full")
    logger.start()
    logger.log(_response("r0"))
    assert writing.wait(5)  # the thread holds r0 and is stuck writing it
    t = time.perf_counter()
    for n in range(1, 6):
        logger.log(_response(f"r{n}"))
    assert time.perf_counter() - t < 0.1  # never waits for the writer
    assert _dropped("queue_full") - before == 3  # r1, r2 queued; r3-r5 dropped
    release.set()
    logger.stop()
    assert sum(written) == 3
    r.close()


def test_logged_list_writes_stream_served_items_and_stats(stores: Any) -> None:
    _logged(stores, _response())
    k = stores.keys
    (_, fields), *_ = stores.redis.xrange(k.impressions(k.rec_shard(REC)))
    rec = json.loads(fields[b"data"])
    assert rec["id"] == REC and rec["surface"] == "homepage" and rec["variant"] == "B"
    assert rec["items"] == [
        ["a", ["content", "popular"], 1, False, 0.8],
        ["b", ["cf"], 2, True, 0.1],
    ]
    info = {f.decode(): json.loads(v) for f, v in stores.redis.hgetall(k.rec_info(REC)).items()}
    assert info["b"] == {
        "user": "u",
        "sources": ["cf"],
        "position": 2,
        "surface": "homepage",
        "variant": "B",
        "explored": True,
        "propensity": 0.1,
    }
    assert 0 < stores.redis.ttl(k.rec_info(REC)) <= 86_400  # the attribution window
    assert _stats(stores) == {
        "imp|homepage|content|B": 1,
        "imp|homepage|popular|B": 1,
        "imp|homepage|cf|B": 1,
        "imp|homepage|*|B": 2,
    }


def test_counters_are_summed_over_a_window_and_flushed_on_demand(stores: Any) -> None:
    """Lists are written every `flush_ms`; their counters once a window (`counts_ms`), summed,
    and at once when `flush()` asks: what the analytics read is then complete."""
    k = stores.keys
    logger = ImpressionLogger(stores.redis, k, flush_ms=5, counts_ms=600_000)
    logger.start()
    try:
        logger.log(_response("w1"))
        _wait(lambda: bool(stores.redis.exists(k.rec_info("w1"))))
        _wait(lambda: _stats(stores).get("imp|homepage|*|B") == 2)  # the first window: at once
        for rec in ("w2", "w3"):
            logger.log(_response(rec))
        _wait(lambda: stores.redis.exists(k.rec_info("w2"), k.rec_info("w3")) == 2)
        assert _stats(stores)["imp|homepage|*|B"] == 2  # the next window is not due
        assert logger.flush()
        assert _stats(stores) == {
            "imp|homepage|content|B": 3,
            "imp|homepage|popular|B": 3,
            "imp|homepage|cf|B": 3,
            "imp|homepage|*|B": 6,
        }
    finally:
        logger.stop()


def test_a_list_served_before_its_users_erasure_is_never_written_after_it(stores: Any) -> None:
    """A list queued before `DELETE /v1/users/u` and written after the erasure ran would bring
    the user's id back: the writer drops it; the user's lists served afterwards are kept."""
    k = stores.keys
    logger = ImpressionLogger(stores.redis, k)
    before = to_record(_response("rec-before"), at=time.time() - 1)
    ErasureRecords(stores.redis, k).begin("u")
    after = to_record(_response("rec-after"), at=time.time() + 1)
    other = to_record({**_response("rec-other"), "user_id": "someone"}, at=time.time() - 1)
    assert before and after and other
    dropped = _dropped("erased")
    stores.redis.set(k.pages("rec-before"), json.dumps({"owner": "u"}))  # as paging writes it
    logger.write([before, after, other])
    assert not stores.redis.exists(k.rec_info("rec-before"), k.pages("rec-before"))
    assert stores.redis.exists(k.rec_info("rec-after"), k.rec_info("rec-other")) == 2
    written = {
        json.loads(f[b"data"])["id"]
        for shard in range(RECS_SHARDS)
        for _, f in stores.redis.xrange(k.impressions(shard))
    }
    assert written == {"rec-after", "rec-other"}
    assert _dropped("erased") - dropped == 1


def _click(item: str, kind: str = "click", rec: str | None = REC, **kw: Any) -> Interaction:
    return Interaction(user_id="u", item_id=item, type=kind, recommendation_id=rec, **kw)


def test_clicks_are_attributed_once_per_served_item(stores: Any, worker: Worker) -> None:
    _logged(stores, _response())
    ids = ev.publish(stores.redis, stores.keys, [ev.interaction_event(_click("a"))])
    assert worker.drain() == 1
    worker._process(
        worker.partition(0), stores.redis.xrange(stores.keys.stream(0), ids[0], ids[0])
    )  # redelivery
    assert apply_interactions(stores, [("9-0", _click("a", "purchase"))]) == 1  # another event
    clicks = {f: n for f, n in _stats(stores).items() if f.startswith("click|")}
    assert clicks == {
        "click|homepage|content|B": 1,
        "click|homepage|popular|B": 1,
        "click|homepage|*|B": 1,
    }
    assert _stats(stores)["imp|homepage|*|B"] == 2  # attribution never touches impressions


def test_only_positive_events_on_served_items_are_attributed(stores: Any) -> None:
    _logged(stores, _response())
    events = [
        _click("b", "view"),
        _click("b", "skip"),
        _click("b", "dislike"),
        _click("b", "rate", value=3.0),
        _click("b", rec=None),  # no recommendation cited
        _click("b", rec="unknown"),  # a list never logged (or expired)
        _click("zzz"),  # not in the cited list
        Interaction(user_id="other", item_id="b", type="click", recommendation_id=REC),
    ]
    applied = apply_interactions(stores, [(f"{n}-0", e) for n, e in enumerate(events, 1)])
    assert applied == len(events)
    assert not [f for f in _stats(stores) if f.startswith("click|")]
    assert apply_interactions(stores, [("20-0", _click("b", "rate", value=4.0))]) == 1
    clicks = {f: n for f, n in _stats(stores).items() if f.startswith("click|")}
    assert clicks == {"click|homepage|cf|B": 1, "click|homepage|*|B": 1}


def test_dislikes_and_skips_are_remembered_until_a_later_positive(stores: Any) -> None:
    neg = stores.keys.negatives("u")
    t = 1_700_000_000.0
    apply_interactions(
        stores,
        [
            ("1-0", _click("x", "dislike", rec=None, timestamp=t)),
            ("2-0", _click("y", "skip", rec=None, timestamp=t + 1)),
            ("3-0", _click("x", "like", rec=None, timestamp=t - 10)),  # older: not a change
        ],
    )
    assert stores.redis.zscore(neg, "x") == t and stores.redis.zscore(neg, "y") == t + 1
    apply_interactions(stores, [("4-0", _click("x", "like", rec=None, timestamp=t + 5))])
    assert stores.redis.zscore(neg, "x") is None  # changed their mind
    assert stores.redis.zscore(neg, "y") == t + 1
    few = replace(stores, settings=replace(stores.settings, negatives_len=3))
    apply_interactions(
        few,
        [(f"1{n}-0", _click(f"n{n}", "skip", rec=None, timestamp=t + 10 + n)) for n in range(5)],
    )
    assert [i.decode() for i in stores.redis.zrange(neg, 0, -1)] == ["n2", "n3", "n4"]


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_onboarding_preferences_give_a_category_vector(stores: Any) -> None:
    apply_item_upserts(stores, [Item(item_id=i, **b) for i, b in CATALOGUE.items()])
    vecs = stores.items.vectors(CATALOGUE)
    space = [vecs[f"space-{n}"] for n in range(1, 5)]
    cooking = [vecs[f"cook-{n}"] for n in range(1, 5)]

    def pvec(uid: str) -> np.ndarray | None:
        raw = stores.redis.hget(stores.keys.user(uid), "pvec")
        return np.frombuffer(raw, dtype=np.float32) if raw else None

    # Nothing trends in "space": its items come from Milvus.
    apply_user_updates(stores, [User(user_id="p", preferences=Preferences(categories=["space"]))])
    p = pvec("p")
    assert p is not None and abs(float(np.linalg.norm(p)) - 1) < 1e-5
    assert min(_cos(p, v) for v in space) > 0.5
    assert max(_cos(p, v) for v in cooking) < 0.4
    # "cooking" trends: its top items stand for it.
    apply_interactions(stores, [("1-0", Interaction(user_id="z", item_id="cook-2", type="like"))])
    assert stores.redis.zcard(stores.keys.trending("cat:cooking")) == 1
    apply_user_updates(stores, [User(user_id="q", preferences=Preferences(categories=["cooking"]))])
    q = pvec("q")
    assert q is not None and _cos(q, vecs["cook-2"]) > 0.99
    assert _cos(q, np.mean(cooking, axis=0)) > 0.5 > _cos(q, np.mean(space, axis=0))
    # Preferences cleared: no onboarding vector any more; the version moves either way.
    ver = int(stores.redis.hget(stores.keys.user("p"), "ver"))
    apply_user_updates(stores, [User(user_id="p")])
    assert pvec("p") is None
    assert int(stores.redis.hget(stores.keys.user("p"), "ver")) == ver + 1


def _recent_hours() -> set[int]:
    now = int(time.time() // 3600)
    return {now - 1, now}


def test_surface_metrics_show_impressions_clicks_and_ctr(
    client: TestClient, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"items": [{"item_id": i, **b} for i, b in CATALOGUE.items()]}
    assert client.post("/v1/items/batch", json=body).status_code == 202
    worker.drain()  # the catalogue first: a profile needs its items' vectors
    client.post("/v1/interactions", json={"user_id": "ann", "item_id": "space-1", "type": "like"})
    worker.drain()
    res = client.get("/v1/recommendations", params={"user_id": "ann", "limit": 4}).json()
    assert res["items"]
    state = client.app.state.vantage  # type: ignore[attr-defined]
    # recommend() logged the list (asynchronously): the API's own impression, nothing added.
    rid = res["recommendation_id"]
    _wait(lambda: state.redis.exists(state.keys.rec_info(rid)) == 1)
    assert state.impressions.flush()  # its counters too (summed for up to a second)
    first = res["items"][0]["item_id"]
    clicks = [
        {"user_id": "ann", "item_id": first, "type": "click", "recommendation_id": rid},
        {"user_id": "ann", "item_id": first, "type": "watch", "recommendation_id": rid},
    ]
    assert client.post("/v1/interactions", json=clicks).status_code == 202
    worker.drain()

    rows = client.get("/v1/admin/metrics/surfaces").json()["rows"]
    total = next(r for r in rows if r["source"] == "*")
    n = len(res["items"])
    assert total == {
        "surface": "homepage",
        "source": "*",
        "variant": "default",
        "impressions": n,
        "clicks": 1,
        "ctr": round(1 / n, 4),
    }
    assert rows[0] == total  # the all-sources row leads its surface and variant
    for src in res["items"][0]["sources"]:
        row = next(r for r in rows if r["source"] == src)
        assert row["clicks"] == 1 and row["impressions"] >= 1
    assert client.get("/v1/admin/metrics/surfaces", params={"surface": "related"}).json() == {
        "rows": []
    }
    only = client.get("/v1/admin/metrics/surfaces", params={"variant": "default"}).json()
    assert only["rows"] == rows
    bad = client.get("/v1/admin/metrics/surfaces", params={"surface": "Home Page"})
    assert bad.status_code == 422

    # The same figures per hour, summed over the test's hour or two, each bucket expiring.
    hourly = client.get("/v1/admin/metrics/surfaces/hourly", params={"hours": 3}).json()
    hours = {r["hour"] for r in hourly["rows"]}
    assert hourly["hours"] == 3 and hours <= {h * 3600 for h in _recent_hours()}
    summed: dict[tuple[str, str, str], list[int]] = {}
    for r in hourly["rows"]:
        c = summed.setdefault((r["surface"], r["source"], r["variant"]), [0, 0])
        c[0], c[1] = c[0] + r["impressions"], c[1] + r["clicks"]
    assert summed == {
        (r["surface"], r["source"], r["variant"]): [r["impressions"], r["clicks"]] for r in rows
    }
    for hour in hours:
        key = state.keys.surface_stats_hour(state.keys.rec_shard(rid), hour // 3600)
        assert 7 * 86_400 < state.redis.ttl(key) <= 8 * 86_400
    stars = client.get("/v1/admin/metrics/surfaces/hourly", params={"source": "*"}).json()
    assert [r["source"] for r in stars["rows"]] == ["*"] and stars["hours"] == 24
    # Coverage and diversity on /metrics: the distinct items served today, the catalogue size.
    monkeypatch.setattr(collectors, "CATALOGUE_COUNT_EVERY_S", 0.0)  # else counted at start
    text = client.get("/metrics").text
    served = re.search(r'^vantage_items_served_distinct\{surface="homepage"\} (\S+)', text, re.M)
    assert served and float(served.group(1)) == n, text[-2000:]
    assert re.search(rf"^vantage_catalogue_items {float(len(CATALOGUE))}$", text, re.M)
    lists = re.search(
        r'^vantage_list_category_diversity_count\{surface="homepage"\} (\S+)', text, re.M
    )
    assert lists and float(lists.group(1)) >= 1
    for bad_hours in (0, 193):
        res = client.get("/v1/admin/metrics/surfaces/hourly", params={"hours": bad_hours})
        assert res.status_code == 422 and "hours" in res.json()["error"]["message"]


def test_the_served_list_record_is_what_the_attribution_script_reads(stores: Any) -> None:
    """The record of core/served_list.py, as the impression log writes it, drives attribution."""
    served = ServedList(
        id="rec-contract",
        user="",  # served without a user id: a click from anyone counts
        surface="related",
        variant="A",
        t=1_700_000_000.5,
        cached=True,
        degraded=False,
        items=(
            ServedItem("a", ("cf", "content"), 1, False, 0.5),
            ServedItem("b", (), 2, True, None),
        ),
    )
    ImpressionLogger(stores.redis, stores.keys).write([served])
    (_, fields), *_ = stores.redis.xrange(stores.keys.impressions(stores.keys.rec_shard(served.id)))
    assert ServedList.from_json(fields[b"data"]) == served
    stored = stores.redis.hgetall(stores.keys.rec_info(served.id))
    got = {f.decode(): Attribution.from_json(v) for f, v in stored.items()}
    assert got["a"] == Attribution("", ("cf", "content"), 1, "related", "A", False, 0.5)
    assert got["b"] == Attribution("", (), 2, "related", "A", True, None)
    events = [
        ("1-0", Interaction(user_id="x", item_id="a", type="like", recommendation_id=served.id)),
        ("2-0", Interaction(user_id="y", item_id="b", type="click", recommendation_id=served.id)),
        ("3-0", Interaction(user_id="y", item_id="a", type="watch", recommendation_id=served.id)),
    ]
    assert apply_interactions(stores, events, refresh=False) == 3
    clicks = {f: n for f, n in _stats(stores).items() if f.startswith("click|")}
    assert clicks == {
        "click|related|cf|A": 1,  # a: clicked twice, counted once
        "click|related|content|A": 1,
        "click|related|*|A": 2,  # a and b
    }
