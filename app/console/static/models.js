// Models: per kind (interaction model `cf`, re-ranker `ranker`), the current version and the
// newest versions with their training metrics, withdrawn ones marked (GET /v1/admin/models);
// an earlier re-ranker served again (PUT /v1/admin/models/ranker/current); the live ranker's
// feature drift as the answering API process counts it (GET /v1/admin/models/ranker/drift).

import { api } from "./api.js";
import { barChart, h, showError, table } from "./ui.js";

const $ = (id) => document.getElementById(id);
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

function status(v, current) {
  if (v.version === current) return h("span", { class: "badge ok" }, "current");
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
  return h("button", {
    type: "button", class: "small-btn", "data-make-current": v.version,
    title: v.withdrawn ? `withdrawn (${v.withdrawn}): you will be asked to confirm` : "serve this version again",
    onclick: () => makeCurrent(kind, v),
  }, "Make current");
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
  try {
    const data = await api("GET", "/v1/admin/models", { query: { limit: 20 } });
    box.replaceChildren(...Object.entries(data).map(([kind, d]) => kindSection(kind, d)));
  } catch (e) {
    showError(box, e);
  }
}

function init(section) {
  section.replaceChildren(
    h("h2", {}, "Models"),
    h("p", { id: "models-message", class: "ok" }),
    h("div", { id: "models-error" }),
    h("div", { id: "models-list" }),
    h("div", { id: "models-drift" }));
  load();
}

export default { id: "models", title: "Models", scope: "admin", init, shown: load };
