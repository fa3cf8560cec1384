"""Metrics of the read path, observed in-process (the API exports them at /metrics)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import Counter, Histogram

from core.tracing import span

# 0.2: the latency SLO threshold (p95 < 200 ms; deploy/prometheus/vantage-rules.yml).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.5, 5.0)

STAGES = Histogram(
    "vantage_pipeline_stage_duration_seconds",
    "Time spent in each recommendation pipeline stage",
    ["stage", "surface"],
    buckets=BUCKETS,
)
CACHE = Counter("vantage_result_cache_total", "Result cache lookups", ["surface", "result"])
FALLBACKS = Counter("vantage_fallbacks_total", "Degraded answers by reason", ["surface", "reason"])
IMPRESSIONS = Counter("vantage_impressions_logged_total", "Served lists written to Redis")
# Impressions are best-effort: a full queue or a Redis error loses them, counted here.
SHADOW = Counter(
    "vantage_shadow_lists_total",
    "Lists of registered off-policy candidates computed beside served lists, by outcome "
    "(computed, dropped: the background queue was full, failed)",
    ["outcome"],
)
IMPRESSIONS_DROPPED = Counter(
    "vantage_impressions_dropped_total",
    "Served lists not logged (reason counts: logged, their impression counters lost)",
    ["reason"],
)
# Sizes, not times: a source or a rule quietly emptying lists shows here before it shows in CTR.
# Zero is a bucket of its own (a source that failed or ran out of time yields 0).
CANDIDATES = Histogram(
    "vantage_candidates",
    "Candidates each source yielded per request (before fusion and the hard filters)",
    ["surface", "source"],
    buckets=(0, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
)
SERVED = Histogram(
    "vantage_served_list_size",
    "Items in each answered list (fresh, cached or degraded)",
    ["surface"],
    buckets=(0, 1, 5, 10, 20, 50, 100, 250, 500, 1000),
)


DIVERSITY = Histogram(
    "vantage_list_category_diversity",
    "Distinct primary categories / items, per computed list of at least 2 items",
    ["surface"],
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
)


@contextlib.contextmanager
def stage(name: str, surface: str) -> Iterator[None]:
    """Time a pipeline stage (histogram) and trace it (a span, when tracing is on)."""
    t = time.perf_counter()
    try:
        with span(f"stage {name}", **{"vantage.surface": surface}):
            yield
    finally:
        STAGES.labels(name, surface).observe(time.perf_counter() - t)


def candidates(surface: str, per_source: Iterable[tuple[str, int]]) -> None:
    """Observe how many candidates each source of one request yielded."""
    for source, n in per_source:
        CANDIDATES.labels(surface, source).observe(n)


def diversity(surface: str, categories: Sequence[str | None]) -> None:
    """Observe one computed list's category diversity (an item without one is its own)."""
    if len(categories) >= 2:
        distinct = {c if c else f"\0{i}" for i, c in enumerate(categories)}
        DIVERSITY.labels(surface).observe(len(distinct) / len(categories))
