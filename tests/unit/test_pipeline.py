"""The recommendation pipeline end to end on the in-memory stores: no servers, milliseconds.

`tests/contract` proves the in-memory stores behave like Milvus and Redis; the integration
tests run the same flows on the real servers through the API.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from core.candidate_sets import queue_bulk, refresh_queued
from core.domain import Item, UserFields
from core.errors import NotFound
from core.resilience import DependencyDown
from core.rules import Rule, RuleSnapshot
from core.settings import Settings
from core.stores.item_rows import item_row
from core.stores.protocols import POPULAR, CandidateSet
from core.stores.registry import CFModel
from embeddings.ease import ItemNeighbours
from embeddings.ials import ALSModel
from serving import features, itemmeta, sets
from serving.recommend import recommend
from serving.request import RecRequest
from serving.retrieval import Candidate, Constraints
from serving.sets import current_tag
from serving.state import MemoryState, memory_state

N_ITEMS = 60
ADULT = 18


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


@dataclass
class World:
    state: MemoryState
    vecs: dict[str, np.ndarray]


@pytest.fixture
def world() -> World:
    """60 items in 4 categories (every fifth for adults only, i59 hidden), all in the popular
    board; user `fan` has a content profile near i0 and has seen i1."""
    settings = Settings(env="test", candidates={"enabled": True})
    state = memory_state(settings)
    rng = np.random.default_rng(3)
    dim, cf_dim = settings.models.text_dim, settings.models.cf_dim
    vecs, rows = {}, []
    for k in range(N_ITEMS):
        item = Item(
            item_id=f"i{k}",
            title=f"Item {k}",
            categories=[f"cat{k % 4}"],
            creator_id=f"creator{k % 7}",
            maturity=ADULT if k % 5 == 4 else 0,
            status="hidden" if k == 59 else "active",
            published_at=1_600_000_000 + k * 86_400,
        )
        vecs[item.item_id] = _unit(rng.normal(size=dim))
        rows.append(item_row(item, vecs[item.item_id], _unit(rng.normal(size=cf_dim))))
        state.catalogue.add(POPULAR, item.item_id, float(N_ITEMS - k))
    state.items.upsert(rows)
    state.users.set_profile("fan", UserFields(birth_year=1980))
    state.users.set_vector("fan", "cvec", _unit(vecs["i0"] + 0.05 * rng.normal(size=dim)))
    state.users.add_history("fan", "i1", time.time() - 60)
    return World(state, vecs)


def _ids(result: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in result["items"]]


def _maturity(w: World, ids: list[str]) -> list[int]:
    return [w.state.items.get([i], fields=("maturity",))[i]["maturity"] for i in ids]


def test_homepage_is_personal_safe_and_logged(world: World) -> None:
    out = recommend(world.state, RecRequest(user_id="fan", surface="homepage", limit=10))
    ids = _ids(out)
    assert len(ids) == 10 and len(set(ids)) == 10 and not out["degraded"]
    assert "i0" in ids[:3]  # the nearest item to the user's profile leads
    assert "i1" not in ids  # seen
    assert "i59" not in ids  # hidden
    assert [i["position"] for i in out["items"]] == list(range(1, 11))
    assert all(i["sources"] and i["reasons"] for i in out["items"])
    assert world.state.impressions.logged[-1]["recommendation_id"] == out["recommendation_id"]


def test_a_child_never_gets_adult_items(world: World) -> None:
    world.state.users.set_profile("kid", UserFields(birth_year=time.gmtime().tm_year - 9))
    world.state.users.set_vector("kid", "cvec", world.vecs["i4"])  # an adult item's twin
    out = recommend(world.state, RecRequest(user_id="kid", surface="homepage", limit=20))
    assert out["items"] and max(_maturity(world, _ids(out))) == 0


def test_a_new_user_gets_popular_items(world: World) -> None:
    out = recommend(world.state, RecRequest(user_id="stranger", surface="homepage", limit=5))
    ids = _ids(out)
    assert len(ids) == 5 and not out["degraded"]
    assert all({"popular", "trending"} & set(i["sources"]) for i in out["items"])
    # Unknown age: the unknown-age maturity ceiling applies.
    ceiling = world.state.settings.serving.unknown_age_max_maturity
    assert max(_maturity(world, ids)) <= ceiling


def test_related_is_similar_to_the_item_and_never_the_item(world: World) -> None:
    req = RecRequest(user_id="fan", surface="related", limit=5, item_id="i10")
    out = recommend(world.state, req)
    ids = _ids(out)
    assert "i10" not in ids and ids
    sims = {i: float(world.vecs[i] @ world.vecs["i10"]) for i in world.vecs if i != "i10"}
    nearest_allowed = max((i for i in sims if i not in {"i59"}), key=sims.__getitem__)
    assert nearest_allowed in ids[:3]
    assert any(r.startswith("similar to Item 10") for i in out["items"] for r in i["reasons"])
    with pytest.raises(NotFound):
        recommend(world.state, RecRequest(user_id="fan", surface="related", limit=5, item_id="no"))
    world.state.catalogue.tombstone(["i10"])
    with pytest.raises(NotFound):  # deleted: the same answer as never existed
        recommend(world.state, req)


def test_a_cached_list_drops_items_deleted_since(world: World) -> None:
    req = RecRequest(user_id="fan", surface="homepage", limit=10)
    first = recommend(world.state, req)
    again = recommend(world.state, req)
    assert again["cached"] and _ids(again) == _ids(first)
    assert again["recommendation_id"] != first["recommendation_id"]
    gone = _ids(first)[2]
    world.state.catalogue.tombstone([gone])
    third = recommend(world.state, req)
    assert third["cached"] and gone not in _ids(third) and len(_ids(third)) == 9
    world.state.users.add_history("fan", _ids(first)[0], time.time())  # a new user version
    fresh = recommend(world.state, req)
    assert not fresh["cached"] and _ids(first)[0] not in _ids(fresh)


def test_a_cache_hit_reads_the_users_context_without_the_history(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []
    read = world.state.users.context

    def context(user_id: str, *, recent_n: int) -> Any:
        asked.append(recent_n)
        return read(user_id, recent_n=recent_n)

    monkeypatch.setattr(world.state.users, "context", context)
    req = RecRequest(user_id="fan", surface="homepage", limit=10)
    first = recommend(world.state, req)  # a miss: the head, then the whole context
    history_n = world.state.settings.serving.history_exclude
    assert asked == [0, history_n] and not first["cached"] and "i1" not in _ids(first)
    asked.clear()
    assert recommend(world.state, req)["cached"] and asked == [0]
    asked.clear()
    recommend(world.state, RecRequest(user_id="fan", surface="homepage", limit=10, debug=True))
    assert asked == [history_n]  # nothing cached to look up: read once


def test_a_live_request_ranks_on_the_history_its_context_read(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = world.state
    for k in range(2, 40):
        st.users.add_history("fan", f"i{k}", time.time() - 600 + k)
    ctx = st.users.context("fan", recent_n=st.settings.serving.history_exclude)
    cands = [Candidate(f"i{k}", {}, ["popular"], {"popular": 1.0}) for k in range(40, 50)]
    stored = features.load_inputs(st, replace(ctx, history_len=None), cands)  # the store's read
    asked: list[str] = []
    monkeypatch.setattr(st.users, "history", lambda user_id, **_: asked.append(user_id))
    live = features.load_inputs(st, ctx, cands)
    assert asked == [] and live.history_len == stored.history_len == 39
    assert live.last_ts == stored.last_ts and live.recent_categories == stored.recent_categories
    assert live.hour_categories == stored.hour_categories
    assert np.array_equal(live.recent_content, stored.recent_content)
    # A context that read fewer items than the features use reads the store.
    with contextlib.suppress(AttributeError):
        features.load_inputs(
            st, replace(ctx, recent=ctx.recent[:3], recent_ts=ctx.recent_ts[:3]), cands
        )
    assert asked == ["fan"]


def test_a_stored_list_is_read_in_slices_until_its_quota_is_met(world: World) -> None:
    state = world.state
    hits = [(f"i{k}", 1.0 - k / 100) for k in range(N_ITEMS)] + [("gone", 0.0)]
    s = CandidateSet("u:fan", "tag", time.time(), {"similar_item": hits})
    cons = Constraints(max_maturity=0, exclude=("i2", "i3"))  # and every fifth is adult
    read: list[int] = []
    get = state.item_cache.get

    def counted(items: Any, ids: Any, changed: Any = None) -> Any:
        read.append(len(ids))
        return get(items, ids, changed)

    state.item_cache.get = counted  # type: ignore[method-assign]
    for quota in (1, 7, 20, 40, 100):
        read.clear()
        with itemmeta.marks_once():
            got = sets.listed(state, s, "similar_item", reason="r", constraints=cons, quota=quota)
        # What reading the whole list gives: the first `quota` that pass, in stored order.
        passing = [
            i for i, _ in hits if i != "gone" and int(i[1:]) % 5 != 4 and i not in ("i2", "i3")
        ]
        assert [c.item_id for c in got] == passing[:quota]
        assert sum(read) < len(hits) or quota >= 40  # the rest never looked up


def test_pins_and_buries_apply(world: World) -> None:
    now = time.time()
    stamp = {"created_at": now, "updated_at": now}
    rules = (
        Rule(rule_id="pin", action="pin", item_id="i30", position=1, **stamp),
        Rule(rule_id="bury", action="bury", item_id="i0", weight=10, **stamp),
        Rule(rule_id="old", action="pin", item_id="i31", position=2, expires_at=now - 1, **stamp),
    )
    world.state.rules.current = RuleSnapshot(1, rules)
    out = recommend(world.state, RecRequest(user_id="fan", surface="homepage", limit=10))
    ids = _ids(out)
    assert ids[0] == "i30"
    assert "i0" not in ids[:5]  # buried below where its score put it
    assert ids[1] != "i31"  # an expired pin is ignored


class _Down:
    """A store whose server is gone: every call raises what real stores raise (its name, a
    plain attribute of the real stores, stays readable)."""

    def __init__(self, reason: str, collection: str = "memory_items"):
        self.reason = reason
        self.collection = collection

    def __getattr__(self, name: str) -> Any:
        def fail(*_: Any, **__: Any) -> Any:
            raise DependencyDown(self.reason)

        return fail


def test_redis_down_serves_the_snapshot_safely(world: World) -> None:
    state = world.state
    state.snapshot.refresh(state)
    state.users = _Down("redis_unavailable")  # type: ignore[assignment]
    state.catalogue = _Down("redis_unavailable")  # type: ignore[assignment]
    out = recommend(state, RecRequest(user_id="fan", surface="homepage", limit=10))
    assert out["degraded"] and out["degraded_reasons"] == ["redis_unavailable"]
    ids = _ids(out)
    assert len(ids) == 10 and "i59" not in ids
    # No context: the degraded ceiling (all ages by default) applies.
    assert max(_maturity(world, ids)) <= state.settings.serving.degraded_max_maturity


def test_milvus_down_serves_the_last_good_list(world: World) -> None:
    state = world.state
    req = RecRequest(user_id="fan", surface="homepage", limit=10)
    good = recommend(state, req)
    state.snapshot.refresh(state)
    index = state.items
    state.items = _Down("milvus_unavailable")  # type: ignore[assignment]
    state.candidates.sets.clear()  # no candidate set: this request would retrieve from Milvus
    state.users.add_history("fan", "i2", time.time())  # a new version: no cache hit
    out = recommend(state, req)
    assert out["degraded"] and "served_last_good_list" in out["degraded_reasons"]
    assert "milvus_unavailable" in out["degraded_reasons"]
    ids = _ids(out)
    assert ids and set(ids) <= set(_ids(good)) | set(state.snapshot.ids())
    assert "i2" not in ids  # seen since: still excluded
    state.items = index


def test_the_last_good_list_is_written_again_after_a_minute_or_when_its_filters_change(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, written = world.state, []
    put = state.cache.put

    def counted(entries: Any) -> None:
        written.extend(v for v, _ in entries.values() if "max_maturity" in v)
        put(entries)

    monkeypatch.setattr(state.cache, "put", counted)
    for k in range(3):  # three lists a second apart, each a new version of the user
        state.users.add_history("fan", f"i{10 + k}", time.time())
        recommend(state, RecRequest(user_id="fan", surface="homepage", limit=10))
    assert len(written) == 1  # what an outage serves: a list under a minute old serves as well
    recommend(state, RecRequest(user_id="fan", surface="homepage", limit=10, region="FR"))
    assert [w["region"] for w in written] == [None, "FR"]  # other filters: written at once
    state.last_good.every_s = 0.0
    state.users.add_history("fan", "i20", time.time())  # a new version: no cache hit
    recommend(state, RecRequest(user_id="fan", surface="homepage", limit=10, region="FR"))
    assert len(written) == 3


def test_debug_shows_every_stage_and_is_not_an_impression(world: World) -> None:
    before = len(world.state.impressions.logged)
    out = recommend(world.state, RecRequest(user_id="fan", surface="homepage", limit=5, debug=True))
    debug = out["debug"]
    assert {"context_ms", "candidates_ms", "ranking_ms", "policy_ms", "total_ms"} <= set(
        debug["stages"]
    )
    assert {s["name"] for s in debug["sources"]} >= {"personal", "popular"}
    assert debug["generated"] >= debug["after_hard_filters"] >= 5
    assert len(world.state.impressions.logged) == before


# -- Candidate sets ----------------------------------------------------------------------


def _debug(w: World, user: str = "fan", **kw: Any) -> dict[str, Any]:
    req = RecRequest(
        user_id=user, surface=kw.pop("surface", "homepage"), limit=10, debug=True, **kw
    )
    return dict(recommend(w.state, req))


def _origin(out: dict[str, Any], source: str) -> str:
    return next(s["origin"] for s in out["debug"]["sources"] if s["name"] == source)


def _refresh(w: World) -> int:
    """What the worker's refresher does: build the queued sets (how many were written)."""
    state = w.state
    return refresh_queued(
        state.items,
        state.users,
        state.candidates,
        settings=state.settings,
        tag=current_tag(state),
        n=100,
    )[1]


