// Models: per kind (interaction model `cf`, re-ranker `ranker`), the current version and the
// newest versions with their training metrics, withdrawn ones marked (GET /v1/admin/models);
// an earlier re-ranker served again (PUT /v1/admin/models/ranker/current); the live ranker's
// feature drift as the answering API process counts it (GET /v1/admin/models/ranker/drift);
// the ranker canary: a saved re-ranker serving a share of users, which the API promotes or
// rolls back by itself (GET, POST /v1/admin/models/ranker/canary and …/canary/stop).

import { api } from "./api.js";
import { barChart, fmtTime, h, intervalPlot, showError, table } from "./ui.js";

const $ = (id) => document.getElementById(id);
const pct = (x, digits = 1) => `${(100 * x).toFixed(digits)}%`;
// A CTR difference in percentage points, signed.
const points = (x) => `${x > 0 ? "+" : x < 0 ? "-" : ""}${Math.abs(100 * x).toFixed(2)}`;
const KINDS = { cf: "Interaction model (cf)", ranker: "Re-ranker (ranker)" };
// Only the re-ranker's artefact is all it needs to serve: the API refuses `cf` (409).
const ROLLBACK = { ranker: true };
const CF_NOTE = "The interaction model cannot be made current again: its vectors live in Milvus and Redis. "
  + "Roll it back by retraining (Jobs → Refresh the models).";

