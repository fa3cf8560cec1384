"""`set_vectors`: one vector field of existing items, written alone (a partial update), on
Milvus (Lite here; a server with Docker) and on the in-memory index."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from pymilvus.exceptions import MilvusException

from core.connect import connect_milvus, prepare_collections
from core.domain import Item
from core.settings import Settings
from core.stores.item_rows import item_row
from core.stores.items import ITEM_ROW_FIELDS, ItemStore, merges_partial_updates
from core.stores.memory import MemoryItemIndex

Index = ItemStore | MemoryItemIndex
TEXT_DIM, CF_DIM = Settings(env="test").models.text_dim, Settings(env="test").models.cf_dim


@pytest.fixture(params=["memory", "real"])
def index(request: pytest.FixtureRequest) -> Iterator[Index]:
    if request.param == "memory":
        yield MemoryItemIndex()
        return
    s: Settings = request.getfixturevalue("settings")
    milvus = connect_milvus(s)
    store = ItemStore(milvus, prepare_collections(s, milvus))
    if not store.partial_updates:
        milvus.close()
        pytest.skip("this Milvus does not merge partial upserts (before 2.6.2)")
    yield store
    milvus.close()


def _seed(index: Index, ids: list[str]) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    vecs = {i: {"content": rng.normal(size=TEXT_DIM), "cf": rng.normal(size=CF_DIM)} for i in ids}
    items = [
        Item(item_id=i, title=f"Title {i}", categories=["c", "d"], tags=["t"], maturity=6)
        for i in ids
    ]
    index.upsert(
        [item_row(it, vecs[it.item_id]["content"], vecs[it.item_id]["cf"]) for it in items]
    )
    return vecs


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=CF_DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def test_set_vectors_writes_that_field_alone(index: Index) -> None:
    vecs = _seed(index, ["a", "b", "c"])
    before = index.get(["a", "b", "c"], ITEM_ROW_FIELDS)
    new = {"a": _unit(1), "b": _unit(2)}
    assert index.set_vectors(new, "cf_vec") == ["a", "b"]
    after = index.get(["a", "b", "c"], ITEM_ROW_FIELDS)
    for i in ("a", "b"):
        assert np.allclose(after[i]["cf_vec"], new[i], atol=1e-6)
        assert np.allclose(after[i]["content_vec"], vecs[i]["content"], atol=1e-6)
        for f in ITEM_ROW_FIELDS:
            if f not in ("cf_vec", "content_vec"):
                assert after[i][f] == before[i][f], f
    assert np.allclose(after["c"]["cf_vec"], vecs["c"]["cf"], atol=1e-6)
    (hits,) = index.search(new["b"], field="cf_vec", limit=1)
    assert hits[0].item_id == "b"
    assert index.set_vectors({}) == []


def test_set_vectors_never_creates_an_item(index: Index) -> None:
    _seed(index, ["a", "b", "c"])
    index.delete(["b"])
    got = index.set_vectors({"a": _unit(1), "b": _unit(2), "new": _unit(3), "c": _unit(4)})
    assert got == ["a", "c"]
    assert set(index.get(["a", "b", "c", "new"])) == {"a", "c"}
    assert index.set_vectors({"b": _unit(2)}) == []
    assert index.get(["b"]) == {}
    if isinstance(index, ItemStore):
        assert index.count() == 2


def test_a_failure_that_is_not_a_missing_item_is_raised(settings: Settings) -> None:
    milvus = connect_milvus(settings)
    try:
        store = ItemStore(milvus, prepare_collections(settings, milvus))
        if not store.partial_updates:
            pytest.skip("this Milvus does not merge partial upserts (before 2.6.2)")
        _seed(store, ["a"])
        with pytest.raises(MilvusException):
            store.set_vectors({"a": np.ones(CF_DIM + 1)})  # wrong dimension
        store.partial_updates = False  # e.g. Milvus 2.5: say so rather than fail obscurely
        with pytest.raises(RuntimeError, match=r"2\.6\.2"):
            store.set_vectors({"a": _unit(1)})
    finally:
        milvus.close()


def test_which_servers_merge_partial_updates() -> None:
    assert merges_partial_updates("milvus_lite-3.2.2")
    assert merges_partial_updates("v2.6.2") and merges_partial_updates("v2.6.10")
    assert merges_partial_updates("2.7.0") and merges_partial_updates("v3.0.1")
    assert not merges_partial_updates("v2.5.10") and not merges_partial_updates("v2.6.1")
    assert not merges_partial_updates("milvus_lite-2.4.10")
    assert not merges_partial_updates("Zilliz Cloud (compatible with Milvus 2.5)")
