// Off-policy evaluation, on the Experiments screen: the registered candidates, whose lists
// serving computes beside a share of a surface's lists (GET, PUT, DELETE
// /v1/admin/ope/candidates/{name}), and the CTR a candidate would have had on the surface's
// logged lists, with the logging policy's own (POST /v1/admin/ope).

import { api, serviceInfo } from "./api.js";
import { field, fmtTime, h, intervalPlot, showError, table } from "./ui.js";

const $ = (id) => document.getElementById(id);
const pct = (x, digits = 2) => `${(100 * x).toFixed(digits)}%`;
const span = (i) => `[${pct(i.low)}, ${pct(i.high)}]`;
const OVERRIDES = ""; // the candidate select's value for "the overrides below"
const METHOD = {
  shadow: "shadow: the candidate's lists computed beside the logged ones (exact)",
  replay: "replay: logged requests replayed now (drifts as users' state changes)",
};
const NOTE = "A registered candidate is a configuration of a surface (a variant's overrides) whose list serving computes "
  + "beside a share of the surface's freshly computed lists, never shown. Estimate re-weights the logged clicks by the "
  + "logged propensities (IPS, SNIPS, DR, each with a 95% bootstrap interval), and refuses when the logs explored too "
  + "little for the candidate. Without a candidate, the overrides are replayed through today's state instead.";

// The registered candidates, as last read.
let candidates = [];

// The overrides a textarea holds: a JSON object, or an Error saying why not.
function parseOverrides(text, what) {
  let got;
  try {
    got = JSON.parse(text.trim() || "{}");
  } catch (e) {
    return new Error(`${what} are not JSON: ${e.message}`);
  }
  const isObject = got !== null && typeof got === "object" && !Array.isArray(got);
  return isObject ? got : new Error(`${what} are a JSON object, such as {"policy": {"mmr_lambda": 0.7}}`);
}

function say(text) {
  $("ope-message").textContent = text;
}

// ---- Candidates ------------------------------------------------------------------------

async function remove(c) {
  if (!confirm(`Stop shadowing ${c.name} on ${c.surface}? Lists it already shadowed keep its lists until they expire.`)) return;
  showError($("ope-cand-error"), null);
  say("");
  try {
    await api("DELETE", `/v1/admin/ope/candidates/${encodeURIComponent(c.name)}`);
    say(`candidate ${c.name} deleted: serving no longer shadows it`);
  } catch (e) {
    showError($("ope-cand-error"), e);
  }
  loadOpe();
}

function candidatesTable() {
  return table([
    { label: "name", cell: (c) => h("code", {}, c.name) },
    { label: "surface", cell: (c) => c.surface },
    { label: "share", class: "num", cell: (c) => pct(c.share, 0) },
    { label: "overrides", cell: (c) => h("code", { class: "overrides" }, JSON.stringify(c.overrides)) },
    { label: "registered", class: "nowrap", cell: (c) => fmtTime(c.created_at) },
    { label: "", cell: (c) => h("button", {
      type: "button", class: "small-btn danger", "data-ope-delete": c.name, onclick: () => remove(c),
    }, "Delete") },
  ], candidates, {
    id: "ope-candidates-table", empty: "no candidate registered",
    rowAttrs: (c) => ({ "data-candidate": c.name, "data-surface": c.surface, "data-share": c.share }),
  });
}

async function register(ev) {
  ev.preventDefault();
  showError($("ope-cand-error"), null);
  say("");
  const name = $("ope-name").value.trim();
  const overrides = parseOverrides($("ope-overrides").value, "overrides");
  if (overrides instanceof Error) {
    showError($("ope-cand-error"), overrides);
    return;
  }
  const body = { surface: $("ope-surface").value, share: Number($("ope-share").value), overrides };
  try {
    const c = await api("PUT", `/v1/admin/ope/candidates/${encodeURIComponent(name)}`, { body });
    say(`candidate ${c.name} registered: it shadows ${pct(c.share, 0)} of ${c.surface}'s freshly computed lists from now on`);
  } catch (e) {
    showError($("ope-cand-error"), e);
  }
  loadOpe();
}

