"""One contract for each read-path store, run against the real one and the in-memory one.

The real stores are Milvus (Lite here, a server with Docker) and a real redis-server, written
the way the worker writes them; the in-memory stores are seeded directly. Whatever a pipeline
test on the in-memory stores relies on is asserted here of both.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pytest
import redis

from core.connect import connect_milvus, connect_redis, prepare_collections
from core.context import UserContext
from core.domain import Item, UserFields
from core.filters import Filter
from core.keys import Keys
from core.resilience import CircuitBreaker, DependencyDown
from core.settings import Settings
from core.stores.cache import RedisResultCache
from core.stores.candidates import RedisCandidates
from core.stores.catalogue import RedisCatalogue, announce
from core.stores.item_rows import item_row
from core.stores.items import ItemStore
from core.stores.memory import (
    MemoryCandidates,
    MemoryCatalogue,
    MemoryItemIndex,
    MemoryResultCache,
    MemoryUserState,
)
from core.stores.protocols import (
    CHANGE_MARGIN_S,
    POPULAR,
    CandidateSet,
    CandidateStore,
    CatalogueState,
    ItemIndex,
    ResultCache,
    UserState,
    trending_board,
)
from core.stores.users import RedisUserState


class Seeder(Protocol):
    """Writes state the way its backend's writer does (the worker, for the real stores)."""

    def items(self, rows: list[dict[str, Any]]) -> None: ...
    def tombstone(self, item_id: str, at: float) -> None: ...
    def changed(self, item_id: str, at: float) -> None: ...
    def board(self, board: str, item_id: str, score: float) -> None: ...
    def profile(self, user_id: str, profile: UserFields) -> None: ...
    def vector(self, user_id: str, name: str, vec: np.ndarray) -> None: ...
    def history(self, user_id: str, item_id: str, at: float, device: str | None = None) -> None: ...
    def negative(self, user_id: str, item_id: str, at: float) -> None: ...


@dataclass
class Backend:
    name: str
    items: ItemIndex
    catalogue: CatalogueState
    users: UserState
    cache: ResultCache
    candidates: CandidateStore
    seed: Seeder
    text_dim: int
    cf_dim: int


class MemorySeeder:
    def __init__(self, b: tuple[MemoryItemIndex, MemoryCatalogue, MemoryUserState]):
        self.index, self.cat, self.users = b

    def items(self, rows: list[dict[str, Any]]) -> None:
        self.index.upsert(rows)

    def tombstone(self, item_id: str, at: float) -> None:
        self.cat.tombstone([item_id], at)

    def changed(self, item_id: str, at: float) -> None:
        self.cat.mark_changed([item_id], at)

    def board(self, board: str, item_id: str, score: float) -> None:
        self.cat.add(board, item_id, score)

    def profile(self, user_id: str, profile: UserFields) -> None:
        self.users.set_profile(user_id, profile)

    def vector(self, user_id: str, name: str, vec: np.ndarray) -> None:
        self.users.set_vector(user_id, name, vec)

    def history(self, user_id: str, item_id: str, at: float, device: str | None = None) -> None:
        self.users.add_history(user_id, item_id, at, device)

    def negative(self, user_id: str, item_id: str, at: float) -> None:
        self.users.add_negative(user_id, item_id, at)