// The figures worth a glance: numbers at the top level and in `metrics`, rounded.
function figures(info) {
  const flat = { ...info, ...(typeof info.metrics === "object" ? info.metrics : {}) };
  return Object.entries(flat)
    .filter(([k, v]) => typeof v === "number" && k !== "version" && k !== "made_current_at")
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`);
}

// The latest canary ({canary, log, now}, GET …/ranker/canary), as last read.
let canaryStatus = null;
const running = () => (canaryStatus?.canary?.state === "running" ? canaryStatus.canary : null);

function status(v, current) {
  if (v.version === current) return h("span", { class: "badge ok" }, "current");
  if (running()?.version === v.version) return h("span", { class: "badge warn" }, `canary (${pct(running().share, 0)} of users)`);
  if (v.withdrawn) return h("span", { class: "badge warn", title: v.withdrawn }, `withdrawn (${v.withdrawn})`);
  if (v.published === false) return h("span", { class: "badge" }, "not published");
  return h("span", { class: "badge" }, "older");
}

async function makeCurrent(kind, v) {
  showError($("models-error"), null);
  $("models-message").textContent = "";
  // A withdrawn version was withdrawn for a reason: serving it again is forced, knowingly.
  const force = Boolean(v.withdrawn);
  if (force && !confirm(`${kind} ${v.version} was withdrawn: ${v.withdrawn}. Serve it again anyway?`)) return;
  try {
    const res = await api("PUT", `/v1/admin/models/${kind}/current`, { body: { version: v.version, force } });
    $("models-message").textContent = res.changed
      ? `${kind} ${res.current} is current (was ${res.previous ?? "none"}): serving switches within a request or two`
      : `${kind} ${res.current} was already current`;
  } catch (e) {
    showError($("models-error"), e);
  }
  load();
}

function action(kind, v, current) {
  if (!ROLLBACK[kind] || v.version === current) return "";
  const makeBtn = h("button", {
    type: "button", class: "small-btn", "data-make-current": v.version,
    title: v.withdrawn ? `withdrawn (${v.withdrawn}): you will be asked to confirm` : "serve this version again",
    onclick: () => makeCurrent(kind, v),
  }, "Make current");
  if (kind !== "ranker") return makeBtn;
  // A canary needs a current ranker to compare with, and runs one at a time.
  const busy = running() ? `a canary (${running().version}) is running: stop it first` : "";
  const blocked = busy || (current ? "" : "no ranker is current: a canary needs one to compare with");
  const share = h("input", {
    type: "number", class: "share", "data-canary-share": v.version, min: 0.01, max: 0.99, step: 0.01,
    value: 0.1, title: "share of users the canary serves", "aria-label": `canary share for ${v.version}`,
  });
  return h("span", { class: "row-actions" }, makeBtn,
    h("span", { class: "canary-start" }, share, h("button", {
      type: "button", class: "small-btn", "data-start-canary": v.version, disabled: Boolean(blocked),
      title: blocked || "serve it to this share of users; the API promotes or rolls it back on their clicks",
      onclick: () => startCanary(v, share.value),
    }, "Start canary")));
}

function kindSection(kind, data) {
  const rows = data.versions ?? [];
  const columns = [
    { label: "version", cell: (v) => h("code", {}, v.version) },
    { label: "status", cell: (v) => status(v, data.current) },
    { label: "training figures", cell: (v) => h("span", { class: "small" }, figures(v).join(" · ")) },
  ];
  if (ROLLBACK[kind]) columns.push({ label: "", cell: (v) => action(kind, v, data.current) });
  return h("div", { class: "kind", id: `models-${kind}` },
    h("h3", {}, KINDS[kind] ?? kind),
    h("p", { class: "meta" }, `current: ${data.current ?? "none"} · ${data.total} version(s)`),
    ROLLBACK[kind] ? "" : h("p", { class: "small" }, kind === "cf" ? CF_NOTE : "Only the re-ranker can be made current again."),
    table(columns, rows, {
      id: `models-${kind}-table`, empty: "no version trained yet",
      rowAttrs: (v) => ({ "data-version": v.version, "data-current": v.version === data.current ? "true" : "false" }),
    }));
}

// ---- The ranker canary ---------------------------------------------------------------

const STATE = { running: "badge warn", promoted: "badge ok", rolled_back: "badge bad" };
const DECISION = { promote: "badge ok", rollback: "badge bad", continue: "badge" };
const EVENT = { started: "badge", promoted: "badge ok", rolled_back: "badge bad" };
const CANARY_NOTE = "A canary serves a saved re-ranker to a share of the users of every surface the current ranker ranks "
  + "(variant canary-<version>). Every minute the API compares their clicks with the other users': it promotes the canary "
  + "(makes it current) once its CTR is shown no worse than the margin below the current ranker's with no guardrail "
  + "broken, and rolls it back when it is shown worse, a guardrail breaks, or it stays undecided too long.";

async function startCanary(v, shareText) {
  showError($("models-error"), null);
  $("models-message").textContent = "";
  const share = Number(shareText);
  if (!(share > 0 && share < 1)) {
    showError($("models-error"), new Error(`the canary's share is a fraction between 0 and 1 (not ${shareText})`));
    return;
  }
  if (v.withdrawn && !confirm(`ranker ${v.version} was withdrawn: ${v.withdrawn}. Serve it to ${pct(share, 0)} of users anyway?`)) return;
  try {
    const c = await api("POST", "/v1/admin/models/ranker/canary", { body: { version: v.version, share } });
    $("models-message").textContent = `canary ${c.version} started: ${pct(c.share, 0)} of users, against ${c.baseline}`;
  } catch (e) {
    showError($("models-error"), e);
  }
  load();
}

async function stopCanary(c) {
  if (!confirm(`Roll the canary ${c.version} back now? Its users get ${c.baseline ?? "the current ranker"} again.`)) return;
  showError($("models-error"), null);
  $("models-message").textContent = "";
  try {
    const got = await api("POST", "/v1/admin/models/ranker/canary/stop", { body: { reason: "stopped from the console" } });
    $("models-message").textContent = `canary ${got.version} rolled back`;
  } catch (e) {
    showError($("models-error"), e);
  }
  load();
}

function armsTable(arms) {
  return table([
    { label: "arm", cell: (a) => [h("code", {}, a.variant), a.variant === "default" ? h("span", { class: "small" }, " (current ranker)") : ""] },
    { label: "impressions", class: "num", cell: (a) => a.impressions },
    { label: "clicks", class: "num", cell: (a) => a.clicks },
    { label: "CTR", class: "num", cell: (a) => pct(a.ctr, 2) },
    { label: "lists", class: "num", cell: (a) => a.lists ?? "" },
    { label: "p95", class: "num", cell: (a) => (a.p95_ms === null || a.p95_ms === undefined ? "–" : `${a.p95_ms} ms`) },
  ], arms, {
    id: "models-canary-arms",
    rowAttrs: (a) => ({ "data-variant": a.variant, "data-impressions": a.impressions, "data-clicks": a.clicks }),
  });
}

