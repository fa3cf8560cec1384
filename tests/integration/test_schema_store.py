"""Milvus schema, alias versioning and the escaping filter builder against a real server."""

from __future__ import annotations

import numpy as np

from core.connect import collection_names, connect_milvus
from core.domain import Item
from core.filters import Filter
from core.settings import Settings
from core.stores.item_rows import item_row
from core.stores.items import ITEM_ROW_FIELDS, ItemStore
from core.stores.schema import (
    _vector_index,
    create_items_version,
    current_items_collection,
    ensure_collections,
    items_schema,
    point_alias,
)


def test_ensure_collections_is_idempotent(settings: Settings) -> None:
    m, names = connect_milvus(settings), collection_names(settings)
    for _ in range(2):
        ensure_collections(m, names, text_dim=8, cf_dim=4, consistency="Strong")
    assert current_items_collection(m, names) == names.physical(1)
    assert m.has_collection(names.users)
    v2 = create_items_version(m, names, text_dim=8, cf_dim=4)
    assert v2 == names.physical(2) and current_items_collection(m, names) == names.physical(1)
    point_alias(m, names, v2)
    assert current_items_collection(m, names) == v2
    m.close()


def test_escaped_values_never_widen_a_filter(settings: Settings) -> None:
    m, names = connect_milvus(settings), collection_names(settings)
    ensure_collections(m, names, text_dim=8, cf_dim=4, consistency="Strong")
    hostile = 'x" or item_id != "'
    rows = []
    for i, cat in enumerate(["jazz", "rock", hostile, 'back\\slash"']):
        v = np.zeros(8, dtype=np.float32)
        v[i] = 1
        rows.append(
            {
                "item_id": f"i{i}",
                "content_vec": v.tolist(),
                "cf_vec": [0.0] * 4,
                "title": "t",
                "description": "",
                "category": cat,
                "categories": [cat],
                "tags": [],
                "language": "en",
                "regions": [],
                "maturity": 0,
                "status": "active",
                "published_at": 0,
                "creator_id": "",
                "attributes": {},
                "updated_at": 0,
            }
        )
    m.upsert(names.items_alias, rows)

    def q(f: Filter) -> list[str]:
        return sorted(
            r["item_id"]
            for r in m.query(names.items_alias, filter=str(f), output_fields=["item_id"])
        )

    assert q(Filter().eq("category", hostile)) == ["i2"]
    assert q(Filter().eq("category", 'back\\slash"')) == ["i3"]
    assert q(Filter().eq("category", "jazz").not_in("item_id", [hostile, "i9"])) == ["i0"]
    assert q(Filter().in_("item_id", ['" or 1==1 or "', "i1"])) == ["i1"]
    m.close()


def test_a_collection_from_before_custom_attributes_keeps_working(settings: Settings) -> None:
    """Reads leave the field out and writes drop it there; the re-index's next collection
    stores attributes (rows copied from the old one get none)."""
    m, names = connect_milvus(settings), collection_names(settings)
    old = names.physical(1)
    m.create_collection(
        old,
        schema=items_schema(8, 4, attributes=False),
        index_params=_vector_index(m, "content_vec", "cf_vec"),
        consistency_level="Strong",
    )
    ensure_collections(m, names, text_dim=8, cf_dim=4, consistency="Strong")
    assert current_items_collection(m, names) == old
    store = ItemStore(m, names)
    item = Item(item_id="a", title="t", attributes={"brand": "x"})
    store.upsert([item_row(item, np.ones(8, dtype=np.float32), np.zeros(4, dtype=np.float32))])
    assert not store.has_attributes()
    got = store.get(["a"], ITEM_ROW_FIELDS, strong=True)["a"]
    assert got["title"] == "t" and "attributes" not in got
    assert [h.item_id for h in store.search(np.ones((1, 8)), limit=3)[0]] == ["a"]
    new = create_items_version(m, names, text_dim=8, cf_dim=4, consistency="Strong")
    store.upsert([got], collection=new)  # what the re-index copies
    point_alias(m, names, new)
    m.load_collection(new)
    fresh = ItemStore(m, names)
    assert fresh.has_attributes()
    assert fresh.get(["a"], strong=True)["a"]["attributes"] == {}
    m.close()