function registerForm() {
  return h("form", { id: "ope-register-form", class: "form-row", onsubmit: register },
    field("name", h("input", { id: "ope-name", required: true, pattern: "[A-Za-z0-9_.\\-]{1,64}", size: 16 })),
    field("surface", h("select", { id: "ope-surface" }, h("option", { value: "homepage" }, "homepage"))),
    field("share of lists", h("input", { id: "ope-share", type: "number", min: 0.01, max: 1, step: 0.01, value: 0.1 })),
    field("overrides (JSON)", h("textarea", { id: "ope-overrides", rows: 2, cols: 44, spellcheck: "false" }, "{}")),
    h("button", { id: "ope-register", type: "submit" }, "Register"));
}

// ---- Estimate --------------------------------------------------------------------------

function syncMode() {
  const name = $("ope-est-candidate").value;
  $("ope-est-overrides").closest("label").hidden = name !== OVERRIDES;
  const c = candidates.find((x) => x.name === name);
  if (c) $("ope-est-surface").value = c.surface; // a candidate is judged on its own surface
}

function candidateOptions() {
  const select = $("ope-est-candidate");
  const was = select.value;
  select.replaceChildren(
    ...candidates.map((c) => h("option", { value: c.name }, `${c.name} (${c.surface})`)),
    h("option", { value: OVERRIDES }, "overrides (JSON), replayed"));
  const keep = was === OVERRIDES || candidates.some((c) => c.name === was);
  select.value = keep && select.dataset.touched ? was : (candidates[0]?.name ?? OVERRIDES);
  syncMode();
}

function query() {
  const name = $("ope-est-candidate").value;
  const out = { surface: $("ope-est-surface").value, hours: Number($("ope-est-hours").value) };
  if (name !== OVERRIDES) return { ...out, candidate: name };
  const overrides = parseOverrides($("ope-est-overrides").value, "overrides");
  return overrides instanceof Error ? overrides : { ...out, overrides };
}

async function estimate(ev) {
  ev.preventDefault();
  showError($("ope-est-error"), null);
  const body = query();
  if (body instanceof Error) {
    showError($("ope-est-error"), body);
    return;
  }
  $("ope-estimate").disabled = true;
  $("ope-est-status").textContent = "estimating…";
  $("ope-result").replaceChildren(); // no earlier answer read as this one
  try {
    $("ope-result").replaceChildren(result(await api("POST", "/v1/admin/ope", { body })));
    $("ope-est-status").textContent = "";
  } catch (e) {
    $("ope-est-status").textContent = "";
    showError($("ope-est-error"), e);
  } finally {
    $("ope-estimate").disabled = false;
  }
}

function estimateForm() {
  const touched = (ev) => { ev.target.dataset.touched = "1"; syncMode(); };
  return h("form", { id: "ope-estimate-form", class: "form-row", onsubmit: estimate },
    field("surface", h("select", { id: "ope-est-surface" }, h("option", { value: "homepage" }, "homepage"))),
    field("candidate", h("select", { id: "ope-est-candidate", onchange: touched })),
    field("overrides (JSON; {} = the surface as configured now)",
      h("textarea", { id: "ope-est-overrides", rows: 2, cols: 44, spellcheck: "false" }, "{}")),
    field("hours (at most 24)", h("input", { id: "ope-est-hours", type: "number", min: 0.1, max: 24, step: "any", value: 24 })),
    h("button", { id: "ope-estimate", type: "submit" }, "Estimate"),
    h("span", { id: "ope-est-status", class: "small" }));
}

// ---- The answer ------------------------------------------------------------------------

function named(r) {
  const c = r.candidate ?? {};
  if (c.candidate) return ["candidate ", h("code", {}, c.candidate)];
  if (c.variant) return ["variant ", h("code", {}, c.variant)];
  return ["overrides ", h("code", {}, JSON.stringify(c.overrides ?? {}))];
}

function skippedText(skipped) {
  const parts = Object.entries(skipped ?? {}).filter(([, n]) => n).map(([why, n]) => `${why.replaceAll("_", " ")} ${n}`);
  return parts.length ? parts.join(", ") : "none";
}

function stats(r) {
  const cells = [
    ["method", r.method],
    ["lists used", r.lists],
    ["support", r.support === null || r.support === undefined ? "–" : pct(r.support, 1)],
    ["ESS", r.ess === null || r.ess === undefined ? "–" : Number(r.ess).toFixed(1)],
    [`CTR of ${r.logged_variant} (logged)`, r.logged ? pct(r.logged.ctr) : "–"],
  ];
  if (r.replay_consistent !== null && r.replay_consistent !== undefined) cells.push(["replay consistent", pct(r.replay_consistent, 1)]);
  return h("dl", { id: "ope-stats", class: "stats" },
    cells.map(([k, v]) => h("div", { "data-stat": k }, h("dt", {}, k), h("dd", {}, v))));
}