def test_a_missing_set_is_queued_served_live_then_built_and_served(world: World) -> None:
    first = _debug(world)
    assert _origin(first, "personal") == "miss" and _origin(first, "popular") == "live"
    assert world.state.candidates.get(["u:fan"]) == {}
    assert "u:fan" in world.state.candidates.stale_marks  # queued for the refresher
    assert _refresh(world) == 1 and world.state.candidates.queued() == 0
    kept = world.state.candidates.get(["u:fan"])["u:fan"]
    assert kept.sources["content_profile"] and "i1" not in kept.ids()  # seen: left out
    again = _debug(world)
    assert _origin(again, "personal") == "set"
    assert _ids(again)[:5] == _ids(first)[:5]  # exploration may differ from position 6
    related = _debug(world, surface="related", item_id="i10")
    assert _origin(related, "similar_item") == "miss" and _refresh(world) == 1
    assert _origin(_debug(world, surface="related", item_id="i10"), "similar_item") == "set"
    assert "i10" not in world.state.candidates.get(["i:i10"])["i:i10"].ids()


def test_a_new_tag_queues_every_held_set_most_recent_first(world: World) -> None:
    state = world.state
    for user in ("fan", "kid"):
        state.users.set_vector(user, "cvec", world.vecs["i3"])
        _debug(world, user)
        _refresh(world)
    ttl = state.settings.candidates.ttl_s
    assert queue_bulk(state.candidates, current_tag(state), ttl_s=ttl) == 2
    assert queue_bulk(state.candidates, current_tag(state), ttl_s=ttl) == 0  # done once
    assert [o for o, _ in state.candidates.stale(10)] == ["u:kid", "u:fan"]  # newest first
    state.items._collection = "items_v2"  # a re-index swap
    _refresh(world)
    assert state.candidates.queued() == 0
    assert {s.tag for s in state.candidates.get(["u:fan", "u:kid"]).values()} == {
        current_tag(state)
    }


