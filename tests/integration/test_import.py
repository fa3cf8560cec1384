"""`vantage import` through the shared apply functions: demo data and MovieLens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from indexing.demo import write_demo
from indexing.importer import import_dataset


def test_import_demo_then_serve(stores: Any, tmp_path: Path, client: Any) -> None:
    report = import_dataset(
        stores, write_demo(tmp_path / "demo", n_items=120, n_users=20), progress=False
    )
    assert report.items == 120 and report.users == 20 and report.skipped == 0
    assert stores.items.count() == 120
    body = client.get("/v1/recommendations", params={"user_id": "u-0001", "limit": 10}).json()
    assert len(body["items"]) == 10
    # No interaction model yet: the user's content profile leads; other sources fill in.
    assert all(i["sources"][0] == "content_profile" for i in body["items"][:5]), body["items"]


@pytest.mark.datasets
def test_import_movielens_100k_subset(stores: Any, datasets_dir: Path) -> None:
    report = import_dataset(stores, datasets_dir / "ml-100k", progress=False, limit_items=150)
    assert report.items == 150 and report.interactions == 100_000 and report.users == 943
    got = stores.items.get(["1"])["1"]
    assert got["title"].startswith("Toy Story") and "animation" in got["categories"]
