"""The model registry as the read path uses it: one read of the current versions per request."""

from __future__ import annotations

from typing import Any

from core.stores.registry import ModelRegistry, versions_pinned


def test_a_request_reads_the_versions_once_and_keeps_them_to_its_end(stores: Any) -> None:
    reg = stores.registry
    reg.publish("cf", "v1", {})
    reg.publish("ranker", "r1", {})
    elsewhere = ModelRegistry(stores.redis, stores.keys, reg.root)  # another process
    with versions_pinned():
        assert reg.served_version("cf") == "v1"
        elsewhere.publish("cf", "v2", {})
        elsewhere.withdraw("ranker", "bad")
        # Mid-request, every stage still uses the versions the request started with.
        assert reg.served_version("cf") == "v1" and reg.served_version("ranker") == "r1"
    # The next request sees the new ones.
    assert reg.served_version("cf") == "v2" and reg.served_version("ranker") is None
    with versions_pinned():
        assert reg.served_version("cf") == "v2"