def test_with_sets_and_a_warm_cache_milvus_is_not_called(world: World) -> None:
    _debug(world)
    _debug(world, surface="related", item_id="i10")
    _refresh(world)
    world.state.snapshot.refresh(world.state)
    world.state.items = _Down("milvus_unavailable")  # type: ignore[assignment]
    home = _debug(world)
    assert not home["degraded"], home["degraded_reasons"]
    assert _origin(home, "personal") == "set" and len(home["items"]) == 10
    related = _debug(world, surface="related", item_id="i10")
    assert not related["degraded"] and related["items"]


def test_the_contextual_source_blends_from_both_sets_as_live_retrieval_does(world: World) -> None:
    live = _debug(world, surface="contextual", item_id="i10")
    assert _origin(live, "contextual") == "miss"
    assert _refresh(world) == 2  # the user's set and the context item's
    from_sets = _debug(world, surface="contextual", item_id="i10")
    assert _origin(from_sets, "contextual") == "set"
    assert _ids(from_sets)[:5] == _ids(live)[:5]
    world.state.items = _Down("milvus_unavailable")  # type: ignore[assignment]
    again = _debug(world, surface="contextual", item_id="i10")
    assert not again["degraded"] and _ids(again)[:5] == _ids(live)[:5]


def test_a_request_from_sets_reads_each_items_marks_once(world: World) -> None:
    _debug(world)
    _refresh(world)
    asked: list[list[str]] = []
    currents: list[bool] = []
    read = world.state.catalogue.marks

    def counted(ids: Any, *, current: bool = True, since: float | None = None) -> Any:
        asked.append(list(ids))
        currents.append(current)
        return read(ids, current=current, since=since)

    world.state.catalogue.marks = counted  # type: ignore[method-assign]
    out = _debug(world)
    assert _origin(out, "personal") == "set" and len(out["items"]) == 10
    every = [i for ids in asked for i in ids]
    assert every and len(every) == len(set(every))  # the sources and the fused check share one read
    # One read of the catalogue's current state per request; the later ones may use it.
    assert currents[0] and not any(currents[1:])


