"""Everything under tests/cluster runs against a real Redis Cluster on loopback (3 masters + 3
replicas, started once per session by `redis_cluster`), with Milvus as for every test.

`settings` is overridden here, so the fixtures built on it (`stores`, `worker`, `client`)
connect with the cluster client: a test module here may import test functions of
tests/integration and run them again, unchanged, on the cluster.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.settings import Settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def settings(cluster_settings: Settings) -> Iterator[Settings]:
    yield cluster_settings
