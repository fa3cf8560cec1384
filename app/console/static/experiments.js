// Experiments: every surface with variants, its arms over the last 24, 72 or 168 hours and
// each variant against `default`: the CTR difference with its always-valid interval, the
// p-value, the guardrails and the decision (GET /v1/admin/experiments); below them, off-policy
// evaluation of candidate configurations on the logged traffic (ope.js).

import { api } from "./api.js";
import { loadOpe, opeSection } from "./ope.js";
import { field, fmtTime, h, intervalPlot, showError, table } from "./ui.js";

const $ = (id) => document.getElementById(id);
const HOURS = { 24: "last 24 hours", 72: "last 72 hours", 168: "last 7 days" };
const pct = (x, digits = 2) => `${(100 * x).toFixed(digits)}%`;
// A CTR difference in percentage points, signed.
const points = (x) => `${x > 0 ? "+" : x < 0 ? "-" : ""}${Math.abs(100 * x).toFixed(2)}`;
const DECISION = { ship: "badge ok", stop: "badge bad", continue: "badge" };
const EXAMPLE = `[surfaces.homepage.variants.more_diverse]
share = 0.5
overrides = { policy = { mmr_lambda = 0.7, category_cap = 3 } }`;

// Guardrails: what each measures, and how its figures read.
const GUARDS = {
  p95_latency_ms: { label: "p95 latency", fmt: (v) => `${v} ms`, breaks: "above" },
  degraded_share: { label: "degraded lists", fmt: (v) => pct(v), breaks: "above" },
  coverage: { label: "coverage (distinct items)", fmt: (v) => String(Math.round(v)), breaks: "below" },
  safety_filter_hits: { label: "safety-filter hits per list", fmt: (v) => Number(v).toFixed(2), breaks: "above" },
};

function armsTable(e) {
  return table([
    { label: "variant", cell: (a) => h("code", {}, a.variant) },
    { label: "share", class: "num", cell: (a) => pct(a.share, 0) },
    { label: "impressions", class: "num", cell: (a) => a.impressions },
    { label: "clicks", class: "num", cell: (a) => a.clicks },
    { label: "CTR", class: "num", cell: (a) => pct(a.ctr) },
    { label: "lists", class: "num", cell: (a) => a.lists },
    { label: "degraded", class: "num", cell: (a) => pct(a.degraded_share) },
    { label: "p95", class: "num", cell: (a) => (a.p95_ms === null ? h("span", { title: "beyond 2,500 ms, or nothing timed" }, "–") : `${a.p95_ms} ms`) },
    { label: "distinct items", class: "num", cell: (a) => a.distinct_items },
  ], e.arms, {
    id: `exp-${e.surface}-arms`,
    rowAttrs: (a) => ({ "data-variant": a.variant, "data-impressions": a.impressions, "data-clicks": a.clicks }),
  });
}

function guardState(g) {
  if (g.breached === null) return h("span", { class: "badge", title: "too little traffic in one of the arms" }, "not judged yet");
  return g.breached ? h("span", { class: "badge bad" }, "broken") : h("span", { class: "badge ok" }, "ok");
}

function guardrailsTable(surface, c) {
  const fmt = (g, v) => (v === null ? "–" : (GUARDS[g.name]?.fmt ?? String)(v));
  return table([
    { label: "guardrail", cell: (g) => h("span", { title: g.name }, GUARDS[g.name]?.label ?? g.name) },
    { label: c.variant, class: "num", cell: (g) => fmt(g, g.value) },
    { label: "default", class: "num", cell: (g) => fmt(g, g.default) },
    { label: "limit", class: "num", cell: (g) => (g.limit === null ? "–" : `${GUARDS[g.name]?.breaks ?? ""} ${fmt(g, g.limit)}`.trim()) },
    { label: "state", cell: guardState },
  ], c.guardrails, {
    id: `exp-${surface}-vs-${c.variant}-guardrails`,
    rowAttrs: (g) => ({ "data-guardrail": g.name, "data-breached": String(g.breached) }),
  });
}

function comparison(surface, c) {
  const numbers = `CTR difference ${points(c.ctr_diff)} points, interval [${points(c.ctr_diff_low)}, ${points(c.ctr_diff_high)}]`;
  return h("div", { class: "comparison panel", id: `exp-${surface}-vs-${c.variant}`, "data-variant": c.variant, "data-decision": c.decision },
    h("h4", {}, h("code", {}, c.variant), " against ", h("code", {}, "default"), " ",
      h("span", { class: `decision ${DECISION[c.decision] ?? "badge"}` }, c.decision)),
    h("p", { class: "reason" }, c.reason),
    h("div", { class: "interval-row" },
      intervalPlot({ estimate: c.ctr_diff, low: c.ctr_diff_low, high: c.ctr_diff_high }, {
        title: `${c.variant} CTR minus default CTR: ${numbers}`, format: points, cls: `decision-${c.decision}`,
      }),
      h("div", {},
        h("div", { class: "ctr-diff" }, numbers),
        h("div", { class: "small" }, `p-value ${Number(c.p_value).toPrecision(3)} (always valid)`))),
    guardrailsTable(surface, c));
}

function experiment(e) {
  const span = `${HOURS[e.window_hours] ?? `last ${e.window_hours} hours`}, since ${fmtTime(e.since)}`;
  return h("div", { class: "experiment", id: `exp-${e.surface}`, "data-surface": e.surface },
    h("h3", {}, `Surface ${e.surface}`),
    h("p", { class: "meta" }, `${span} · ${e.arms.length} arms, users assigned by a stable hash of surface and user id`),
    armsTable(e),
    e.comparisons.map((c) => comparison(e.surface, c)));
}

function none() {
  return h("div", { id: "exp-none", class: "panel" },
    h("p", {}, "No experiment is running: no surface has variants configured."),
    h("p", { class: "small" }, "Variants are configured per surface in surfaces.toml (core/surfaces.toml, or the file VANTAGE_SURFACES_FILE names); "
      + "each gets its share of users and overrides any of the surface's settings. For example:"),
    h("pre", {}, EXAMPLE));
}

async function load() {
  if (!$("exp-list")) return; // still starting
  showError($("exp-error"), null);
  try {
    const { items } = await api("GET", "/v1/admin/experiments", { query: { hours: $("exp-hours").value } });
    $("exp-list").replaceChildren(...(items.length ? items.map(experiment) : [none()]));
    $("exp-status").textContent = `as of ${fmtTime(Date.now() / 1000).slice(11)}`;
  } catch (e) {
    showError($("exp-error"), e);
  }
}

function init(section) {
  section.replaceChildren(
    h("h2", {}, "Experiments"),
    h("form", { class: "form-row", onsubmit: (ev) => { ev.preventDefault(); load(); } },
      field("window", h("select", { id: "exp-hours", onchange: load },
        Object.entries(HOURS).map(([n, label]) => h("option", { value: n, selected: n === "168" }, label)))),
      h("button", { id: "exp-refresh", type: "submit" }, "Refresh"),
      h("span", { id: "exp-status", class: "small" })),
    h("p", { class: "small", id: "exp-note" }, "Each variant's CTR minus default's comes with an always-valid 95% interval: it holds at every look, "
      + "so it may be read at any time (checking every day and stopping once it excludes 0 keeps its 5% error)."),
    h("div", { id: "exp-error" }),
    h("div", { id: "exp-list" }),
    opeSection());
  shown();
}

function shown() {
  load();
  loadOpe();
}

export default { id: "experiments", title: "Experiments", scope: "admin", init, shown };