def test_a_set_never_serves_what_is_deleted_or_now_too_mature(world: World) -> None:
    world.state.users.set_profile("kid", UserFields(birth_year=time.gmtime().tm_year - 9))
    world.state.users.set_vector("kid", "cvec", world.vecs["i2"])
    _debug(world, "kid")
    _refresh(world)
    before = _ids(_debug(world, "kid"))
    assert _origin(_debug(world, "kid"), "personal") == "set"
    gone, raised = before[0], before[1]
    world.state.catalogue.tombstone([gone])
    row = world.state.items.get([raised], fields=("content_vec", "cf_vec", "maturity"))[raised]
    world.state.items.upsert([{**world.state.items._rows[raised], "maturity": ADULT}])
    world.state.catalogue.mark_changed([raised])
    assert row["maturity"] == 0
    after = _debug(world, "kid")
    assert _origin(after, "personal") == "set"
    assert gone not in _ids(after) and raised not in _ids(after)
    assert max(_maturity(world, _ids(after))) == 0


def test_a_set_from_older_models_is_served_and_queued_for_refresh(world: World) -> None:
    _debug(world)
    _refresh(world)
    world.state.items._collection = "items_v2"  # a re-index swapped collections
    out = _debug(world)
    assert _origin(out, "personal") == "stale_set" and not out["degraded"]
    assert "u:fan" in world.state.candidates.stale_marks


