"""Filter expressions on real servers: Milvus evaluates each compiled expression exactly as the
Python predicate does over the same catalogue (a property test over random expressions), and
recommendations with `filter=` hold only matching items, through the API and the client."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as examples

from core.expr import parse
from core.filters import Filter
from core.settings import CatalogSettings, Settings
from tests.integration.test_surfaces import TOPICS, app_client, catalogue, recs, setup
from tests.unit.test_expr import expressions

TAGS = ["live", "studio", "classic", "new"]
WORDS = ["jazz", "blues", "live", 'say "hi"', "back\\slash", "it's", "x"]
DECLARED = {"brand": "string", "price": "number", "ok": "boolean", "cols": "list"}


def declared(settings: Settings) -> Settings:
    """The test settings with the custom attributes the expressions use declared."""
    return settings.model_copy(update={"catalog": CatalogSettings(attributes=DECLARED)})


def _attributes(n: int) -> dict[str, Any]:
    """Spread custom attributes, each missing on some items."""
    out: dict[str, Any] = {}
    if n % 5:
        out["brand"] = WORDS[n % len(WORDS)]
    if n % 4:
        out["price"] = [3, 250, 999.75, 1500, 2.5][n % 5]
    if n % 3:
        out["ok"] = n % 2 == 0
    if n % 6:
        out["cols"] = [WORDS[(n + j) % len(WORDS)] for j in range(n % 3)]
    return out


def _tagged(c: Any, worker: Any) -> dict[str, dict[str, Any]]:
    """The test catalogue with tags, second categories and spread maturity; its rows."""
    rows = {i["item_id"]: {**i, "category": i["categories"][0]} for i in catalogue()}
    items = []
    topics = list(TOPICS)
    for t, topic in enumerate(topics):
        for k in range(8):
            item = {
                "item_id": f"{topic}-{k}",
                "title": f"{topic} {k}",
                "categories": [topic] + ([topics[(t + 1) % 4]] if k % 3 == 0 else []),
                "tags": [TAGS[(k + j) % 4] for j in range(k % 3)],
                "creator_id": f"{topic}-maker-{k % 2}",
                "maturity": [0, 7, 13, 16][k % 4],
                "published_at": 1_700_000_000 + 86_400 * (t * 8 + k),
                "language": "en",
                "attributes": _attributes(t * 8 + k),
            }
            items.append(item)
            rows[item["item_id"]] = {**item, "category": topic}
    assert c.post("/v1/items/batch", json={"items": items}).status_code == 202
    worker.drain()
    return rows


def test_milvus_and_python_agree_on_every_expression(settings: Settings, worker: Any) -> None:
    with app_client(declared(settings)) as c:
        setup(c, worker)
        rows = _tagged(c, worker)
        items = c.app.state.vantage.items  # type: ignore[attr-defined]

        @examples(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(expressions())
        def check(expr: Any) -> None:
            node = parse(expr[0])
            where = Filter().where(node.milvus, node.check)
            found = set(items.ids_matching(where, limit=1000)) & set(rows)
            matching = {i for i, r in rows.items() if node.check(r)}
            assert found == matching, node.milvus
            if node.cheap:  # what serving hands to Milvus lets every matching item through
                cheap = Filter().where(node.cheap, node.check)
                passed = set(items.ids_matching(cheap, limit=1000)) & set(rows)
                assert matching <= passed, node.cheap
                assert passed == matching or not node.exact, node.cheap  # exact: the same

        check()


def test_recommendations_hold_only_matching_items(settings: Settings, worker: Any) -> None:
    from vantage_client import VantageClient

    with app_client(declared(settings)) as c:
        setup(c, worker)
        rows = _tagged(c, worker)
        text = 'categories has any ["space", "cooking"] and not tags has "live" and maturity < 16'
        node = parse(text)
        body = recs(c, user_id="fan", limit=10, filter=text)
        assert body["items"], body
        assert all(node.check(rows[i["item_id"]]) for i in body["items"]), body["items"]
        popular = recs(c, user_id="newbie", surface="trending", filter='tags has "classic"')
        assert all("classic" in rows[i["item_id"]]["tags"] for i in popular["items"])
        bad = c.get("/v1/recommendations", params={"user_id": "fan", "filter": 'tags = "x"'})
        assert bad.status_code == 422
        err = bad.json()["error"]
        assert "at character 6" in err["message"] and err["details"][0]["position"] == 6
        vantage = VantageClient(http=c)
        got = vantage.recommend("fan", filter='creator = "space-maker-1"', limit=5)
        assert got.items and all(
            i.item_id in {f"space-{k}" for k in (1, 3, 5, 7)} for i in got.items
        )
        priced = vantage.recommend("fan", filter="attr.price < 300 and not attr.ok = true")
        assert priced.items and all(
            (a := rows[i.item_id]["attributes"]).get("price", 1e9) < 300 and a.get("ok") is not True
            for i in priced.items
        )


def test_custom_attributes_are_declared_typed_and_returned(settings: Settings, worker: Any) -> None:
    with app_client(declared(settings)) as c:
        item = {"title": "Boots", "attributes": {"brand": "acme", "price": 79.5, "cols": ["red"]}}
        assert c.put("/v1/items/boots", json=item).status_code == 202
        worker.drain()
        assert c.get("/v1/items/boots").json()["attributes"] == item["attributes"]
        bad = c.put("/v1/items/boots", json={"title": "B", "attributes": {"size": 42}})
        assert bad.status_code == 422 and "VANTAGE_CATALOG__ATTRIBUTES" in bad.text
        bad = c.put("/v1/items/boots", json={"title": "B", "attributes": {"price": "cheap"}})
        assert bad.status_code == 422 and "is a number" in bad.text, bad.text
        for text, where in (("attr.size = 1", 1), ('attr.price = "x"', 1), ("attr.ok < 1", 1)):
            r = c.get("/v1/recommendations", params={"user_id": "u", "filter": text})
            assert r.status_code == 422, (text, r.text)
            assert r.json()["error"]["details"][0]["position"] == where, r.text