function guardText(g) {
  const state = g.breached === null ? "not judged yet" : g.breached ? "broken" : "ok";
  const v = (x) => (x === null || x === undefined ? "–" : typeof x === "number" && !Number.isInteger(x) ? x.toFixed(4) : x);
  return h("li", { "data-guardrail": g.name, "data-breached": String(g.breached) },
    h("span", { class: g.breached ? "bad" : "" }, `${g.name}: ${state}`),
    h("span", { class: "small" }, ` (canary ${v(g.value)}, current ${v(g.default)}, limit ${v(g.limit)})`));
}

function evidence(c, now) {
  const numbers = `CTR difference ${points(now.ctr_diff)} points, interval [${points(now.ctr_diff_low)}, ${points(now.ctr_diff_high)}]`;
  return h("div", { id: "models-canary-now", "data-decision": now.decision },
    h("h4", {}, "The evidence now ", h("span", { class: `decision ${DECISION[now.decision] ?? "badge"}` }, now.decision)),
    h("p", { class: "reason" }, now.reason),
    h("div", { class: "interval-row" },
      intervalPlot({ estimate: now.ctr_diff, low: now.ctr_diff_low, high: now.ctr_diff_high }, {
        title: `canary CTR minus current CTR: ${numbers}`, format: points, span: c.margin,
        cls: `decision-${now.decision}`, marks: [{ value: -c.margin, cls: "margin" }],
      }),
      h("div", {},
        h("div", { class: "ctr-diff" }, numbers),
        h("div", { class: "small" }, `dashed: -margin (${points(-c.margin)} points) · p-value ${Number(now.p_value).toPrecision(3)} (always valid)`))),
    armsTable(now.arms ?? []),
    h("ul", { class: "guardrails small" }, (now.guardrails ?? []).map(guardText)));
}

function canaryCard(c, now) {
  const live = c.state === "running";
  return h("div", { id: "models-canary-current", class: "panel", "data-version": c.version, "data-state": c.state },
    h("p", {},
      "ranker ", h("code", {}, c.version), " against ", h("code", {}, c.baseline ?? "none"), " ",
      h("span", { class: `state ${STATE[c.state] ?? "badge"}` }, c.state.replace("_", " ")), " ",
      live ? h("button", { id: "models-canary-stop", type: "button", class: "small-btn danger",
        title: "roll it back now: its users get the current ranker again", onclick: () => stopCanary(c) }, "Stop") : ""),
    h("p", { class: "meta" },
      `share ${pct(c.share, 0)} of users · margin ${(100 * c.margin).toFixed(2)} points of CTR · started ${fmtTime(c.started_at)}`,
      c.decided_at ? ` · decided ${fmtTime(c.decided_at)}` : ""),
    c.reason ? h("p", { class: "reason", id: "models-canary-reason" }, c.reason) : "",
    live && now ? evidence(c, now) : "");
}

function logTable(log) {
  return table([
    { label: "when", class: "nowrap", cell: (e) => fmtTime(e.at ?? e.started_at) },
    { label: "event", cell: (e) => h("span", { class: EVENT[e.event] ?? "badge" }, e.event.replace("_", " ")) },
    { label: "version", cell: (e) => h("code", {}, e.version) },
    { label: "", class: "small", cell: (e) => (e.event === "started"
      ? `${pct(e.share ?? 0, 0)} of users against ${e.baseline ?? "none"}, margin ${(100 * (e.margin ?? 0)).toFixed(2)} points`
      : e.reason ?? "") },
  ], log, {
    id: "models-canary-log", empty: "no canary yet",
    rowAttrs: (e) => ({ "data-event": e.event, "data-version": e.version }),
  });
}

