"""Guests' sessions on real servers: a session's events personalise its own lists at once, a
merge folds them into the user exactly once (even when the worker applies the merge twice),
idle sessions expire, and neither id or both is a clear 422."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from core import events as ev
from core.domain import Interaction, UserInteraction, session_owner
from core.settings import Settings
from core.stores.sessions import Merge
from indexing.apply import sessions as apply_sessions
from indexing.apply.erasure import log_records
from tests.integration.test_surfaces import app_client, ids, recs, setup
from training.interaction import logged_interactions

GUEST = "guest-7"
OWNER = session_owner(GUEST)
COOKING = ["cooking-2", "cooking-3", "cooking-4"]


def _browse(c: TestClient, worker: Any, session: str = GUEST) -> None:
    events = [{"session_id": session, "item_id": i, "type": "like"} for i in COOKING]
    assert c.post("/v1/interactions", json=events).status_code == 202
    worker.drain()


def _cooking(body: dict[str, Any]) -> int:
    return sum(i.startswith("cooking-") for i in ids(body)[:5])


def test_a_session_personalises_its_own_lists_at_once(settings: Settings, worker: Any) -> None:
    with app_client(settings) as c:
        setup(c, worker)
        state = c.app.state.vantage  # type: ignore[attr-defined]
        before = recs(c, session_id=GUEST)
        assert before["user_id"] is None and before["session_id"] == GUEST
        pop = state.redis.zscore(state.keys.popularity, "cooking-2") or 0
        _browse(c, worker)
        after = recs(c, session_id=GUEST)
        assert _cooking(after) > _cooking(before), (ids(before), ids(after))
        assert not set(COOKING) & set(ids(after))  # what the guest liked is not served again
        # The session's events count for popularity, as anyone's do; the session is no user.
        assert (state.redis.zscore(state.keys.popularity, "cooking-2") or 0) > pop
        assert not state.redis.sismember(state.keys.users_index, OWNER)
        assert state.redis.llen(state.keys.session_journal(OWNER)) == 3
        # Another guest is untouched by this one's clicks.
        assert recs(c, session_id="guest-8")["items"]
        # A user with a session's name is someone else.
        assert c.get(f"/v1/users/{GUEST}").status_code == 404


def test_merge_folds_the_session_into_the_user_exactly_once(
    settings: Settings, worker: Any
) -> None:
    with app_client(settings) as c:
        setup(c, worker)
        state = c.app.state.vantage  # type: ignore[attr-defined]
        _browse(c, worker)
        pop = state.redis.zscore(state.keys.popularity, "cooking-2")
        url = "/v1/users/fan/merge"
        first = c.post(url, json={"session_id": GUEST})
        assert first.status_code == 202 and first.json()["status"] == "queued", first.text
        again = c.post(url, json={"session_id": GUEST})  # before the worker: queued again
        assert again.status_code == 202
        worker.drain()
        hist = c.get("/v1/users/fan", params={"recent": 50}).json()["recent"]
        assert set(COOKING) <= {h["item_id"] for h in hist}
        aff = state.redis.hgetall(state.keys.affinity("fan"))
        assert {k.decode() for k in aff} >= set(COOKING)
        weights = {k.decode(): float(v) for k, v in aff.items()}
        # Folded in once although two merge events were queued; popularity counted once.
        assert state.redis.zscore(state.keys.popularity, "cooking-2") == pop
        assert not state.redis.exists(state.keys.history(OWNER), state.keys.session_journal(OWNER))
        done = c.post(url, json={"session_id": GUEST})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "merged" and done.json()["merged_events"] == 3
        other = c.post("/v1/users/cook/merge", json={"session_id": GUEST})
        assert other.status_code == 409
        assert "another user" in other.json()["error"]["message"]
        worker.drain()
        again_aff = state.redis.hgetall(state.keys.affinity("fan"))
        assert {k.decode(): float(v) for k, v in again_aff.items()} == weights
        # The guest goes on browsing in the same session: a new merge folds in what came since.
        later = {"session_id": GUEST, "item_id": "garden-3", "type": "like"}
        assert c.post("/v1/interactions", json=[later]).status_code == 202
        worker.drain()
        assert c.post(url, json={"session_id": GUEST}).status_code == 202
        worker.drain()
        hist = c.get("/v1/users/fan", params={"recent": 50}).json()["recent"]
        assert "garden-3" in {h["item_id"] for h in hist}
        final = c.post(url, json={"session_id": GUEST}).json()
        assert final["status"] == "merged" and final["merged_events"] == 1, final


def test_a_merge_applied_twice_after_a_crash_copies_once(stores: Any, worker: Any) -> None:
    """The worker died after storing the copies but before marking the merge applied: the
    redelivered merge event stores nothing more."""
    guest = "crashy"
    owner = session_owner(guest)
    events = [
        ev.interaction_event(Interaction(user_id=owner, item_id=f"item-{n}", type="click"))
        for n in range(4)
    ]
    ev.publish(stores.redis, stores.keys, events)
    worker.drain()
    assert stores.redis.llen(stores.keys.session_journal(owner)) == 4
    merge_ev = ev.Event("1-1", ev.SESSION_MERGED, {"user_id": owner, "into": "u1"}, time.time())
    journal = stores.redis.lrange(stores.keys.session_journal(owner), 0, -1)
    assert apply_sessions.merge(stores, owner, "u1", merge_ev) == 4
    # Rewind to the crash: the journal back, the record not applied.
    stores.redis.rpush(stores.keys.session_journal(owner), *journal)
    apply_sessions.store(stores).drop_merge(guest)
    assert apply_sessions.merge(stores, owner, "u1", merge_ev) == 4
    worker.drain()
    copies = stores.redis.hgetall(stores.keys.affinity("u1"))
    assert len(copies) == 4
    assert all(float(v) == float(copies[b"item-0"]) for v in copies.values())  # each once
    # A newer merge was asked (the guest went on): the old merge's event, delivered again,
    # is ignored; the newer one's event folds the session in.
    ev.publish(stores.redis, stores.keys, events[:1])
    worker.drain()
    apply_sessions.store(stores).update_merge(guest, Merge(user_id="u1", at=time.time()))
    assert apply_sessions.merge(stores, owner, "u1", merge_ev) == 0
    newer = ev.Event("1-2", ev.SESSION_MERGED, {"user_id": owner, "into": "u1"}, time.time())
    assert apply_sessions.merge(stores, owner, "u1", newer) == 1
    # Neither the session's events nor its merge reach the durable log; the copies do.
    applied = [
        ev.Event("2-1", ev.INTERACTION_LOGGED, {"user_id": owner, "item_id": "x"}, 0.0),
        ev.Event("2-2", ev.SESSION_MERGED, {"user_id": owner, "into": "u1"}, 0.0),
        ev.Event("2-3", ev.INTERACTION_LOGGED, {"user_id": "u1", "item_id": "x"}, 0.0),
    ]
    assert [r["id"] for r in log_records(applied)] == ["2-3"]


def test_idle_sessions_expire_and_active_ones_stay(stores: Any, worker: Any) -> None:
    sessions = apply_sessions.store(stores)
    ttl = stores.settings.session_ttl_s
    for guest in ("old", "busy"):
        owner = session_owner(guest)
        sessions.touch({guest})
        interaction = Interaction(user_id=owner, item_id="item-1", type="click")
        ev.publish(stores.redis, stores.keys, [ev.interaction_event(interaction)])
    worker.drain()
    now = time.time()
    sessions.touch({"old"}, now=now - ttl - 5)
    assert apply_sessions.sweep_idle(stores, now=now) == 1
    sessions.touch({"busy"}, now=now - ttl - 5)  # swept next...
    stores.redis.delete(stores.keys.sessions + ":sweep")
    assert apply_sessions.sweep_idle(stores, now=now) == 2  # ("old" not applied yet: queued again)
    sessions.touch({"busy"}, now=now + 1)  # ... but an event came in meanwhile
    worker.drain()
    assert not stores.redis.exists(stores.keys.history(session_owner("old")))
    assert stores.redis.exists(stores.keys.history(session_owner("busy")))
    assert sessions.last_seen("old") is None and sessions.last_seen("busy") == now + 1


def test_one_of_user_id_and_session_id(client: TestClient) -> None:
    for params in ({}, {"user_id": "u", "session_id": "s"}):
        r = client.get("/v1/recommendations", params=params)
        assert r.status_code == 422 and "exactly one" in r.json()["error"]["message"], r.text
    for body in (
        {"item_id": "i", "type": "click"},
        {"user_id": "u", "session_id": "s", "item_id": "i", "type": "click"},
        {"session_id": None, "user_id": "u", "item_id": "i", "type": "click"},
        {"session_id": "~s:x", "item_id": "i", "type": "click"},
    ):
        r = client.post("/v1/interactions", json=body)
        assert r.status_code == 422, (body, r.text)
    r = client.post("/v1/users/u/merge", json={"session_id": "bad id"})
    assert r.status_code == 422


def test_training_reads_a_merges_copies_as_the_users_own(tmp_path: Any) -> None:
    """A merge's copy names the session it came from; training reads it as the user's
    interaction, valid as a bulk import's record (the re-ranker imports its feature period)."""
    from core.stores.eventlog import EventLog

    copy = Interaction(user_id="u1", item_id="x", type="like", merged_from=session_owner("g"))
    kind, data = ev.interaction_event(copy, now=100.0)
    EventLog(tmp_path / "events", "w").append([{"type": kind, "data": data, "id": "1-1", "t": 1}])
    (got,) = logged_interactions(tmp_path / "events")
    assert UserInteraction.model_validate(got).item_id == "x" and "merged_from" not in got
