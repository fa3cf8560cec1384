"""The counters the impression log keeps beside the served lists, summed in process.

Every served list adds 1 to a few fields of the surface counters (`core/served_list.py`:
`list_fields` once per list, `stats_fields` once per item) and its items to the distinct-items
sketch of its surface and hour. Written one increment per field and list, that is about 17 Redis
commands a list, most of the impression writer's cost; summed here over a window (a second by
default) it is one `HINCRBY` per distinct field in the window, whatever the traffic.

The readers (`app/services/analytics.py`, `app/services/experiments.py`) sum every shard of
`keys.surface_stats` and `keys.surface_stats_hour`, so a window's sums may go to any one shard:
the writer takes the next shard each time, which spreads them over a Redis Cluster's nodes. The
clicks the attribution script counts stay in the shard of their list.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from core.keys import RECS_SHARDS, Keys
from core.served_list import (
    SERVED_ITEMS_KEEP_S,
    ServedList,
    hour_of,
    hourly_ttl,
    list_fields,
    stats_fields,
)


class ListCounts:
    """The counters of the lists written since the last `queue()`."""

    def __init__(self) -> None:
        self.totals: Counter[str] = Counter()
        self.hourly: dict[int, Counter[str]] = {}  # hour -> field counts
        self.served: dict[tuple[str, int, str | None], set[str]] = {}  # sketch -> items
        self.lists = 0  # lists counted

    def add(self, rec: ServedList) -> None:
        """Count one list (written, or about to be)."""
        self.lists += 1
        hour = hour_of(rec.t)
        hourly = self.hourly.setdefault(hour, Counter())
        hourly.update(list_fields(rec.surface, rec.variant, rec.degraded, rec.ms, rec.safety))
        if not rec.items:
            return  # counted for the guardrails; nothing to attribute
        items = [it.item_id for it in rec.items]
        for variant in (None, rec.variant):
            self.served.setdefault((rec.surface, hour, variant), set()).update(items)
        by_sources = Counter(it.sources for it in rec.items)  # a list has few distinct sets
        for sources, n in by_sources.items():
            for field in stats_fields("imp", rec.surface, rec.variant, sources):
                self.totals[field] += n
                hourly[field] += n

    def queue(self, pipe: Any, keys: Keys, shard: int) -> None:
        """Queue the increments in `pipe`, into the counters of `shard`."""
        assert 0 <= shard < RECS_SHARDS
        now = time.time()
        for field, n in self.totals.items():
            pipe.hincrby(keys.surface_stats(shard), field, n)
        for hour, counts in self.hourly.items():
            key = keys.surface_stats_hour(shard, hour)
            for field, n in counts.items():
                pipe.hincrby(key, field, n)
            if counts:
                pipe.expire(key, hourly_ttl(hour, now))
        for (surface, hour, variant), items in self.served.items():
            key = keys.served_items_hour(surface, hour, variant)
            pipe.pfadd(key, *sorted(items))
            pipe.expire(key, SERVED_ITEMS_KEEP_S)
