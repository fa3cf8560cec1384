"""Pure functions: filters, models, profiles, events, policy, settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from core import events as ev
from core.domain import Interaction, Item, UserFields, age_max_maturity, interaction_weight
from core.filters import Filter, FilterError, literal
from core.settings import Settings
from embeddings.profile import content_profile
from embeddings.text import compose_item_text
from serving.policy import allowed, apply_policy
from serving.retrieval import Candidate, Constraints


def test_literal_escapes_quotes_and_backslashes() -> None:
    assert literal('x" or item_id != "') == '"x\\" or item_id != \\""'
    assert literal("a\\b") == '"a\\\\b"'
    assert literal(12) == "12" and literal(True) == "true"
    with pytest.raises(FilterError):
        literal("line\nbreak")
    with pytest.raises(FilterError):
        literal(float("nan"))


def test_filter_builder_rejects_unknown_fields_and_empty_in() -> None:
    f = Filter().eq("status", "active").le("maturity", 12).not_in("item_id", ["a", 'b"'])
    assert str(f) == '(status == "active") and (maturity <= 12) and (item_id not in ["a", "b\\""])'
    assert str(Filter().not_in("item_id", [])) == ""
    with pytest.raises(FilterError):
        Filter().eq("title or 1==1", "x")
    with pytest.raises(FilterError):
        Filter().in_("item_id", [])


def test_interaction_weights_order() -> None:
    w = {
        k: interaction_weight(k, None)
        for k in ("purchase", "like", "watch", "click", "view", "skip", "dislike")
    }
    assert w["purchase"] > w["like"] > w["watch"] > w["click"] > w["view"] > 0
    assert w["dislike"] < w["skip"] < 0
    assert interaction_weight("rate", 5) > interaction_weight("rate", 3) > 0
    assert interaction_weight("rate", 1) < 0


def test_item_normalises_labels_and_bounds_fields() -> None:
    it = Item(item_id="a", title=" T ", categories=["Jazz", "jazz", "Live"], regions=["fr"])
    assert it.categories == ["jazz", "live"] and it.category == "jazz" and it.regions == ["FR"]
    assert it.title == "T"
    for bad in (
        {"maturity": 19},
        {"categories": ["x" * 65]},
        {"categories": ["a\tb"]},
        {"language": "english"},
        {"status": "deleted"},
    ):
        with pytest.raises(ValidationError):
            Item(item_id="a", title="t", **bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Item(item_id='a" or 1', title="t")


def test_interaction_rejects_nonsense() -> None:
    with pytest.raises(ValidationError):
        Interaction(user_id="u", item_id="i", type="rate", value=1e6)  # would swamp popularity
    with pytest.raises(ValidationError):
        Interaction(user_id="u", item_id="i", type="view", value=float("inf"))
    with pytest.raises(ValidationError):
        Interaction(user_id="u", item_id="i", type="view", timestamp=1e12)
    with pytest.raises(ValidationError):
        UserFields(birth_year=2999)


def test_age_max_maturity() -> None:
    now = 1_767_225_600.0  # 2026-01-01
    assert age_max_maturity(2016, 12, now=now) == 9  # 9 or 10 in 2026: the lower bound
    assert age_max_maturity(2008, 12, now=now) == 17
    assert age_max_maturity(1970, 12, now=now) == 18
    assert age_max_maturity(None, 12, now=now) == 12


def test_content_profile_weights_recent_and_negative() -> None:
    e = np.eye(3, dtype=np.float32)
    vecs = {"a": e[0], "b": e[1], "c": e[2]}
    p = content_profile([("a", 1.0), ("b", 1.0)], vecs, half_life=1.0)
    assert p is not None and p[0] > p[1] > 0 and abs(np.linalg.norm(p) - 1) < 1e-6
    p = content_profile([("a", 1.0), ("c", -1.0)], vecs)
    assert p is not None and p[2] < 0
    assert content_profile([("c", -1.0)], vecs) is None
    assert content_profile([("zzz", 2.0)], vecs) is None


def test_event_roundtrip_and_poison() -> None:
    kind, data = ev.interaction_event(Interaction(user_id="u", item_id="i", type="like"), now=5.0)
    got = ev.decode(b"1-0", {k.encode(): v.encode() for k, v in ev.encode(kind, data).items()})
    assert got.type == ev.INTERACTION_LOGGED and got.data["timestamp"] == 5.0
    for fields in (
        {"type": "nope", "data": "{}"},
        {"type": ev.ITEM_DELETED, "data": "[1]"},
        {"type": ev.ITEM_DELETED, "data": "{"},
    ):
        with pytest.raises(ev.PoisonEvent):
            ev.decode("1-1", fields)


def _cand(item_id: str, **fields: object) -> Candidate:
    base = {"status": "active", "maturity": 0, "regions": []}
    return Candidate(item_id, {**base, **fields}, ["src"], {"src": 1.0})


def test_policy_hard_filters() -> None:
    kw = {"max_maturity": 12, "region": "FR", "tombstoned": {"t"}, "exclude": {"seen"}}
    assert allowed(_cand("ok"), **kw)
    assert allowed(_cand("fr", regions=["FR", "BE"]), **kw)
    for c in (
        _cand("t"),
        _cand("seen"),
        _cand("m", maturity=16),
        _cand("h", status="hidden"),
        _cand("us", regions=["US"]),
    ):
        assert not allowed(c, **kw), c.item_id
    # Unknown region: only items available everywhere (fail closed).
    assert allowed(_cand("ok"), **{**kw, "region": None})
    assert not allowed(_cand("fr", regions=["FR"]), **{**kw, "region": None})
    out = apply_policy(
        [_cand("a"), _cand("m", maturity=18), _cand("b"), _cand("c")],
        limit=2,
        max_maturity=12,
        region=None,
        tombstoned=set(),
        exclude=set(),
    )
    assert [c.item_id for c in out] == ["a", "b"]


def test_constraints_filter_is_escaped() -> None:
    f = Constraints(max_maturity=7, category='x" or "1', exclude=("a",)).milvus_filter()
    assert str(f) == (
        '(status == "active") and (maturity <= 7) and (category == "x\\" or \\"1") '
        'and (item_id not in ["a"])'
    )
    # The same clauses evaluated in-process (the in-memory index, candidate sets).
    row = {"status": "active", "maturity": 7, "category": 'x" or "1', "item_id": "b"}
    assert f.matches(row)
    assert not f.matches({**row, "category": "x"})
    assert not f.matches({**row, "item_id": "a"})
    assert not f.matches({**row, "maturity": 8})
    assert not f.matches({**row, "status": "hidden"})


def test_compose_item_text() -> None:
    t = compose_item_text(title="Jazz", description="Live.", categories=["music"], tags=["sax"])
    assert t == "Jazz Live. Categories: music. Tags: sax."


def test_settings_fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError):
        Settings(serving={"default_limit": 50, "max_limit": 10})
    with pytest.raises(ValidationError):
        Settings(env="production")  # Milvus Lite file in production
    monkeypatch.setenv("VANTAGE_SERVING__CACHE_TTL_S", "5")
    monkeypatch.setenv("VANTAGE_MILVUS__URI", "http://milvus:19530")
    s = Settings()
    assert s.serving.cache_ttl_s == 5 and s.milvus.uri == "http://milvus:19530"
    with pytest.raises(ValidationError):
        Settings(redis={"key_prefix": "a b"})


def test_the_milvus_lite_file_follows_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert Settings().milvus.uri == "./data/milvus.db"
    monkeypatch.setenv("VANTAGE_DATA_DIR", str(tmp_path))
    assert Settings().milvus.uri == str(tmp_path / "milvus.db")
    monkeypatch.setenv("VANTAGE_MILVUS__URI", "http://milvus:19530")  # placed: kept
    assert Settings().milvus.uri == "http://milvus:19530"
    assert Settings(data_dir=tmp_path, milvus={"uri": "x.db"}).milvus.uri == "x.db"


def test_surface_overrides_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VANTAGE_SURFACES__HOMEPAGE__CACHE_TTL_S", "5")
    assert Settings().surfaces["homepage"].cache_ttl_s == 5
    # A misspelt surface would silently become a new default surface: it is refused instead.
    monkeypatch.setenv("VANTAGE_SURFACES__HOMEPGE__CACHE_TTL_S", "5")
    with pytest.raises(ValidationError, match=r"\['homepge'\].*a typo"):
        Settings()
    # A new surface is fine once it names its sources.
    monkeypatch.delenv("VANTAGE_SURFACES__HOMEPGE__CACHE_TTL_S")
    monkeypatch.setenv("VANTAGE_SURFACES__SHELF__SOURCES", '[{"name": "popular"}]')
    assert [s.name for s in Settings().surfaces["shelf"].sources] == ["popular"]


def test_precision_setting_is_validated() -> None:
    import pytest

    from embeddings.text import resolve_precision

    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("auto") in ("fp32", "bf16")
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("int4")


def test_a_warming_item_cache_takes_what_fits_and_never_evicts() -> None:
    from core.stores.item_cache import ItemMetaCache

    cache = ItemMetaCache(max_items=5)
    rows = [{"item_id": f"i{k}", "content_vec": [1.0, 0.0], "title": f"t{k}"} for k in range(8)]
    assert cache.fill("c", rows[:3], at=0.0, evict=False) == 3
    assert cache.fill("c", rows[3:], at=0.0, evict=False) == 2  # only what fits
    assert len(cache) == 5
    assert cache.fill("c", rows[5:], at=0.0, evict=False) == 0  # full: the rest on demand
    # A request's read drops the longest-loaded entries (a percent more), not the whole cache.
    assert cache.fill("c", rows[1:2], at=1.0) == 1 and len(cache) == 5  # read again: newest
    assert cache.fill("c", rows[5:7], at=2.0) == 2 and len(cache) == 5
    kept = {k[1] for k in cache._data}
    assert kept == {"i3", "i4", "i1", "i5", "i6"}, kept


def test_an_item_cache_renews_unchanged_entries_from_the_change_log_alone() -> None:
    import time

    from core.stores.item_cache import ItemMetaCache
    from core.stores.memory import MemoryCatalogue

    class NoReads:
        collection = "c"

        def get(self, ids: object, fields: object = None) -> dict[str, object]:
            raise AssertionError("a renewed entry must not be read from the index")

    cache = ItemMetaCache(ttl_s=100.0, reread_after_s=1000.0)
    rows = [{"item_id": f"i{k}", "content_vec": [1.0, 0.0], "title": f"t{k}"} for k in range(5)]
    now = time.time()
    cache.fill("c", rows[:4], at=now - 60)  # due: older than half the TTL
    cache.fill("c", rows[4:], at=now - 10)  # not due yet
    cache.fill("old", rows[:2], at=now - 60)  # a collection swapped out
    catalogue = MemoryCatalogue()
    catalogue.mark_changed(["i1"], at=now - 30)  # written after it was loaded
    catalogue.tombstone(["i2"])
    catalogue.mark_changed(["i3"], at=now - 90)  # written before it was loaded
    assert cache.renew(catalogue, "c", older_than_s=50.0) == []  # none read 1000 s ago
    entries = {k[1]: e for k, e in cache._data.items() if k[0] == "c"}
    assert set(entries) == {"i0", "i3", "i4"}  # written since or tombstoned: read on demand
    assert entries["i0"].at >= now and entries["i3"].at >= now and entries["i4"].at == now - 10
    assert entries["i0"].read_at == now - 60  # renewed, not read
    # Renewed entries are fresh again without a read, even past their first load's TTL.
    later = {"i0": now - 50.0}  # a write the log shows before the renewal: still fresh
    assert set(cache.get(NoReads(), ["i0", "i3"], later)) == {"i0", "i3"}  # type: ignore[arg-type]
    assert cache.retain("c") == 2 and len(cache) == 3
    # An entry already past its TTL is not renewed: it is read again on demand.
    cache.fill("c", rows[:1], at=now - 150)
    assert cache.renew(catalogue, "c", older_than_s=50.0) == []
    assert len(cache) == 3
    # One last read from the index `reread_after_s` ago is named for a read, not renewed:
    # the change log is never the only signal for longer than that.
    cache.reread_after_s = 55.0
    cache.fill("c", rows[3:4], at=now - 60)
    assert cache.renew(catalogue, "c", older_than_s=50.0) == ["i3"]
    assert cache._data[("c", "i3")].at == now - 60


def test_an_item_cache_read_drops_an_item_the_index_no_longer_has() -> None:
    from core.stores.item_cache import ItemMetaCache

    class Index:
        collection = "c"

        def get(self, ids: list[str], fields: object = None) -> dict[str, object]:
            return {"i0": {"item_id": "i0", "content_vec": [1.0], "title": "t"}}

    cache = ItemMetaCache()
    rows = [{"item_id": f"i{k}", "content_vec": [1.0], "title": "t"} for k in range(2)]
    cache.fill("c", rows, at=0.0)
    assert cache.load(Index(), ["i0", "i1"]) == 1  # type: ignore[arg-type]
    assert {k[1] for k in cache._data} == {"i0"}


def test_an_item_cache_shares_repeated_field_strings_between_entries() -> None:
    import json

    from core.stores.item_cache import ItemMetaCache

    cache = ItemMetaCache()
    row = '{"item_id": "%s", "content_vec": [1.0], "title": "t", "status": "active", '
    row += '"regions": ["GB"]}'
    rows = [json.loads(row % i) for i in ("a", "b")]  # decoded apart, as Milvus answers
    assert rows[0]["status"] is not rows[1]["status"]
    cache.fill("c", rows, at=0.0)
    a, b = (cache._data[("c", i)].meta.fields for i in ("a", "b"))
    assert a == {"status": "active", "regions": ["GB"]} and a["status"] is b["status"]
    assert a["regions"][0] is b["regions"][0]
