"""OpenTelemetry traces: a span per request, per pipeline stage and per dependency call.

Off by default. `configure()` turns tracing on when the standard OpenTelemetry variables ask
for an exporter: `OTEL_TRACES_EXPORTER` (`otlp`, `console`, or both comma-separated), or an
OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, which
imply `otlp`); `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` keeps it off. The SDK
reads everything else itself: `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`, timeouts. Export is OTLP
over HTTP/protobuf (port 4318), batched off the request thread.

Off (no tracer provider set), `span()` returns a shared empty context: a function call and a
type check (OpenTelemetry's own no-op path cost 11 µs per span, about 18 spans per request).

Spans: `GET /v1/recommendations` (FastAPI's own server span, which continues a caller's W3C
`traceparent`) > `fastapi.endpoint` > `stage retrieval`, `stage ranking`, ...
(serving.metrics.stage) > `milvus search`, `redis execute`, ... (every call through a circuit
breaker, core.resilience).

Workers (`vantage-worker`): one span per batch of events of one type (`apply interaction.logged`,
...) > `embed items`, `milvus upsert`, `redis execute`. An accepted write's event carries the
request's `traceparent`, and the batch span links to the requests whose events it applied
(a batch serves many requests: links, not a parent), so a trace shows when a click took effect.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

TRACER = trace.get_tracer("vantage")
EXPORTERS = ("otlp", "console")
MAX_LINKS = 32  # a worker batch links at most this many of the requests that queued it
_W3C = TraceContextTextMapPropagator()


def exporters(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The span exporters the OTEL_* variables ask for (empty: tracing off)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = [e.strip().lower() for e in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    named = [e for e in named if e]
    if not named:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    unknown = [e for e in named if e not in (*EXPORTERS, "none")]
    if unknown:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER: unknown exporter(s) {unknown}; use otlp, console or none"
        )
    return [e for e in named if e != "none"]


def configure(service: str, environ: Mapping[str, str] = os.environ) -> Any | None:
    """Install a tracer provider exporting as the OTEL_* variables say; None when off.

    Once per process (OpenTelemetry keeps the first provider set): the API and the worker
    call it at start-up with their service name (`OTEL_SERVICE_NAME` wins).
    """
    wanted = exporters(environ)
    if not wanted:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return None  # configured already (a second app in this process): spans go there

    attrs = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": service}
    provider = TracerProvider(resource=Resource.create(attrs))
    for name in wanted:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    log.info("tracing on: %s spans exported by %s", service, ", ".join(wanted))
    return provider


def traceparent() -> str | None:
    """The current span as a W3C `traceparent` (None when tracing is off or not sampled):
    events carry it, so the worker's span that applies them links back to the request."""
    if not trace.get_current_span().get_span_context().trace_flags.sampled:
        return None
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent")


def links(parents: Iterable[str | None]) -> list[Link]:
    """Span links to the distinct `traceparent`s given (at most MAX_LINKS; bad ones skipped)."""
    out: dict[tuple[int, int], Link] = {}
    for tp in parents:
        if not tp or len(out) >= MAX_LINKS:
            continue
        ctx = trace.get_current_span(_W3C.extract({"traceparent": tp})).get_span_context()
        if ctx.is_valid:
            out.setdefault((ctx.trace_id, ctx.span_id), Link(ctx))
    return list(out.values())


_OFF: AbstractContextManager[Span] = nullcontext(trace.INVALID_SPAN)


def span(
    name: str, links: list[Link] | None = None, /, **attributes: str | int | float | bool
) -> AbstractContextManager[Span]:
    """A span around the block (a child of the current one, linked to `links`); an exception
    marks it failed. Without a tracer provider (tracing off) nothing is recorded or allocated."""
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return _OFF
    return _span(name, links, **attributes)


@contextmanager
def _span(
    name: str, links: list[Link] | None, /, **attributes: str | int | float | bool
) -> Iterator[Span]:
    with TRACER.start_as_current_span(
        name,
        attributes=attributes,
        links=links,
        record_exception=True,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as e:
            current.set_status(Status(StatusCode.ERROR, type(e).__name__))
            raise


__all__ = ["TRACER", "configure", "exporters", "links", "span", "traceparent"]
