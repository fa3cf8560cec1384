"""The client over the network, against the real app behind uvicorn (the server helper of
tests/integration/test_reindex.py): the README's curl examples, each as its client twin.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from vantage_client import (
    AsyncVantageClient,
    Interaction,
    ItemFields,
    NotFound,
    Preferences,
    Unauthorized,
    UserFields,
    VantageClient,
)

from core.settings import Settings
from tests.conftest import admin_token
from tests.integration.test_reindex import serve

pytestmark = pytest.mark.integration

SOURDOUGH = ItemFields(
    title="Sourdough at home",
    description="Bake a crusty loaf with a wild yeast starter.",
    categories=["cooking"],
    tags=["bread", "baking"],
    language="en",
    maturity=0,
)


def _seed(vantage: VantageClient, worker: Any) -> None:
    """A few demo items and one user who has seen one of them."""
    for n, title in enumerate(["Bread basics", "Pasta at home", "Pastry school"], start=1):
        item = ItemFields(title=title, description=f"{title}: recipes", categories=["cooking"])
        vantage.put_item(f"demo-000{n}", item)
    worker.drain()
    vantage.log_interactions([Interaction(user_id="u-0001", item_id="demo-0003", type="view")])
    worker.drain()


def test_the_readme_curl_examples_as_client_calls(settings: Settings, worker: Any) -> None:
    with serve(settings) as url, VantageClient(url, api_key=admin_token(settings)) as vantage:
        _seed(vantage, worker)
        home = vantage.recommend("u-0001", "homepage", limit=5)
        assert home.surface == "homepage" and not home.degraded
        related = vantage.recommend("u-0001", "related", item_id="demo-0001", limit=5)
        assert "demo-0001" not in [i.item_id for i in related.items]

        accepted = vantage.log_interactions(
            [
                Interaction(user_id="u-0001", item_id="demo-0001", type="like"),
                Interaction(user_id="u-0001", item_id="demo-0002", type="watch"),
            ]
        )
        assert len(accepted.event_ids) == 2

        vantage.put_item("my-first-item", SOURDOUGH)
        worker.drain()  # writes are applied asynchronously by the worker
        assert vantage.get_item("my-first-item").tags == ["bread", "baking"]

        profile = UserFields(
            language="en",
            region="US",
            birth_year=2012,
            preferences=Preferences(categories=["space"]),
        )
        stored = vantage.put_user("new-user", profile).profile
        assert stored is not None and stored.birth_year == 2012
        assert [h.item_id for h in vantage.get_user("u-0001").recent][:1] == ["demo-0002"]

        vantage.delete_item("my-first-item")
        with pytest.raises(NotFound):
            vantage.get_item("my-first-item")
        assert vantage.ready().status == "ready"


def test_the_async_client_over_the_network(settings: Settings) -> None:
    async def scenario(url: str) -> None:
        async with AsyncVantageClient(url, api_key=admin_token(settings)) as vantage:
            assert (await vantage.health()).status == "ok"
            rules = [{"action": "boost", "category": f"c{n}", "weight": 0.5} for n in range(3)]
            for n, rule in enumerate(rules):
                await vantage.put_rule(f"r{n}", rule)
            assert [r.rule_id async for r in vantage.iter_rules(page_size=2)] == ["r0", "r1", "r2"]
        async with AsyncVantageClient(url, api_key="vtg_000000000000_" + "y" * 32) as stranger:
            with pytest.raises(Unauthorized, match="invalid or revoked API key"):
                await stranger.list_rules()

    with serve(settings) as url:
        asyncio.run(scenario(url))
