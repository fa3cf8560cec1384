// Analytics: impressions, attributed clicks and CTR per surface, source and variant since
// counting began (GET /v1/admin/metrics/surfaces), as charts and a table.

import { api, serviceInfo } from "./api.js";
import { barChart, field, h, needsApi, showError, table } from "./ui.js";

const $ = (id) => document.getElementById(id);
const pct = (x) => `${(100 * x).toFixed(2)}%`;

async function load() {
  if (!$("an-table")) return; // still starting
  showError($("an-error"), null);
  try {
    const { rows } = await api("GET", "/v1/admin/metrics/surfaces", {
      query: { surface: $("an-surface").value, variant: $("an-variant").value.trim() },
    });
    rows.sort((a, b) => a.surface.localeCompare(b.surface) || a.variant.localeCompare(b.variant) || b.impressions - a.impressions);
    // `*` rows count every served item once: the per-surface totals.
    const totals = rows.filter((r) => r.source === "*").map((r) => ({ ...r, label: `${r.surface} / ${r.variant}` }));
    $("an-charts").replaceChildren(
      h("figure", {}, h("figcaption", {}, "Impressions per surface and variant"),
        barChart(totals.map((r) => ({ label: r.label, value: r.impressions })), { title: "impressions" })),
      h("figure", {}, h("figcaption", {}, "CTR per surface and variant"),
        barChart(totals.map((r) => ({ label: r.label, value: r.ctr })), { title: "CTR", format: pct })));
    $("an-table").replaceChildren(table([
      { label: "surface", cell: (r) => r.surface },
      { label: "source", cell: (r) => (r.source === "*" ? "* (all)" : r.source) },
      { label: "variant", cell: (r) => r.variant },
      { label: "impressions", class: "num", cell: (r) => r.impressions },
      { label: "clicks", class: "num", cell: (r) => r.clicks },
      { label: "CTR", class: "num", cell: (r) => pct(r.ctr) },
    ], rows, { id: "an-rows", empty: "nothing served and counted yet" }));
  } catch (e) {
    showError($("an-error"), e);
  }
}

async function init(section) {
  const { surfaces } = await serviceInfo();
  section.replaceChildren(
    h("h2", {}, "Analytics"),
    h("form", { class: "form-row", onsubmit: (ev) => { ev.preventDefault(); load(); } },
      field("surface", h("select", { id: "an-surface" }, h("option", { value: "" }, "all"), surfaces.map((s) => h("option", { value: s }, s)))),
      field("variant", h("input", { id: "an-variant", placeholder: "all" })),
      h("button", { id: "an-load", type: "submit" }, "Show")),
    needsApi("impressions and clicks over time (hourly buckets); these figures are totals since counting began"),
    h("div", { id: "an-error" }),
    h("div", { id: "an-charts", class: "columns" }),
    h("div", { id: "an-table" }));
  load();
}

export default { id: "analytics", title: "Analytics", scope: "admin", init, shown: load };
