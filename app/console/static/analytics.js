// Analytics: impressions, attributed clicks and CTR per surface, source and variant, hour by
// hour over the last day or week (GET /v1/admin/metrics/surfaces/hourly, kept 8 days) and in
// total since counting began (GET /v1/admin/metrics/surfaces), as charts and a table.

import { api, serviceInfo } from "./api.js";
import { barChart, field, h, hourlyChart, showError, table } from "./ui.js";

const $ = (id) => document.getElementById(id);
const pct = (x) => `${(100 * x).toFixed(2)}%`;
const HOUR = 3600;
const HOURS = { 24: "last 24 hours", 48: "last 48 hours", 168: "last 7 days" };

// One point per hour of the span, oldest first: the `*` rows (each served item once) summed
// over the surfaces and variants shown, hours with nothing at zero. The span ends with the
// current hour (or the newest the server reported, should its clock be ahead of this one).
function perHour(rows, hours) {
  const now = Math.floor(Date.now() / 1000 / HOUR) * HOUR;
  const end = Math.max(now, ...rows.map((r) => r.hour));
  const points = Array.from({ length: hours }, (_, i) => ({ hour: end - (hours - 1 - i) * HOUR, impressions: 0, clicks: 0 }));
  const at = new Map(points.map((p) => [p.hour, p]));
  for (const r of rows) {
    const p = at.get(r.hour);
    if (p) { p.impressions += r.impressions; p.clicks += r.clicks; }
  }
  for (const p of points) p.ctr = p.impressions ? p.clicks / p.impressions : 0;
  return points;
}

async function loadHourly(filters) {
  const hours = Number($("an-hours").value);
  const { rows } = await api("GET", "/v1/admin/metrics/surfaces/hourly", { query: { ...filters, hours, source: "*" } });
  const points = perHour(rows, hours);
  const sum = (k) => points.reduce((n, p) => n + p[k], 0);
  const what = [filters.surface || "every surface", filters.variant ? `variant ${filters.variant}` : "every variant"].join(", ");
  const totals = `${sum("impressions")} impressions, ${sum("clicks")} clicks`;
  $("an-hourly").replaceChildren(
    h("figure", {}, h("figcaption", {}, `Per hour, ${HOURS[hours]} (${what}; local time): ${totals}`),
      hourlyChart(points, [
        { key: "impressions", label: "impressions" },
        { key: "clicks", label: "clicks" },
        { key: "ctr", label: "CTR", format: pct },
      ], { title: `impressions, clicks and CTR per hour, ${HOURS[hours]}` })));
}

async function loadTotals(filters) {
  const { rows } = await api("GET", "/v1/admin/metrics/surfaces", { query: filters });
  rows.sort((a, b) => a.surface.localeCompare(b.surface) || a.variant.localeCompare(b.variant) || b.impressions - a.impressions);
  // `*` rows count every served item once: the per-surface totals.
  const totals = rows.filter((r) => r.source === "*").map((r) => ({ ...r, label: `${r.surface} / ${r.variant}` }));
  $("an-charts").replaceChildren(
    h("figure", {}, h("figcaption", {}, "Impressions per surface and variant (since counting began)"),
      barChart(totals.map((r) => ({ label: r.label, value: r.impressions })), { title: "impressions" })),
    h("figure", {}, h("figcaption", {}, "CTR per surface and variant (since counting began)"),
      barChart(totals.map((r) => ({ label: r.label, value: r.ctr })), { title: "CTR", format: pct })));
  $("an-table").replaceChildren(table([
    { label: "surface", cell: (r) => r.surface },
    { label: "source", cell: (r) => (r.source === "*" ? "* (all)" : r.source) },
    { label: "variant", cell: (r) => r.variant },
    { label: "impressions", class: "num", cell: (r) => r.impressions },
    { label: "clicks", class: "num", cell: (r) => r.clicks },
    { label: "CTR", class: "num", cell: (r) => pct(r.ctr) },
  ], rows, { id: "an-rows", empty: "nothing served and counted yet" }));
}

async function load() {
  if (!$("an-table")) return; // still starting
  showError($("an-error"), null);
  const filters = { surface: $("an-surface").value, variant: $("an-variant").value.trim() };
  const done = await Promise.allSettled([loadHourly(filters), loadTotals(filters)]);
  const failed = done.find((d) => d.status === "rejected");
  if (failed) showError($("an-error"), failed.reason);
}

async function init(section) {
  const { surfaces } = await serviceInfo();
  section.replaceChildren(
    h("h2", {}, "Analytics"),
    h("form", { class: "form-row", onsubmit: (ev) => { ev.preventDefault(); load(); } },
      field("surface", h("select", { id: "an-surface" }, h("option", { value: "" }, "all"), surfaces.map((s) => h("option", { value: s }, s)))),
      field("variant", h("input", { id: "an-variant", placeholder: "all" })),
      field("hours", h("select", { id: "an-hours", onchange: load },
        Object.entries(HOURS).map(([n, label]) => h("option", { value: n }, label)))),
      h("button", { id: "an-load", type: "submit" }, "Show")),
    h("div", { id: "an-error" }),
    h("div", { id: "an-hourly" }),
    h("div", { id: "an-charts", class: "columns" }),
    h("div", { id: "an-table" }));
  load();
}

export default { id: "analytics", title: "Analytics", scope: "admin", init, shown: load };
