"""/metrics at scrape time: a Redis that fails midway empties the gauges it feeds, never the
whole scrape (the earlier families are already reported)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import redis

from app import collectors
from core.keys import Keys
from core.settings import Settings


class _Down:
    """A Redis client every call of which fails, as when Redis dies mid-scrape."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise redis.ConnectionError("Connection refused")

        return fail


def test_the_late_redis_reads_leave_their_gauges_empty() -> None:
    settings = Settings(env="test")
    state: Any = SimpleNamespace(
        redis=_Down(),
        keys=Keys.of(settings.redis),
        settings=settings,
        item_cache=[],
        items=SimpleNamespace(count=lambda: 42),
    )
    families = [
        *collectors._candidate_gauges(state),
        *collectors._surface_counters(state),
        *collectors._coverage_gauges(state),
    ]
    by_name = {f.name: f for f in families}
    assert by_name["vantage_candidate_sets_queued"].samples == []
    assert by_name["vantage_surface_impressions"].samples == []
    assert by_name["vantage_items_served_distinct"].samples == []
    # Milvus still answers: the catalogue size is reported.
    assert [s.value for s in by_name["vantage_catalogue_items"].samples] == [42.0]