function meta(r) {
  const counts = r.positions ? ` · ${r.clicks} click(s) over ${r.positions} positions a list, ${r.matched} item-positions matched` : "";
  return h("p", { class: "meta" },
    `${fmtTime(r.since)} to ${fmtTime(r.until)}`, counts,
    " · skipped: ", h("span", { id: "ope-skipped" }, skippedText(r.skipped)),
    r.logged ? ` · logged CTR interval ${span(r.logged)}` : "",
    ` · ${r.replays ?? 0} replays, ${Math.round(r.elapsed_ms)} ms`);
}

function estimatesTable(r) {
  const reach = Math.max(...r.estimates.map((e) => e.high), r.logged?.high ?? 0);
  const marks = r.logged ? [{ value: r.logged.ctr, cls: "logged" }] : [];
  const plot = (e) => intervalPlot({ estimate: e.ctr, low: e.low, high: e.high }, {
    title: `${e.estimator}: CTR ${pct(e.ctr)}, interval ${span(e)}`, format: (v) => pct(v, 1),
    width: 260, span: reach, marks, cls: e.estimator === r.chosen ? "chosen" : "",
  });
  return table([
    { label: "estimator", cell: (e) => [h("code", {}, e.estimator), e.estimator === r.chosen ? [" ", h("span", { class: "badge ok" }, "read first")] : ""] },
    { label: "CTR", class: "num", cell: (e) => pct(e.ctr) },
    { label: "interval", class: "num nowrap", cell: (e) => span(e) },
    { label: "ESS", class: "num", cell: (e) => Number(e.ess).toFixed(1) },
    { label: "dashed: logged CTR", cell: plot },
  ], r.estimates, {
    id: "ope-estimates",
    rowAttrs: (e) => ({ "data-estimator": e.estimator, "data-chosen": String(e.estimator === r.chosen), "data-ctr": e.ctr }),
  });
}

function result(r) {
  const refused = r.refused !== null && r.refused !== undefined;
  return h("div", {
    id: "ope-answer", class: "panel", "data-method": r.method, "data-refused": String(refused),
    "data-chosen": r.chosen, "data-lists": r.lists,
  },
  h("h4", {}, named(r), ` on ${r.surface} against the logged `, h("code", {}, r.logged_variant), " ",
    h("span", { class: "badge", title: METHOD[r.method] ?? "" }, r.method)),
  stats(r),
  meta(r),
  refused
    ? h("p", { id: "ope-refused", class: "error refusal", role: "alert" }, h("strong", {}, "No estimate: "), r.refused)
    : estimatesTable(r));
}

// ---- The section -----------------------------------------------------------------------

// Both surface selects offer every configured surface (the OpenAPI schema lists them).
async function fillSurfaces() {
  const { surfaces } = await serviceInfo();
  for (const id of ["ope-surface", "ope-est-surface"]) {
    const select = $(id);
    const was = select.value;
    select.replaceChildren(...surfaces.map((s) => h("option", { value: s }, s)));
    select.value = surfaces.includes(was) ? was : surfaces[0];
  }
  syncMode();
}

export async function loadOpe() {
  if (!$("ope-candidates")) return; // still starting
  try {
    ({ candidates } = await api("GET", "/v1/admin/ope/candidates"));
    $("ope-candidates").replaceChildren(candidatesTable());
    candidateOptions();
  } catch (e) {
    showError($("ope-candidates"), e);
  }
}

export function opeSection() {
  const section = h("div", { id: "ope" },
    h("h3", {}, "Off-policy evaluation"),
    h("p", { class: "small", id: "ope-note" }, NOTE),
    h("p", { id: "ope-message", class: "ok" }),
    h("h4", {}, "Candidates"),
    h("div", { id: "ope-candidates" }),
    registerForm(),
    h("div", { id: "ope-cand-error" }),
    h("h4", {}, "Estimate"),
    estimateForm(),
    h("div", { id: "ope-est-error" }),
    h("div", { id: "ope-result" }));
  // Its selects are found by id once it is in the page: after the first await, at the latest.
  fillSurfaces().catch((e) => showError($("ope-est-error"), e));
  return section;
}