class RedisMilvusSeeder:
    """The keys and fields the worker's write path uses (indexing.apply and its Lua)."""

    def __init__(self, r: redis.Redis, keys: Keys, items: ItemStore):
        self.r, self.keys, self.store = r, keys, items

    def items(self, rows: list[dict[str, Any]]) -> None:
        self.store.upsert(rows)
        self.store.flush()

    # As the writers do: the write, then its ids on the catalogue feed (serving follows it).
    def tombstone(self, item_id: str, at: float) -> None:
        pipe = self.r.pipeline(transaction=False)
        pipe.zadd(self.keys.tombstones, {item_id: at})
        announce(pipe, self.keys, [item_id])
        pipe.execute()

    def changed(self, item_id: str, at: float) -> None:
        pipe = self.r.pipeline(transaction=False)
        pipe.zadd(self.keys.item_changes, {item_id: at * 1000})  # milliseconds
        announce(pipe, self.keys, [item_id])
        pipe.execute()

    def board(self, board: str, item_id: str, score: float) -> None:
        key = self.keys.popularity if board == POPULAR else self.keys.trending(board[9:])
        self.r.zincrby(key, score, item_id)

    def profile(self, user_id: str, profile: UserFields) -> None:
        self.r.hset(self.keys.user(user_id), "profile", profile.model_dump_json())

    def vector(self, user_id: str, name: str, vec: np.ndarray) -> None:
        self.r.hset(self.keys.user(user_id), name, np.asarray(vec, np.float32).tobytes())

    def history(self, user_id: str, item_id: str, at: float, device: str | None = None) -> None:
        self.r.zadd(self.keys.history(user_id), {item_id: at})
        if device:
            self.r.hset(self.keys.devices(user_id), item_id, device)
        self.r.hincrby(self.keys.user(user_id), "ver", 1)

    def negative(self, user_id: str, item_id: str, at: float) -> None:
        self.r.zadd(self.keys.negatives(user_id), {item_id: at})
        self.r.hincrby(self.keys.user(user_id), "ver", 1)