function canarySection(st) {
  return [
    h("h3", {}, "Ranker canary"),
    h("p", { class: "small" }, CANARY_NOTE),
    st.canary
      ? canaryCard(st.canary, st.now)
      : h("p", { id: "models-canary-none", class: "empty" }, "No canary has run yet: start one from a re-ranker's row above."),
    h("h4", {}, "Decisions"),
    logTable(st.log ?? []),
  ];
}

const LEVEL = { stable: "ok", shift: "warn", drift: "bad" };
const READING = "PSI (population stability index) of each feature: the rows this process scored against the rows "
  + "the ranker was trained on. Under 0.1 stable, 0.1-0.25 a shift worth a look, over 0.25 drift: retrain.";

function driftSection(d) {
  const rows = Math.round(d.rows);
  const features = d.features ?? [];
  const body = features.length
    ? h("figure", {},
      h("figcaption", {}, "PSI per feature, most drifted first"),
      barChart(features.map((f) => ({
        label: f.feature, value: f.psi, class: `level-${f.level}`,
        attrs: { "data-feature": f.feature, "data-level": f.level, "data-psi": f.psi },
      })), { title: "PSI per feature", format: (v, r) => `${v.toFixed(3)} ${r.attrs["data-level"]}`, valueW: 110 }))
    : h("p", { id: "models-drift-empty", class: "empty" }, `not enough scored rows yet (${rows} of ${d.min_rows})`);
  const worst = features[0];
  return [
    h("h3", {}, "Feature drift (this API process)"),
    h("p", { class: "meta" },
      d.version ? `ranker ${d.version} · ${rows} rows counted (recent traffic weighs most)` : "no ranker has scored rows in this process yet",
      worst ? [" · most drifted: ", h("span", { class: `badge ${LEVEL[worst.level] ?? ""}` }, `${worst.feature} ${worst.level}`)] : ""),
    h("p", { class: "small" }, READING, " Each API process counts its own traffic; the alert reads the same figures from /metrics."),
    body,
  ];
}

async function loadDrift() {
  const box = $("models-drift");
  try {
    box.replaceChildren(...driftSection(await api("GET", "/v1/admin/models/ranker/drift")));
  } catch (e) {
    const err = h("div");
    box.replaceChildren(h("h3", {}, "Feature drift (this API process)"), err);
    showError(err, e);
  }
}

async function load() {
  const box = $("models-list");
  if (!box) return; // still starting
  loadDrift();
  // The canary first: the ranker rows show which version it serves and whether one may start.
  const [models, canary] = await Promise.allSettled([
    api("GET", "/v1/admin/models", { query: { limit: 20 } }),
    api("GET", "/v1/admin/models/ranker/canary"),
  ]);
  const canaryBox = $("models-canary");
  if (canary.status === "fulfilled") {
    canaryStatus = canary.value;
    canaryBox.replaceChildren(...canarySection(canaryStatus));
  } else {
    canaryStatus = null;
    const err = h("div");
    canaryBox.replaceChildren(h("h3", {}, "Ranker canary"), err);
    showError(err, canary.reason);
  }
  if (models.status === "fulfilled") {
    box.replaceChildren(...Object.entries(models.value).map(([kind, d]) => kindSection(kind, d)));
  } else {
    showError(box, models.reason);
  }
  $("models-status").textContent = `as of ${fmtTime(Date.now() / 1000).slice(11)}`;
}

function init(section) {
  section.replaceChildren(
    h("h2", {}, "Models"),
    // The API promotes or rolls back a canary by itself (every minute): Refresh shows it.
    h("form", { class: "form-row", onsubmit: (ev) => { ev.preventDefault(); load(); } },
      h("button", { id: "models-refresh", type: "submit" }, "Refresh"),
      h("span", { id: "models-status", class: "small" })),
    h("p", { id: "models-message", class: "ok" }),
    h("div", { id: "models-error" }),
    h("div", { id: "models-list" }),
    h("div", { id: "models-canary" }),
    h("div", { id: "models-drift" }));
  load();
}

export default { id: "models", title: "Models", scope: "admin", init, shown: load };
