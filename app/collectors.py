"""Queue, worker and model figures, read from Redis when `/metrics` is scraped.

Queue length, consumer lag, dead letters, events applied (workers add to a Redis counter per
batch), worker liveness, model versions and impressions and clicks per surface and variant
(the CTR alert's input) are collected at scrape time, as is this process's ranker feature
drift (serving.drift), so one scrape of any API process
shows the whole pipeline. With several uvicorn workers per host, set
PROMETHEUS_MULTIPROC_DIR (see the prometheus_client docs) or scrape each process.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import REGISTRY, Collector

from app.services.admin import queue_status
from app.services.analytics import surface_rows
from app.state import AppState
from core.redis_typed import text
from core.served_list import hour_of
from indexing.worker import LAST_ACK_FIELD
from serving.drift import MONITOR

LABELS = ["surface", "variant"]  # of the per-surface counters


class PipelineCollector(Collector):
    """Queue, worker and model figures, read from Redis at scrape time."""

    def __init__(self, state: AppState):
        self.state = state

    def collect(self) -> Iterator[Metric]:

        s = self.state
        yield from _drift_gauges()  # this process's own figures: reported even without Redis
        up = GaugeMetricFamily(
            "vantage_dependency_up", "1 if the dependency answers", labels=["dep"]
        )
        try:
            q = queue_status(s)
            stats = s.redis.hgetall(s.keys.worker_stats)
            versions = {k: s.models.current(k) for k in ("cf", "ranker")}
            up.add_metric(["redis"], 1)
        except Exception:
            up.add_metric(["redis"], 0)
            yield up
            return
        yield up
        for name, value, help_text in (
            ("vantage_queue_length", q["length"], "Entries in the event stream"),
            ("vantage_queue_pending", q["pending"], "Delivered, not yet acknowledged events"),
            ("vantage_queue_lag", q["lag"] or 0, "Events not yet delivered to any worker"),
            ("vantage_dead_letters", q["dead_letters"], "Events in the dead-letter stream"),
        ):
            g = GaugeMetricFamily(name, help_text)
            g.add_metric([], float(value))
            yield g
        applied = GaugeMetricFamily(
            "vantage_events_applied_total",
            "Events applied by all workers (rate() of it = events/s)",
            labels=["type"],
        )
        embed = GaugeMetricFamily(
            "vantage_embedding_seconds_total", "Time workers spent embedding item text"
        )
        embedded = GaugeMetricFamily("vantage_items_embedded_total", "Items embedded by workers")
        for k, v in stats.items():
            key, val = text(k), float(v)
            if key.startswith("applied:"):
                applied.add_metric([key.split(":", 1)[1]], val)
            elif key == "embed_s":
                embed.add_metric([], val)
            elif key == "embedded":
                embedded.add_metric([], val)
        yield applied
        yield embed
        yield embedded
        yield from _worker_gauges(q, stats)
        info = InfoMetricFamily("vantage_model", "Published model versions", labels=["kind"])
        for kind, version in versions.items():
            info.add_metric([kind], {"version": version or "none"})
        yield info
        br = GaugeMetricFamily(
            "vantage_circuit_open", "1 while a dependency's breaker is open", labels=["dep"]
        )
        for dep, st in s.breakers.states().items():
            br.add_metric([dep], 1.0 if st == "open" else 0.0)
        yield br
        yield from _candidate_gauges(s)
        yield from _surface_counters(s)
        yield from _coverage_gauges(s)


def _worker_gauges(q: dict[str, Any], stats: dict[Any, Any]) -> Iterator[Metric]:
    """Live workers and how long ago any of them acknowledged an event (the freshness alert:
    events waiting while nothing is acknowledged)."""
    live = GaugeMetricFamily("vantage_workers_live", "Indexing workers with a live heartbeat")
    live.add_metric([], float(len(q["workers"])))
    yield live
    last = next((v for k, v in stats.items() if text(k) == LAST_ACK_FIELD), None)
    age = GaugeMetricFamily(
        "vantage_worker_last_ack_age_seconds",
        "Seconds since any worker last acknowledged an event (absent before the first)",
    )
    if last is not None:
        age.add_metric([], max(time.time() - int(last) / 1000, 0.0))
    yield age


def _drift_gauges() -> Iterator[Metric]:
    """PSI per ranker feature, this process's scored rows against the ranker's training rows
    (serving.drift; per process: aggregate with max() by feature)."""
    version, rows, by_feature = MONITOR.snapshot()
    drift = GaugeMetricFamily(
        "vantage_ranker_feature_psi",
        "Population stability index of a ranker feature, served vs trained",
        labels=["feature", "version"],
    )
    for feature, value in by_feature.items():
        drift.add_metric([feature, version or ""], value)
    yield drift
    scored = GaugeMetricFamily(
        "vantage_ranker_drift_rows", "Rows the drift figures are computed on (decayed)"
    )
    scored.add_metric([], rows)
    yield scored


def _surface_counters(s: AppState) -> Iterator[Metric]:
    """Impressions and attributed clicks per surface and variant (every source counted once),
    cluster-wide: each API process reports the same totals, so aggregate them with max()."""
    imps = CounterMetricFamily(
        "vantage_surface_impressions", "Items served, per surface and variant", labels=LABELS
    )
    clicks = CounterMetricFamily(
        "vantage_surface_clicks", "Clicks attributed to a served list", labels=LABELS
    )
    try:
        rows = surface_rows(s)
    except redis.RedisError:
        rows = []  # Redis failed since the scrape began: these counters stay empty, not the scrape
    for row in rows:
        if row["source"] == "*":
            imps.add_metric([row["surface"], row["variant"]], float(row["impressions"]))
            clicks.add_metric([row["surface"], row["variant"]], float(row["clicks"]))
    yield imps
    yield clicks


def _candidate_gauges(s: AppState) -> Iterator[Metric]:
    cache = GaugeMetricFamily(
        "vantage_item_cache_items", "Items whose metadata this process holds in memory"
    )
    cache.add_metric([], float(len(s.item_cache)))
    yield cache
    stale = GaugeMetricFamily(
        "vantage_candidate_sets_queued", "Owners whose candidate sets are due a refresh"
    )
    # Redis failing since the scrape began leaves this gauge empty, not the scrape.
    with contextlib.suppress(redis.RedisError):
        stale.add_metric([], float(s.redis.zcard(s.keys.candidates_stale)))
    yield stale


COVERAGE_HOURS = 24
CATALOGUE_COUNT_EVERY_S = 60.0  # a count is a Milvus query: at most one a minute per process
_catalogue: dict[str, float] = {}  # "at", "n": the last count; "of": the state it counted


def _coverage_gauges(s: AppState) -> Iterator[Metric]:
    """Distinct items served in the last day, per surface and on any (`*`), and the catalogue
    size: their ratio is the catalogue coverage (executive dashboard). Each read is guarded:
    a failing one leaves its gauge empty, not the scrape."""
    served = GaugeMetricFamily(
        "vantage_items_served_distinct",
        f"Distinct items served in the last {COVERAGE_HOURS} hours (HyperLogLog, ~1% error)",
        labels=["surface"],
    )
    now = hour_of(time.time())
    hours = range(now - COVERAGE_HOURS + 1, now + 1)
    names = list(s.settings.surfaces)
    keys = {n: [s.keys.served_items_hour(n, h) for h in hours] for n in names}
    counts: list[int] = []
    try:
        # One call per sketch union, not a pipeline: a Redis Cluster pipeline refuses PFCOUNT
        # (the keys share one slot, so the command itself is fine there).
        for n in names:
            counts.append(int(s.redis.pfcount(*keys[n])))
        counts.append(int(s.redis.pfcount(*(k for n in names for k in keys[n]))))
    except redis.RedisError:
        counts = []
    for name, count in zip([*names, "*"], counts, strict=False):
        served.add_metric([name], float(count))
    yield served
    size = GaugeMetricFamily(
        "vantage_catalogue_items", "Items in the live collection (counted once a minute)"
    )
    stale = time.monotonic() - _catalogue.get("at", -1e9) > CATALOGUE_COUNT_EVERY_S
    if stale or _catalogue.get("of") != id(s):
        try:
            _catalogue.update(n=float(s.items.count()), at=time.monotonic(), of=id(s))
        except Exception:
            _catalogue.pop("n", None)  # unknown while Milvus does not answer
    if (total := last_catalogue_count(s)) is not None:
        size.add_metric([], float(total))
    yield size


def last_catalogue_count(s: AppState) -> int | None:
    """The live collection's size as this process last counted it (None: not yet). A count
    scans every row on Milvus Lite (1.3 s at 200k rows here), so only `/metrics` counts, once
    a minute; `/readyz`, polled every few seconds, reports the last count."""
    if _catalogue.get("of") != id(s) or "n" not in _catalogue:
        return None
    return int(_catalogue["n"])


_registered: PipelineCollector | None = None


def register_pipeline(state: AppState) -> None:
    """Point the (process-wide) pipeline collector at this app's state."""
    global _registered
    if _registered is None:
        _registered = PipelineCollector(state)
        REGISTRY.register(_registered)
    else:
        _registered.state = state