def test_a_click_changes_the_next_list_before_any_refresh(world: World) -> None:
    """The clicked item's neighbours (interaction model) join the user's set at once."""
    state = world.state
    state.settings.candidates.per_source = 5
    state.catalogue.boards.clear()  # only the personal source: what joins is visible
    rng = np.random.default_rng(11)
    cf_dim = state.settings.models.cf_dim
    ids = sorted(world.vecs)
    factors = np.stack([_unit(rng.normal(size=cf_dim)) for _ in ids])
    als = ALSModel(factors=cf_dim)
    als.item_factors, als.item_ids = factors, ids
    index = {i: k for k, i in enumerate(ids)}
    state.users.set_vector("fan", "cfvec", factors[index["i0"]])
    _debug(world)
    _refresh(world)
    in_set = state.candidates.get(["u:fan"])["u:fan"].ids()
    clicked = next(i for i in ids if i not in in_set and i not in {"i1", "i59"})
    joins = next(i for i in reversed(ids) if i not in in_set and i not in {"i1", "i59", clicked})
    nbrs = ItemNeighbours()
    weights = sp.lil_matrix((len(ids), len(ids)), dtype=np.float32)
    weights[index[clicked], index[joins]] = 1.0
    nbrs.weights = sp.csr_matrix(weights)
    state.models.cf_model = CFModel("m1", als, index, nbrs)
    assert joins not in _ids(_debug(world))  # before the click
    state.users.add_history("fan", clicked, time.time())
    after = _debug(world)
    assert _origin(after, "personal") in {"set", "stale_set"}
    assert joins in _ids(after) and clicked not in _ids(after)


def test_the_item_cache_warms_in_the_background_and_again_after_a_swap(world: World) -> None:
    state = world.state
    state.item_cache.max_items = N_ITEMS  # the catalogue fills it
    with _warming(state):
        _until(lambda: len(state.item_cache) == N_ITEMS)
        _until(lambda: state.item_cache.warmed == state.items.collection)
        state.items._collection = "items_v2"  # a re-index swap: entries are per collection
        # The old collection's entries make room for the new one's.
        _until(lambda: {c for c, _ in list(state.item_cache._data)} == {"items_v2"})
        _until(lambda: len(state.item_cache) == N_ITEMS)
    state.items = _Down("milvus_unavailable", "items_v2")  # type: ignore[assignment]
    assert itemmeta.current(state, ["i0", "i59"]).keys() == {"i0", "i59"}  # no Milvus call


