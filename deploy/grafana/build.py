"""Vantage's Grafana dashboards, built with Grafana's typed SDK (grafana-foundation-sdk).

    python deploy/grafana/build.py    # rewrites executive.json, on-call.json and debug.json

The JSON files next to this script are generated: edit this file and run it, never the JSON
(tests/test_dashboards.py fails when the two disagree). Every query reads a metric the API
exports at /metrics. The figures the pipeline collector reads from Redis at scrape time (queue,
workers, breakers, surface counters) are the same cluster-wide value on every pod, so they are
aggregated with max(), never sum(); per-pod request counters are summed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders import common, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DashboardLink,
    DatasourceVariable,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    GraphTresholdsStyleMode,
    LegendDisplayMode,
    LegendPlacement,
    SortOrder,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

HERE = Path(__file__).resolve().parent
DS = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
HTTP = "vantage_http_request_duration_seconds"
STAGE = "vantage_pipeline_stage_duration_seconds"
API = 'route!~"/healthz|/readyz|/metrics"'  # the availability SLI's requests (the alert's)
RECS = 'route="/v1/recommendations"'
SURFACE = 'surface=~"$surface"'
FIVE_XX = 'status=~"5.."'
FAST = 'le="0.2"'  # the latency SLO's bucket
W = "[$__rate_interval]"


def sel(*matchers: str) -> str:
    """A PromQL label selector: sel('a="b"', 'c=~"d"') -> {a="b",c=~"d"}."""
    return "{" + ",".join(matchers) + "}"


# ---- panels ---------------------------------------------------------------------------------


def query(expr: str, legend: str = "__auto", ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).range()


def instant(expr: str, legend: str = "__auto", ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).instant()


def steps(*pairs: tuple[float | None, str]) -> ThresholdsConfig:
    """Threshold steps, the first with value None (Grafana's base step, -Infinity)."""
    return (
        ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=v, color=c) for v, c in pairs])
    )


def graph(
    title: str,
    description: str,
    unit: str,
    *targets: prometheus.Dataquery,
    span: int = 12,
    height: int = 8,
    line_at: float | None = None,
) -> timeseries.Panel:
    """A time series; `line_at` draws a dashed red line at an alert's or an SLO's threshold."""
    p = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .unit(unit)
        .span(span)
        .height(height)
        .fill_opacity(10)
        .legend(
            common.VizLegendOptions()
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common.VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING)
        )
        .targets(list(targets))
    )
    if line_at is None:
        return p.thresholds(steps((None, "green")))
    return p.thresholds(steps((None, "green"), (line_at, "red"))).thresholds_style(
        common.GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.DASHED)
    )


def single(
    title: str,
    description: str,
    unit: str,
    target: prometheus.Dataquery,
    thresholds: ThresholdsConfig,
    *,
    span: int = 6,
    mappings: dict[str, tuple[str, str]] | None = None,
) -> stat.Panel:
    """A stat of one value (a sparkline under range queries); `mappings`: value -> text, color."""
    p = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .unit(unit)
        .span(span)
        .height(4)
        .graph_mode(BigValueGraphMode.NONE if target.build().instant else BigValueGraphMode.AREA)
        .color_mode(BigValueColorMode.VALUE)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(thresholds)
        .with_target(target)
    )
    if mappings:
        results = {
            value: model.ValueMappingResult(text=text, color=color, index=i)
            for i, (value, (text, color)) in enumerate(sorted(mappings.items()))
        }
        p = p.mappings([model.ValueMap(options=results)])
    return p


def dashboard(uid: str, title: str, description: str, variables: list[QueryVariable]) -> Dashboard:
    """A dashboard with the shared settings, the datasource picker and `variables`."""
    board = (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["vantage"])
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .annotations([])  # an empty list, not `{}`: Grafana adds its built-in annotation to it
        .link(
            DashboardLink("Vantage dashboards")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(["vantage"])
            .as_dropdown(True)
            .keep_time(True)
            .include_vars(False)
            .target_blank(False)
        )
        .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )
    for v in variables:
        board = board.with_variable(v)
    return board


