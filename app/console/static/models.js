// Models: per kind (interaction model `cf`, re-ranker `ranker`), the current version and the
// newest versions with their training metrics, withdrawn ones marked (GET /v1/admin/models).

import { api } from "./api.js";
import { h, needsApi, showError, table } from "./ui.js";

const KINDS = { cf: "Interaction model (cf)", ranker: "Re-ranker (ranker)" };

// The figures worth a glance: numbers at the top level and in `metrics`, rounded.
function figures(info) {
  const flat = { ...info, ...(typeof info.metrics === "object" ? info.metrics : {}) };
  return Object.entries(flat)
    .filter(([k, v]) => typeof v === "number" && k !== "version")
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`);
}

function status(v, current) {
  if (v.version === current) return h("span", { class: "badge ok" }, "current");
  if (v.withdrawn) return h("span", { class: "badge warn", title: v.withdrawn }, `withdrawn (${v.withdrawn})`);
  if (v.published === false) return h("span", { class: "badge" }, "not published");
  return h("span", { class: "badge" }, "older");
}

function kindSection(kind, data) {
  const rows = data.versions ?? [];
  return h("div", { class: "kind", id: `models-${kind}` },
    h("h3", {}, KINDS[kind] ?? kind),
    h("p", { class: "meta" }, `current: ${data.current ?? "none"} · ${data.total} version(s)`),
    table([
      { label: "version", cell: (v) => h("code", {}, v.version) },
      { label: "status", cell: (v) => status(v, data.current) },
      { label: "training figures", cell: (v) => h("span", { class: "small" }, figures(v).join(" · ")) },
      { label: "", cell: (v) => v.version === data.current ? "" : h("button", { type: "button", disabled: true, title: "needs API: make a version current" }, "Make current") },
    ], rows, { id: `models-${kind}-table`, rowAttrs: (v) => ({ "data-version": v.version }), empty: "no version trained yet" }));
}

async function load(section) {
  const box = section.querySelector("#models-list");
  try {
    const data = await api("GET", "/v1/admin/models", { query: { limit: 20 } });
    box.replaceChildren(...Object.entries(data).map(([kind, d]) => kindSection(kind, d)));
  } catch (e) {
    showError(box, e);
  }
}

let root = null;

function init(section) {
  root = section;
  section.replaceChildren(
    h("h2", {}, "Models"),
    needsApi("making an older version current (a rollback: POST /v1/admin/models/{kind}/current with the version); the buttons are disabled until it exists"),
    h("div", { id: "models-list" }));
  load(section);
}

export default { id: "models", title: "Models", scope: "admin", init, shown: () => load(root) };
