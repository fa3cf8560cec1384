"""Filter expressions on real servers: Milvus evaluates each compiled expression exactly as the
Python predicate does over the same catalogue (a property test over random expressions), and
recommendations with `filter=` hold only matching items, through the API and the client."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as examples

from core.expr import parse
from core.filters import Filter
from core.settings import Settings
from tests.integration.test_surfaces import TOPICS, app_client, catalogue, recs, setup
from tests.unit.test_expr import expressions

TAGS = ["live", "studio", "classic", "new"]


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
            }
            items.append(item)
            rows[item["item_id"]] = {**item, "category": topic}
    assert c.post("/v1/items/batch", json={"items": items}).status_code == 202
    worker.drain()
    return rows


def test_milvus_and_python_agree_on_every_expression(settings: Settings, worker: Any) -> None:
    with app_client(settings) as c:
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

    with app_client(settings) as c:
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