@pytest.fixture(params=["memory", "real", pytest.param("cluster", marks=pytest.mark.cluster)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        s = Settings(env="test")
        index, cat, users = MemoryItemIndex(), MemoryCatalogue(), MemoryUserState()
        yield Backend(
            "memory",
            index,
            cat,
            users,
            MemoryResultCache(),
            MemoryCandidates(),
            MemorySeeder((index, cat, users)),
            s.models.text_dim,
            s.models.cf_dim,
        )
        return
    on_cluster = request.param == "cluster"
    s: Settings = request.getfixturevalue("cluster_settings" if on_cluster else "settings")
    milvus = connect_milvus(s)
    names = prepare_collections(s, milvus)
    raw, text = connect_redis(s), connect_redis(s, decode=True)
    keys = Keys.of(s.redis)
    breaker = CircuitBreaker("redis", 3, 5.0)
    store = ItemStore(milvus, names, timeout_s=10.0, breaker=CircuitBreaker("milvus", 3, 5.0))
    yield Backend(
        request.param,
        store,
        RedisCatalogue(text, keys, breaker, follow=True),  # as the serving process runs it
        RedisUserState(raw, keys, breaker),
        RedisResultCache(text, breaker, local_entries=64),  # the in-process copy too
        RedisCandidates(text, keys, breaker),
        RedisMilvusSeeder(raw, keys, store),
        s.models.text_dim,
        s.models.cf_dim,
    )
    raw.close()
    text.close()
    milvus.close()


def _unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    v = rng.normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _catalogue(b: Backend, n: int = 12) -> dict[str, dict[str, np.ndarray]]:
    """n items: i0..i(n-1), maturity i % 3 * 6, language alternating en / en-gb / de / und,
    every fourth one hidden; returns their vectors."""
    rng = np.random.default_rng(7)
    langs = ["en", "en-gb", "de", "und"]
    rows, vecs = [], {}
    for k in range(n):
        item = Item(
            item_id=f"i{k}",
            title=f"Item {k}",
            categories=[f"c{k % 2}"],
            language=langs[k % 4],
            maturity=(k % 3) * 6,
            status="hidden" if k % 4 == 3 else "active",
            published_at=1_700_000_000 + k,
        )
        v = {"content_vec": _unit(rng, b.text_dim), "cf_vec": _unit(rng, b.cf_dim)}
        vecs[item.item_id] = v
        rows.append(item_row(item, v["content_vec"], v["cf_vec"]))
    b.seed.items(rows)
    return vecs


# -- ItemIndex ---------------------------------------------------------------------------


def test_item_get_returns_known_ids_with_the_fields_asked(backend: Backend) -> None:
    _catalogue(backend)
    got = backend.items.get(["i1", "i2", "nope"], fields=("title", "maturity", "categories"))
    assert set(got) == {"i1", "i2"}
    assert got["i1"]["title"] == "Item 1" and got["i1"]["maturity"] == 6
    assert got["i2"]["categories"] == ["c0"] and got["i2"]["item_id"] == "i2"
    assert backend.items.get([]) == {}
    vec = backend.items.get(["i1"], fields=("content_vec",))["i1"]["content_vec"]
    assert len(vec) == backend.text_dim
    # The background read answers the same rows.
    fields = ("title", "maturity", "categories")
    assert backend.items.read(["i1", "i2", "nope"], fields) == got
    assert backend.items.read([]) == {}


def test_a_full_scan_yields_every_row_once_in_the_batches_asked(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real store reads several batches per call (READ_PAGE): the caller still gets its own.
    monkeypatch.setattr("core.stores.items.READ_PAGE", 7)
    _catalogue(backend)
    batches = list(backend.items.iter_rows(("title",), batch=3))
    ids = [r["item_id"] for rows in batches for r in rows]
    assert sorted(ids) == sorted(f"i{k}" for k in range(len(ids))) and len(ids) >= 7
    assert all(len(rows) == 3 for rows in batches[:-1]) and 1 <= len(batches[-1]) <= 3
    assert all(r["title"] == f"Item {r['item_id'][1:]}" for rows in batches for r in rows)


def test_search_ranks_by_inner_product_and_applies_the_filter(backend: Backend) -> None:
    vecs = _catalogue(backend)
    q = vecs["i4"]["content_vec"]
    (hits,) = backend.items.search(q, limit=5)
    assert hits[0].item_id == "i4" and abs(hits[0].score - 1.0) < 1e-3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(hits) == 5 and {"maturity", "status", "category"} <= set(hits[0].fields)
    expected = sorted(vecs, key=lambda i: -float(np.dot(vecs[i]["content_vec"], q)))[:5]
    assert [h.item_id for h in hits] == expected

    f = Filter().eq("status", "active").le("maturity", 6).not_in("item_id", ["i4"])
    (hits,) = backend.items.search(q, filter=f, limit=20)
    ids = {h.item_id for h in hits}
    assert ids == {"i0", "i1", "i6", "i9", "i10"}  # active, maturity <= 6, not i4
    (cf_hits,) = backend.items.search(vecs["i5"]["cf_vec"], field="cf_vec", limit=1)
    assert cf_hits[0].item_id == "i5"


def test_search_language_family_and_date_range(backend: Backend) -> None:
    vecs = _catalogue(backend)
    f = Filter().language_family("en").ge("published_at", 1_700_000_004)
    (hits,) = backend.items.search(vecs["i0"]["content_vec"], filter=f, limit=20)
    # en (4, 8), en-gb (5, 9), und (7, 11); not de (6, 10) nor anything published before i4.
    assert {h.item_id for h in hits} == {"i4", "i5", "i7", "i8", "i9", "i11"}
    batch = backend.items.search(
        np.stack([vecs["i1"]["content_vec"], vecs["i2"]["content_vec"]]), limit=1
    )
    assert [h[0].item_id for h in batch] == ["i1", "i2"]


def test_hybrid_search_fuses_spaces_and_returns_each_vector(backend: Backend) -> None:
    vecs = _catalogue(backend)
    query = {"content_vec": vecs["i2"]["content_vec"], "cf_vec": vecs["i2"]["cf_vec"]}
    f = Filter().eq("status", "active")
    hits = backend.items.hybrid_search(query, {"content_vec": 0.5, "cf_vec": 0.5}, filter=f)
    assert hits[0].item_id == "i2"
    assert all(h.item_id not in {"i3", "i7", "i11"} for h in hits)  # hidden ones
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for h in hits:
        assert len(h.fields["content_vec"]) == backend.text_dim
        assert len(h.fields["cf_vec"]) == backend.cf_dim
    only_cf = backend.items.hybrid_search(query, {"content_vec": 0.0, "cf_vec": 1.0}, limit=3)
    by_cf = sorted(vecs, key=lambda i: -float(np.dot(vecs[i]["cf_vec"], query["cf_vec"])))
    assert [h.item_id for h in only_cf] == by_cf[:3]


def test_collection_name_and_reload(backend: Backend) -> None:
    _catalogue(backend, 2)
    assert backend.items.collection
    backend.items.reload()  # idempotent
    assert set(backend.items.get(["i0", "i1"])) == {"i0", "i1"}


# -- CatalogueState ----------------------------------------------------------------------


def test_marks_tombstones_and_changes(backend: Backend) -> None:
    now = time.time()
    backend.seed.tombstone("a", now)
    backend.seed.changed("b", now - 100)
    backend.seed.changed("c", now)
    marks = backend.catalogue.marks(["a", "b", "c", "d"])
    assert marks.tombstoned == frozenset({"a"})
    assert set(marks.changed_at) == {"b", "c"}
    assert abs(marks.changed_at["c"] - now) < 0.01
    # Changed since: at or after the time, less the clock margin; per item or one time.
    assert marks.changed_since(now - 50) == {"c"}
    assert marks.changed_since(now + CHANGE_MARGIN_S - 1) == {"c"}
    assert marks.changed_since(now + CHANGE_MARGIN_S + 1) == set()
    assert marks.changed_since({"b": now - 200, "c": now + 60}) == {"b"}
    assert backend.catalogue.tombstoned(["a", "b"]) == {"a"}
    assert backend.catalogue.tombstoned([]) == set()
    assert backend.catalogue.marks([]).tombstoned == frozenset()


def test_boards_rank_page_and_score(backend: Backend) -> None:
    for item, score in [("x", 3.0), ("y", 5.0), ("z", 1.0), ("w", 5.0)]:
        backend.seed.board(POPULAR, item, score)
    backend.seed.board(trending_board("cat:jazz"), "z", 2.5)
    top = backend.catalogue.top(POPULAR, 0, 9)
    assert top == [("y", 5.0), ("w", 5.0), ("x", 3.0), ("z", 1.0)]  # ties: reverse id order
    assert backend.catalogue.top(POPULAR, 1, 2) == [("w", 5.0), ("x", 3.0)]
    assert backend.catalogue.top(POPULAR, 10, 19) == []
    assert backend.catalogue.top(trending_board("cat:jazz"), 0, 0) == [("z", 2.5)]
    assert backend.catalogue.top(trending_board("region:FR"), 0, 9) == []
    assert backend.catalogue.popularity(["x", "nope", "y"]) == [3.0, 0.0, 5.0]
    assert backend.catalogue.popularity([]) == []
    with pytest.raises(ValueError):
        backend.catalogue.top("trending", 0, 1)


# -- UserState -----------------------------------------------------------------------------


def test_unknown_user_has_an_empty_context(backend: Backend) -> None:
    ctx = backend.users.context("nobody", recent_n=10)
    assert isinstance(ctx, UserContext)
    assert ctx.profile is None and ctx.content_vec is None and ctx.cf_vec is None
    assert ctx.recent == [] and ctx.negatives == [] and ctx.version == 0 and not ctx.known
    assert ctx.history_len == 0 and backend.users.history("nobody", recent_n=5).length == 0


def test_user_context_reads_profile_vectors_history_and_dislikes(backend: Backend) -> None:
    profile = UserFields(language="en", region="FR", birth_year=1990)
    backend.seed.profile("u", profile)
    v = np.arange(4, dtype=np.float32)
    backend.seed.vector("u", "cvec", v)
    backend.seed.vector("u", "pvec", v + 1)
    for k, item in enumerate(["a", "b", "c", "d"]):
        backend.seed.history("u", item, 1000.0 + k, device="tv" if item in "ad" else None)
    backend.seed.negative("u", "x", 500.0)
    ctx = backend.users.context("u", recent_n=3)
    assert ctx.profile == profile and ctx.region == "FR" and ctx.language == "en"
    assert np.array_equal(ctx.content_vec, v) and ctx.cf_vec is None  # type: ignore[arg-type]
    assert np.array_equal(ctx.pref_vec, v + 1)  # type: ignore[arg-type]
    assert ctx.recent == ["d", "c", "b"] and ctx.recent_ts == [1003.0, 1002.0, 1001.0]
    assert ctx.negatives == ["x"] and ctx.version >= 5 and ctx.known
    assert ctx.history_len == 4  # the whole history's length, beside its head
    head = backend.users.context("u", recent_n=0)
    assert head.recent == [] and head.history_len is None  # the head alone reads no history
    hist = backend.users.history("u", recent_n=2)
    assert hist.length == 4 and hist.recent == [("d", 1003.0), ("c", 1002.0)]
    assert hist.devices == {}  # read only when asked for
    assert backend.users.history("u", recent_n=3, devices=True).devices == {"d": "tv"}
    before = ctx.version
    backend.seed.history("u", "e", 2000.0)
    assert backend.users.context("u", recent_n=1).version > before  # any event: a new version


# -- ResultCache ---------------------------------------------------------------------------


def test_result_cache_round_trip_and_expiry(backend: Backend) -> None:
    assert backend.cache.get("k:missing") is None
    value = {"items": [{"item_id": "a", "score": 0.5}], "cached": False}
    backend.cache.put({"k:1": (value, 60.0), "k:2": ([1, 2], 0.2)})
    got = backend.cache.get("k:1")
    assert got == value and got is not value
    assert backend.cache.get("k:2") == [1, 2]
    time.sleep(0.4)
    assert backend.cache.get("k:2") is None and backend.cache.get("k:1") == value
    backend.cache.put({})  # nothing to write is fine


# -- CandidateStore ------------------------------------------------------------------------


def test_candidate_sets_round_trip_and_expire(backend: Backend) -> None:
    a = CandidateSet(
        "u:fan",
        "m1",
        1_700_000_000.5,
        {"collaborative": [("i1", 0.9), ("i2", 0.51234567)], "preferences": [("i3", 0.2)]},
    )
    b = CandidateSet("i:i1", "m1", 1_700_000_001.0, {"similar_item": [("i2", 0.8)]})
    assert backend.candidates.get(["u:fan"]) == {}
    backend.candidates.put([a, b], 60.0)
    got = backend.candidates.get(["u:fan", "i:i1", "u:nobody"])
    assert set(got) == {"u:fan", "i:i1"}
    assert got["u:fan"].tag == "m1" and got["u:fan"].built_at == a.built_at
    assert list(got["u:fan"].sources["collaborative"]) == [("i1", 0.9), ("i2", 0.51235)]
    assert got["u:fan"].ids() == ["i1", "i2", "i3"]
    assert list(got["i:i1"].sources["similar_item"]) == [("i2", 0.8)]
    assert backend.candidates.has(["u:fan", "i:i1", "u:nobody"]) == {"u:fan", "i:i1"}
    backend.candidates.put([CandidateSet("u:short", "m1", 1.0, {})], 0.2)
    time.sleep(0.4)
    assert backend.candidates.get(["u:short"]) == {}
    assert backend.candidates.has(["u:short"]) == set() == backend.candidates.has([])
    backend.candidates.put([], 1.0)


def test_stale_queue_coalesces_and_keeps_owners_marked_again(backend: Backend) -> None:
    store = backend.candidates
    store.mark_stale(["u:a", "u:b"], 100.0)
    store.mark_stale(["u:a", "u:c"], 200.0)  # u:a keeps its first mark: one refresh
    assert store.queued() == 3
    taken = store.stale(2)
    assert taken == [("u:a", 100.0), ("u:b", 100.0)]
    assert store.stale(10)[2] == ("u:c", 200.0)  # taking does not dequeue
    # u:b is refreshed, then marked again while its refresh ran: it stays queued.
    assert store.finish([taken[0]]) == 1
    store.mark_stale(["u:a"], 300.0)
    assert store.finish([("u:a", 100.0), ("u:b", 100.0)]) == 1  # u:a was marked again
    assert store.stale(10) == [("u:c", 200.0), ("u:a", 300.0)]
    assert store.finish([("u:c", 200.0), ("u:a", 300.0)]) == 2 and store.queued() == 0
    assert store.finish([]) == 0


def test_a_mark_while_taken_keeps_the_owner_queued_and_earlier_marks_come_first(
    backend: Backend,
) -> None:
    store = backend.candidates
    store.mark_each({"u:bulk": 4e9 + 5, "u:old": 4e9 + 50})
    store.mark_stale(["u:event"], 100.0)
    assert [o for o, _ in store.stale(10)] == ["u:event", "u:bulk", "u:old"]
    store.mark_stale(["u:old"], 200.0)  # an event moves a bulk-queued owner forward
    taken = store.stale(2)
    assert taken == [("u:event", 100.0), ("u:old", 200.0)]
    # An event while the refresh runs: the set was built from older state, so it stays queued.
    store.mark_stale(["u:event"], 150.0)
    store.mark_stale(["u:event"], 160.0)  # coalesced again once re-marked
    assert store.finish(taken) == 1
    assert store.stale(10) == [("u:event", 150.0), ("u:bulk", 4e9 + 5)]
    assert store.finish(store.stale(10)) == 2 and store.queued() == 0


def test_a_rebuilt_owner_waits_out_its_refresh_interval(backend: Backend) -> None:
    """A busy owner costs one rebuild per interval: marks within it are due at its end."""
    store = backend.candidates
    store.mark_stale(["u:busy", "u:calm"], 100.0)
    taken = store.stale(10, now=100.0)
    store.mark_stale(["u:busy"], 101.0)  # an event while its set was being rebuilt
    assert store.finish(taken, interval_s=5.0, now=102.0) == 1
    assert store.stale(10, now=103.0) == []  # due at 107, not before
    assert store.stale(10, now=107.0) == [("u:busy", 107.0)]
    assert store.finish([("u:busy", 107.0)], interval_s=5.0, now=108.0) == 1
    store.mark_stale(["u:busy", "u:calm"], 109.0)  # u:busy is due at 113, u:calm now
    store.mark_each({"u:bulk": 4e9 + 1})
    assert store.stale(10, now=110.0) == [("u:calm", 109.0), ("u:bulk", 4e9 + 1)]
    assert store.stale(2, now=113.0) == [("u:calm", 109.0), ("u:busy", 113.0)]
    assert store.queued() == 3


def test_held_sets_and_the_bulk_tag(backend: Backend) -> None:
    store = backend.candidates
    assert list(store.held()) == [] and store.built_for() is None
    store.put([CandidateSet("u:a", "t", 1.0, {}), CandidateSet("i:x", "t", 1.0, {})], 60.0)
    store.mark_stale(["u:queued"], 1.0)
    held = dict(store.held())
    assert held.keys() == {"u:a", "i:x"} and all(50 < left <= 60 for left in held.values())
    store.set_built_for("items_v2|m3")
    assert store.built_for() == "items_v2|m3"


# -- The store boundary ------------------------------------------------------------------


def test_a_dead_server_is_dependency_down(settings: Settings) -> None:
    """Real stores raise only DependencyDown when their server is gone (what the pipeline
    catches), never a client library's exception; their breaker then opens."""
    dead = settings.model_copy(
        update={"redis": settings.redis.model_copy(update={"url": "redis://127.0.0.1:1/0"})}
    )
    breaker = CircuitBreaker("redis", 2, 60.0)
    keys = Keys("dead")
    cat = RedisCatalogue(connect_redis(dead, timeout_s=0.2, decode=True), keys, breaker)
    followed = RedisCatalogue(
        connect_redis(dead, timeout_s=0.2, decode=True),
        keys,
        CircuitBreaker("r", 2, 60.0),
        follow=True,
    )
    with pytest.raises(DependencyDown) as e:
        followed.marks(["a"])
    assert e.value.reason == "redis_unavailable"
    users = RedisUserState(connect_redis(dead, timeout_s=0.2), keys, breaker)
    cache = RedisResultCache(connect_redis(dead, timeout_s=0.2, decode=True), breaker)
    with pytest.raises(DependencyDown) as e:
        cat.marks(["a"])
    assert e.value.reason == "redis_unavailable"
    with pytest.raises(DependencyDown):
        users.context("u", recent_n=5)
    with pytest.raises(DependencyDown) as e:
        cache.get("k")
    assert e.value.reason == "redis_circuit_open" and breaker.current_state == "open"