def label_values(name: str, label: str, query_text: str) -> QueryVariable:
    """A multi-value variable from a label's values, "All" matching every value (.*)."""
    return (
        QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query(query_text)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def surface_variable(metric: str) -> QueryVariable:
    return label_values("surface", "Surface", f"label_values({metric}, surface)")


def numbered(board: Dashboard) -> model.Dashboard:
    """The built dashboard, its panels numbered top to bottom (Grafana needs unique ids)."""
    built = board.build()
    for i, panel in enumerate(built.panels or [], 1):
        panel.id_val = i
    return built


# ---- executive ------------------------------------------------------------------------------

IMPS = "vantage_surface_impressions_total"
CLICKS = "vantage_surface_clicks_total"
SV = sel(SURFACE, 'variant=~"$variant"')


def executive() -> model.Dashboard:
    board = dashboard(
        "vantage-executive",
        "Vantage / Executive",
        "Engagement and volume per surface and variant. Impressions and clicks are the "
        "attributed counters the CTR alert reads (each item counted once per served list); "
        "catalogue coverage and list diversity show how much of the catalogue reaches users.",
        [
            surface_variable(IMPS),
            label_values("variant", "Variant", f"label_values({IMPS}{sel(SURFACE)}, variant)"),
        ],
    )

    def over_range(metric: str) -> str:
        return f"sum(max by (surface, variant) (increase({metric}{SV}[$__range])))"

    board = (
        board.with_row(Row("Engagement over the selected time range"))
        .with_panel(
            single(
                "CTR",
                "Clicks attributed to served lists / items served, over the time range.",
                "percentunit",
                instant(f"{over_range(CLICKS)} / {over_range(IMPS)}"),
                steps((None, "blue")),
                span=8,
            )
        )
        .with_panel(
            single(
                "Items served",
                "Items in the lists served (impressions), over the time range.",
                "short",
                instant(over_range(IMPS)),
                steps((None, "blue")),
                span=8,
            )
        )
        .with_panel(
            single(
                "Clicks",
                "Clicks attributed to a served list, over the time range.",
                "short",
                instant(over_range(CLICKS)),
                steps((None, "blue")),
                span=8,
            )
        )
        .with_row(Row("Click-through rate"))
    )
    ctr = (
        f"max by (surface, variant) (rate({CLICKS}{SV}[1h]))"
        f" / max by (surface, variant) (rate({IMPS}{SV}[1h]))"
    )
    default = sel(SURFACE, 'variant="default"')

    def default_ctr(offset: str = "") -> str:
        # PromQL takes `offset` on a selector, not on an expression: each selector gets it.
        window = f"[1h]{offset and ' offset ' + offset}"
        return (
            f"max by (surface) (rate({CLICKS}{default}{window}))"
            f" / max by (surface) (rate({IMPS}{default}{window}))"
        )

    board = (
        board.with_panel(
            graph(
                "CTR per surface and variant (1 h window)",
                "Clicks / items served over the trailing hour; compare variants of one surface "
                "here (an A/B test's arms are its variants).",
                "percentunit",
                query(ctr, "{{surface}} / {{variant}}"),
            )
        )
        .with_panel(
            graph(
                "CTR now and a week ago, default variant (1 h window)",
                "What the VantageCTRDrop alert compares: it fires when CTR stays 20% under the "
                "same hour last week for 30 minutes (with 1,000+ items served in the hour).",
                "percentunit",
                query(default_ctr(), "{{surface}} now"),
                query(default_ctr("1w"), "{{surface}} a week ago", "B"),
            )
        )
        .with_row(Row("Coverage and diversity"))
    )
    return numbered(_executive_volume(_executive_breadth(board)))


def _executive_breadth(board: Dashboard) -> Dashboard:
    served = 'max by (surface) (vantage_items_served_distinct{surface=~"$surface|\\\\*"})'
    return (
        board.with_panel(
            graph(
                "Catalogue coverage, last 24 h",
                "Distinct items served in the trailing 24 hours (a HyperLogLog, ~1% error) / "
                "items in the catalogue; `*` is any surface. A falling share means the lists "
                "concentrate on fewer items (popularity bias).",
                "percentunit",
                query(f"{served} / scalar(max(vantage_catalogue_items))", "{{surface}}"),
            )
        )
        .with_panel(
            graph(
                "List diversity, per surface (mean, 1 h)",
                "Distinct primary categories / items per computed list (cached answers are "
                "not counted again); 1 = every item from another category.",
                "percentunit",
                query(
                    "sum by (surface) (rate(vantage_list_category_diversity_sum"
                    f"{sel(SURFACE)}[1h])) / sum by (surface) "
                    f"(rate(vantage_list_category_diversity_count{sel(SURFACE)}[1h]))",
                    "{{surface}}",
                ),
            )
        )
        .with_row(Row("Volume"))
    )


def _executive_volume(board: Dashboard) -> Dashboard:
    return (
        board.with_panel(
            graph(
                "Items served per hour, per surface",
                "Impressions per surface over the trailing hour (all selected variants).",
                "short",
                query(
                    f"sum by (surface) (max by (surface, variant) (increase({IMPS}{SV}[1h])))",
                    "{{surface}}",
                ),
                span=8,
            )
        )
        .with_panel(
            graph(
                "Recommendation requests per second, per surface",
                "GET /v1/recommendations answered, all statuses, summed over API pods.",
                "reqps",
                query(
                    f"sum by (surface) (rate({HTTP}_count{sel(RECS, SURFACE)}{W}))",
                    "{{surface}}",
                ),
                span=8,
            )
        )
        .with_panel(
            graph(
                "Items per answered list, per surface (mean)",
                "Length of the lists the API answers (fresh, cached or degraded). A fall "
                "towards 0 means filters or failing sources are emptying lists.",
                "short",
                query(
                    f"sum by (surface) (rate(vantage_served_list_size_sum{sel(SURFACE)}{W}))"
                    f" / sum by (surface) (rate(vantage_served_list_size_count{sel(SURFACE)}{W}))",
                    "{{surface}}",
                ),
                span=8,
            )
        )
        .with_panel(
            table.Panel()
            .title("Published model versions")
            .description("The model version each kind serves now (from the model registry).")
            .datasource(DS)
            .span(24)
            .height(5)
            .show_header(True)
            .with_target(
                instant("max by (kind, version) (vantage_model_info)", "{{kind}}").format(
                    PromQueryFormat.TABLE
                )
            )
            .with_transformation(
                model.DataTransformerConfig(
                    id_val="organize",
                    options={"excludeByName": {"Time": True, "Value": True}},
                )
            )
        )
    )


# ---- on-call --------------------------------------------------------------------------------


def on_call() -> model.Dashboard:
    board = dashboard(
        "vantage-on-call",
        "Vantage / On-call",
        "The SLOs (99.9% of API requests without a 5xx; 95% of recommendations within 200 ms), "
        "what degrades answers, the dependencies, and the indexing pipeline's freshness. "
        "Alerts: deploy/prometheus/vantage-rules.yml.",
        [surface_variable(f"{HTTP}_count{sel(RECS)}")],
    )
    errors = f"(sum(increase({HTTP}_count{sel(API, FIVE_XX)}[$__range])) or vector(0))"
    fast = f"sum(increase({HTTP}_bucket{sel(RECS, FAST)}[$__range]))"
    board = (
        board.with_row(Row("SLOs over the selected time range"))
        .with_panel(
            single(
                "Availability (non-5xx)",
                "Share of API requests (probes and /metrics excluded) answered without a 5xx. "
                "SLO: 99.9%.",
                "percentunit",
                instant(f"1 - {errors} / sum(increase({HTTP}_count{sel(API)}[$__range]))"),
                steps((None, "red"), (0.999, "green")),
            )
        )
        .with_panel(
            single(
                "Recommendations within 200 ms",
                "Share of GET /v1/recommendations answered within 200 ms. SLO: 95%.",
                "percentunit",
                instant(f"{fast} / sum(increase({HTTP}_count{sel(RECS)}[$__range]))"),
                steps((None, "red"), (0.95, "green")),
            )
        )
        .with_panel(
            single(
                "Live indexing workers",
                "Workers with a live heartbeat. 0 pages (VantageNoIndexingWorker).",
                "short",
                query("max(vantage_workers_live)"),
                steps((None, "red"), (1, "green")),
            )
        )
        .with_panel(
            single(
                "Dead letters",
                "Events that failed every retry. Inspect with GET /v1/admin/dead-letters, then "
                "replay or drop them.",
                "short",
                query("max(vantage_dead_letters)"),
                steps((None, "green"), (1, "orange")),
            )
        )
    )
    return numbered(_on_call_pipeline(_on_call_dependencies(_on_call_requests(board))))


def _on_call_requests(board: Dashboard) -> Dashboard:
    errors = f"(sum(rate({HTTP}_count{sel(API, FIVE_XX)}{W})) or vector(0))"

    def quantile(q: float) -> str:
        buckets = f"rate({HTTP}_bucket{sel(RECS, SURFACE)}{W})"
        return f"histogram_quantile({q}, sum by (surface, le) ({buckets}))"

    return (
        board.with_row(Row("Requests"))
        .with_panel(
            graph(
                "Availability (non-5xx ratio)",
                "1 - 5xx / all API requests (probes and /metrics excluded), summed over pods.",
                "percentunit",
                query(f"1 - {errors} / sum(rate({HTTP}_count{sel(API)}{W}))", "availability"),
                line_at=0.999,
            )
        )
        .with_panel(
            graph(
                "Recommendation latency p95 and p99, per surface",
                "From the request histogram (the SLO: p95 under 200 ms, the dashed line).",
                "s",
                query(quantile(0.95), "p95 {{surface}}"),
                query(quantile(0.99), "p99 {{surface}}", "B"),
                line_at=0.2,
            )
        )
        .with_panel(
            graph(
                "5xx ratio by route",
                "Share of each route's requests answered with a 5xx.",
                "percentunit",
                query(
                    f"sum by (route) (rate({HTTP}_count{sel(FIVE_XX)}{W}))"
                    f" / sum by (route) (rate({HTTP}_count{W}))",
                    "{{route}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Fallbacks by reason",
                "Degraded answers (still 200) per second, by reason: a failed or slow source, "
                "the last good list, the popular snapshot, a skipped ranker.",
                "reqps",
                query(
                    f"sum by (reason) (rate(vantage_fallbacks_total{sel(SURFACE)}{W}))",
                    "{{reason}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Rate-limited requests (429) by API key",
                "Requests refused by the token bucket, per key id.",
                "reqps",
                query("sum by (key_id) (rate(vantage_rate_limited_total" + W + "))", "{{key_id}}"),
            )
        )
        .with_panel(
            graph(
                "Impressions dropped by reason",
                "Served lists not logged (a full in-process queue, a Redis error): CTR and "
                "training data lose them.",
                "short",
                query(
                    "sum by (reason) (rate(vantage_impressions_dropped_total" + W + "))",
                    "{{reason}}",
                ),
            )
        )
    )


def _on_call_dependencies(board: Dashboard) -> Dashboard:
    return (
        board.with_row(Row("Dependencies"))
        .with_panel(
            single(
                "Dependency up",
                "1 if the dependency answered the last scrape (Redis; when it is down the other "
                "pipeline figures are missing too).",
                "none",
                query("max by (dep) (vantage_dependency_up)", "{{dep}}"),
                steps((None, "red"), (1, "green")),
                span=12,
                mappings={"0": ("down", "red"), "1": ("up", "green")},
            )
        )
        .with_panel(
            single(
                "Circuit breakers",
                "Open on any API pod: requests are answered from caches and fallbacks. "
                "Open 5 minutes pages (VantageDependencyDown).",
                "none",
                query("max by (dep) (vantage_circuit_open)", "{{dep}}"),
                steps((None, "green"), (1, "red")),
                span=12,
                mappings={"0": ("closed", "green"), "1": ("open", "red")},
            )
        )
    )


def _on_call_pipeline(board: Dashboard) -> Dashboard:
    return (
        board.with_row(Row("Indexing pipeline"))
        .with_panel(
            graph(
                "Queue lag and pending",
                "Lag: events not yet delivered to any worker (ticket over 5,000 for 10 min). "
                "Pending: delivered, not yet acknowledged.",
                "short",
                query("max(vantage_queue_lag)", "lag"),
                query("max(vantage_queue_pending)", "pending", "B"),
                query("max(vantage_queue_length)", "stream length", "C"),
                span=8,
            )
        )
        .with_panel(
            graph(
                "Freshness: seconds since a worker acknowledged an event",
                "Over 60 s while events wait pages (VantageIndexingStalled). Absent before the "
                "first acknowledgement.",
                "s",
                query("max(vantage_worker_last_ack_age_seconds)", "since last ack"),
                span=8,
                line_at=60,
            )
        )
        .with_panel(
            graph(
                "Dead letters added (15 min)",
                "Events dead-lettered in the trailing 15 minutes (VantageDeadLetters).",
                "short",
                query(
                    "max(vantage_dead_letters) - max(vantage_dead_letters offset 15m)",
                    "added",
                ),
                span=8,
            )
        )
    )


# ---- debug ----------------------------------------------------------------------------------


def debug() -> model.Dashboard:
    board = dashboard(
        "vantage-debug",
        "Vantage / Debug",
        "Where a request's time goes, what the caches and sources yield, and what the indexing "
        "workers do. Worker figures are running totals read from Redis; their rate() is per "
        "second.",
        [surface_variable(f"{STAGE}_count")],
    )

    def stage_q(q: float) -> str:
        buckets = f"rate({STAGE}_bucket{sel(SURFACE)}{W})"
        return f"histogram_quantile({q}, sum by (stage, le) ({buckets}))"

    def cache(*matchers: str) -> str:
        return f"sum by (surface) (rate(vantage_result_cache_total{sel(SURFACE, *matchers)}{W}))"

    def per_source(part: str) -> str:
        return f"sum by (source) (rate(vantage_candidates_{part}{sel(SURFACE)}{W}))"

    board = (
        board.with_row(Row("Read path"))
        .with_panel(
            graph(
                "Stage latency p50",
                "Median time in each pipeline stage (retrieval = candidates and fusion).",
                "s",
                query(stage_q(0.5), "{{stage}}"),
            )
        )
        .with_panel(
            graph(
                "Stage latency p95",
                "95th percentile per stage; the request SLO is 200 ms end to end.",
                "s",
                query(stage_q(0.95), "{{stage}}"),
                line_at=0.2,
            )
        )
        .with_panel(
            graph(
                "Result cache hit ratio, per surface",
                "Hits / lookups (debug requests bypass the cache).",
                "percentunit",
                query(
                    cache('result="hit"') + " / " + cache(),
                    "{{surface}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Candidates per request, per source (mean)",
                "What each source yields before fusion and the hard filters; 0 when it failed "
                "or ran out of time.",
                "short",
                query(
                    per_source("sum") + " / " + per_source("count"),
                    "{{source}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Ranker feature drift (PSI), per feature",
                "Population stability index of each ranker feature, the rows served against "
                "the rows the ranker was trained on (worst pod). Under 0.1 stable; over 0.25 "
                "for an hour alerts (VantageRankerFeatureDrift): retrain.",
                "short",
                query("max by (feature) (vantage_ranker_feature_psi)", "{{feature}}"),
                line_at=0.25,
            )
        )
    )
    return numbered(_debug_workers(board))


def _debug_workers(board: Dashboard) -> Dashboard:
    # Running totals kept in Redis, exported as gauges that only grow: rate() (not deriv()) is
    # right, and treats a reset of the Redis hash as a counter reset.
    return (
        board.with_row(Row("Indexing workers"))
        .with_panel(
            graph(
                "Events applied per second, by type",
                "All workers together (rate of the Redis running total).",
                "ops",
                query("max by (type) (rate(vantage_events_applied_total" + W + "))", "{{type}}"),
                span=8,
            )
        )
        .with_panel(
            graph(
                "Embedding: seconds per item",
                "Worker time spent embedding item text, per item embedded.",
                "s",
                query(
                    "max(rate(vantage_embedding_seconds_total" + W + "))"
                    " / max(rate(vantage_items_embedded_total" + W + "))",
                    "seconds per item",
                ),
                span=8,
            )
        )
        .with_panel(
            graph(
                "Items embedded per second",
                "All workers together.",
                "ops",
                query("max(rate(vantage_items_embedded_total" + W + "))", "items/s"),
                span=8,
            )
        )
        .with_panel(
            graph(
                "Candidate sets queued for refresh",
                "Owners whose precomputed candidate sets are due a rebuild.",
                "short",
                query("max(vantage_candidate_sets_queued)", "queued"),
            )
        )
        .with_panel(
            graph(
                "Item metadata cache size, per pod",
                "Items whose metadata each API process holds in memory (per process, not "
                "cluster-wide).",
                "short",
                query("max by (instance) (vantage_item_cache_items)", "{{instance}}"),
            )
        )
    )


# ---- output ---------------------------------------------------------------------------------

DASHBOARDS: dict[str, Callable[[], model.Dashboard]] = {
    "executive": executive,
    "on-call": on_call,
    "debug": debug,
}


def render(board: model.Dashboard) -> str:
    """The dashboard as checked in: the SDK's encoder, sorted keys, indent 2, final newline."""
    return JSONEncoder(sort_keys=True, indent=2).encode(board) + "\n"


def main() -> int:
    for name, build in DASHBOARDS.items():
        path = HERE / f"{name}.json"
        path.write_text(render(build()))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
