"""OpenTelemetry traces: off by default, configured by the standard OTEL_* variables, and one
span per request, pipeline stage and dependency call (checked with an in-memory exporter)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core.tracing import exporters


def test_tracing_is_off_unless_the_otel_variables_ask() -> None:
    assert exporters({}) == []
    assert exporters({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) == ["otlp"]
    assert exporters({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}) == ["otlp"]
    assert exporters({"OTEL_TRACES_EXPORTER": "console,otlp"}) == ["console", "otlp"]
    assert exporters({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"}) == []
    on = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}
    assert exporters(on) == []
    with pytest.raises(ValueError, match="jaeger"):
        exporters({"OTEL_TRACES_EXPORTER": "jaeger"})


def test_configure_installs_the_exporters_the_variables_name() -> None:
    # In a child process: a tracer provider is set once per process.
    code = """
import json, sys
from opentelemetry import trace
from core.tracing import configure
env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SERVICE_NAME": "edge-api"}
provider = configure("vantage-api", env)
procs = provider._active_span_processor._span_processors
print(json.dumps({
    "installed": trace.get_tracer_provider() is provider,
    "exporters": [type(p.span_exporter).__name__ for p in procs],
    "service": provider.resource.attributes.get("service.name"),
    "again": configure("vantage-api", env) is None,
}))
"""
    env = {"OTEL_SERVICE_NAME": "edge-api", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {
        "installed": True,
        "exporters": ["OTLPSpanExporter"],
        "service": "edge-api",
        "again": True,
    }


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span this process ends, while the test runs."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    assert isinstance(trace.get_tracer_provider(), TracerProvider)
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[attr-defined]
    yield exporter
    exporter.shutdown()  # the processor stays (providers cannot drop one): it exports nothing


@pytest.mark.integration
def test_a_recommendation_is_one_trace_of_stage_and_dependency_spans(
    client: Any, spans: InMemorySpanExporter
) -> None:
    caller = "0af7651916cd43dd8448eb211c80319c"  # a caller's trace (W3C traceparent)
    res = client.get(
        "/v1/recommendations",
        params={"user_id": "trace-u", "surface": "homepage"},
        headers={"traceparent": f"00-{caller}-b7ad6b7169203331-01"},
    )
    assert res.status_code == 200, res.text
    done: list[ReadableSpan] = list(spans.get_finished_spans())
    # The request's span is FastAPI's own (its telemetry starts one per request, continuing
    # a caller's `traceparent`): the stage and dependency spans hang from it.
    root = next(
        s
        for s in done
        if s.kind == SpanKind.SERVER and "trace-u" in str((s.attributes or {}).get("url.query"))
    )
    assert root.name == "GET /v1/recommendations"
    assert root.attributes is not None and root.attributes["http.route"] == "/v1/recommendations"
    trace_id = root.context.trace_id
    assert f"{trace_id:032x}" == caller  # the request continues the caller's trace
    mine = [s for s in done if s.context.trace_id == trace_id]
    by_id = {s.context.span_id: s for s in mine}
    stages = {s.name for s in mine if s.name.startswith("stage ")}
    assert {"stage retrieval", "stage policy"} <= stages, stages
    deps = [
        s for s in mine if s.attributes and s.attributes.get("db.system") in ("redis", "milvus")
    ]
    assert deps, [s.name for s in mine]
    for s in mine:  # every span hangs from the request's span
        hop = s
        while hop.parent is not None and hop.parent.span_id in by_id:
            hop = by_id[hop.parent.span_id]
        assert hop is root, s.name


@pytest.mark.integration
def test_the_worker_batch_that_applies_an_event_links_to_the_request_that_queued_it(
    client: Any, worker: Any, spans: InMemorySpanExporter
) -> None:
    caller = "4bf92f3577b34da6a3ce929d0e0e4736"
    res = client.post(
        "/v1/interactions",
        json={"user_id": "trace-w", "item_id": "trace-i", "type": "click"},
        headers={"traceparent": f"00-{caller}-00f067aa0ba902b7-01"},
    )
    assert res.status_code == 202, res.text
    worker.drain()
    done: list[ReadableSpan] = list(spans.get_finished_spans())
    request = next(
        s for s in done if s.kind == SpanKind.SERVER and s.name == "POST /v1/interactions"
    )
    assert f"{request.context.trace_id:032x}" == caller
    batch = next(s for s in done if s.name == "apply interaction.logged")
    # Linked, not a child: a batch applies the events of many requests.
    assert batch.context.trace_id != request.context.trace_id
    linked = {(link.context.trace_id, link.context.span_id) for link in batch.links}
    in_request = {s.context.span_id for s in done if s.context.trace_id == request.context.trace_id}
    assert any(t == request.context.trace_id and sid in in_request for t, sid in linked), linked
    assert batch.attributes is not None and batch.attributes["vantage.events"] == 1
    writes = [s for s in done if s.parent and s.parent.span_id == batch.context.span_id]
    assert writes and {s.name for s in writes} == {"redis execute"}, [s.name for s in writes]
    assert all(s.attributes and s.attributes["db.system"] == "redis" for s in writes)


def test_events_carry_no_traceparent_while_tracing_is_off() -> None:
    from core import events as ev

    fields = ev.encode(ev.INTERACTION_LOGGED, {"user_id": "u", "item_id": "i", "type": "view"})
    assert "tp" not in fields
    assert ev.decode("1-1", fields).traceparent is None
