"""Prometheus metrics of the HTTP shell (the read path's are in `serving.metrics`).

Request metrics are observed in-process; `app.collectors` adds the queue, worker and model
figures read from Redis at scrape time.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from serving.metrics import BUCKETS

REQUESTS = Histogram(
    "vantage_http_request_duration_seconds",
    "HTTP request latency by route, method, status and surface",
    ["route", "method", "status", "surface"],
    buckets=BUCKETS,
)
RATE_LIMITED = Counter("vantage_rate_limited_total", "Requests refused with 429", ["key_id"])
