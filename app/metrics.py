"""Prometheus metrics of the API, plus the queue and worker figures read from Redis at scrape.

Request and pipeline metrics are observed in-process. Queue length, consumer lag, dead
letters, events applied (workers add to a Redis counter per batch) and model versions are
collected from Redis when `/metrics` is scraped, so one scrape of any API process shows the
whole pipeline. With several uvicorn workers per host, set PROMETHEUS_MULTIPROC_DIR (see the
prometheus_client docs) or scrape each process.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import REGISTRY, Collector

if TYPE_CHECKING:
    from app.state import AppState

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

REQUESTS = Histogram(
    "vantage_http_request_duration_seconds",
    "HTTP request latency by route, method, status and surface",
    ["route", "method", "status", "surface"],
    buckets=_BUCKETS,
)
STAGES = Histogram(
    "vantage_pipeline_stage_duration_seconds",
    "Time spent in each recommendation pipeline stage",
    ["stage", "surface"],
    buckets=_BUCKETS,
)
CACHE = Counter("vantage_result_cache_total", "Result cache lookups", ["surface", "result"])
FALLBACKS = Counter("vantage_fallbacks_total", "Degraded answers by reason", ["surface", "reason"])
RATE_LIMITED = Counter("vantage_rate_limited_total", "Requests refused with 429", ["key_id"])
IMPRESSIONS = Counter("vantage_impressions_logged_total", "Served lists written to Redis")
# Impressions are best-effort: a full queue or a Redis error loses them, counted here.
IMPRESSIONS_DROPPED = Counter(
    "vantage_impressions_dropped_total", "Served lists not logged", ["reason"]
)


@contextlib.contextmanager
def stage(name: str, surface: str) -> Iterator[None]:
    t = time.perf_counter()
    try:
        yield
    finally:
        STAGES.labels(name, surface).observe(time.perf_counter() - t)


class PipelineCollector(Collector):
    """Queue, worker and model figures, read from Redis at scrape time."""

    def __init__(self, state: AppState):
        self.state = state

    def collect(self) -> Iterator[Any]:
        from app.services.admin import queue_status

        s = self.state
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
        for name, value, text in (
            ("vantage_queue_length", q["length"], "Entries in the event stream"),
            ("vantage_queue_pending", q["pending"], "Delivered, not yet acknowledged events"),
            ("vantage_queue_lag", q["lag"] or 0, "Events not yet delivered to any worker"),
            ("vantage_dead_letters", q["dead_letters"], "Events in the dead-letter stream"),
        ):
            g = GaugeMetricFamily(name, text)
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
            key, val = k.decode(), float(v)
            if key.startswith("applied:"):
                applied.add_metric([key.split(":", 1)[1]], val)
            elif key == "embed_s":
                embed.add_metric([], val)
            elif key == "embedded":
                embedded.add_metric([], val)
        yield applied
        yield embed
        yield embedded
        info = InfoMetricFamily("vantage_model", "Published model versions", labels=["kind"])
        for kind, v in versions.items():
            info.add_metric([kind], {"version": v or "none"})
        yield info
        br = GaugeMetricFamily(
            "vantage_circuit_open", "1 while a dependency's breaker is open", labels=["dep"]
        )
        for dep, st in s.breakers.states().items():
            br.add_metric([dep], 1.0 if st == "open" else 0.0)
        yield br


_registered: PipelineCollector | None = None


def register_pipeline(state: AppState) -> None:
    """Point the (process-wide) pipeline collector at this app's state."""
    global _registered
    if _registered is None:
        _registered = PipelineCollector(state)
        REGISTRY.register(_registered)
    else:
        _registered.state = state