def test_a_warm_item_cache_stays_current_past_its_ttl_without_reading_milvus(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = world.state
    monkeypatch.setattr(itemmeta, "RENEW_EVERY_S", 0.05)
    state.item_cache.ttl_s = 6.0  # renewed from half of it: a starved thread has 3 s
    with _warming(state):
        _until(lambda: len(state.item_cache) == N_ITEMS)
        first = min(e.at for e in list(state.item_cache._data.values()))
        state.items = _Down("milvus_unavailable")  # type: ignore[assignment]
        _until(lambda: min(e.at for e in list(state.item_cache._data.values())) > first + 3, 30)
        # Every entry was renewed past the warm-up's TTL, with the index down.
        assert itemmeta.current(state, ["i0", "i59"]).keys() == {"i0", "i59"}


def test_a_renewed_item_cache_reads_each_entry_again_after_reread_after_s(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = world.state
    monkeypatch.setattr(itemmeta, "RENEW_EVERY_S", 0.05)
    state.item_cache.ttl_s, state.item_cache.reread_after_s = 4.0, 2.0
    with _warming(state):
        _until(lambda: len(state.item_cache) == N_ITEMS)
        first = min(e.read_at for e in list(state.item_cache._data.values()))
        # Due at half the TTL (2 s), and read 2 s ago: read from the index again, not renewed.
        _until(lambda: min(e.read_at for e in list(state.item_cache._data.values())) > first, 30)
        assert len(state.item_cache) == N_ITEMS


@contextlib.contextmanager
def _warming(state: Any) -> Iterator[None]:
    """The item-cache warm-up thread (polling every 10 ms) for the block's duration."""
    stop = threading.Event()
    warmer = threading.Thread(target=itemmeta.warm, args=(state, stop, 0.01), daemon=True)
    warmer.start()
    try:
        yield
    finally:
        stop.set()
        warmer.join(5)


def _until(pred: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_result_cache_keeps_a_list_per_context_only_when_the_ranker_reads_it(
    world: World,
) -> None:
    from core.stores.registry import RankerModel
    from serving.cache import context_parts

    state = world.state
    home = state.settings.surfaces["homepage"]
    req = RecRequest(user_id="fan", surface="homepage", limit=10, local_hour=7, device="tv")
    assert context_parts(state, req, home) == []  # no ranker: nothing reads the context

    def ranker(version: str, *names: str) -> None:
        state.models.rankers[version] = RankerModel(version, None, names)
        state.models.current_ranker = version

    ranker("plain", "retrieval_rank", "cf_z")
    assert context_parts(state, req, home) == []
    ranker("hourly", "retrieval_rank", "hour_cos")
    assert context_parts(state, req, home) == ["local_hour:7"]
    ranker("both", "hour_sin", "device_category_share")
    assert context_parts(state, req, home) == ["local_hour:7", "device:tv"]
    assert context_parts(state, RecRequest(user_id="fan", surface="homepage", limit=10), home) == []
    unranked = home.with_overrides({"ranker": "none"})
    assert context_parts(state, req, unranked) == []
    private = RecRequest("fan", "homepage", 10, local_hour=7, profiling=False)
    assert context_parts(state, private, home) == []


def test_a_list_id_replays_its_exploration_draws(world: World) -> None:
    """The evaluation harness passes one list id per user so that two policies draw alike:
    the same id gives the same list, explored slots included; new ids draw anew."""
    home = world.state.settings.surfaces["homepage"]
    policy = home.policy.model_copy(update={"exploration_share": 0.5, "exploration_start": 1})
    world.state.settings = world.state.settings.model_copy(
        update={
            "serving": world.state.settings.serving.model_copy(update={"cache_ttl_s": 0}),
            "surfaces": {
                **world.state.settings.surfaces,
                "homepage": home.model_copy(update={"policy": policy}),
            },
        }
    )
    req = RecRequest(user_id="fan", surface="homepage", limit=10)

    def draws(rec_id: str | None) -> list[tuple[str, bool]]:
        out = recommend(world.state, req, rec_id=rec_id)
        assert rec_id is None or out["recommendation_id"] == rec_id
        return [(i["item_id"], i["explored"]) for i in out["items"]]

    fixed = "0123456789abcdef0123456789abcdef"
    first = draws(fixed)
    assert any(explored for _, explored in first)
    assert draws(fixed) == first
    assert any(draws(None) != first for _ in range(5))
