// Catalogue: an item by id (GET), edited (PUT), hidden or shown (PUT status), deleted
// (DELETE), and its related list (GET /v1/recommendations?surface=related). Writes are applied
// by a worker, usually within a second.

import { api, serviceInfo } from "./api.js";
import { field, fmtNum, fmtTime, h, list, needsApi, showError, table } from "./ui.js";

const $ = (id) => document.getElementById(id);
const csv = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);
const FIELDS = [
  ["title", "title", "text"], ["description", "description", "textarea"],
  ["categories", "categories (comma; first = primary)", "csv"], ["tags", "tags (comma)", "csv"],
  ["language", "language", "text"], ["regions", "regions (comma; empty = everywhere)", "csv"],
  ["maturity", "maturity (0-18)", "int"], ["published_at", "published at (unix s)", "int"],
  ["status", "status", "status"], ["creator_id", "creator", "text"],
];

function input([name, , kind]) {
  const id = `cat-f-${name}`;
  if (kind === "textarea") return h("textarea", { id, rows: 3 });
  if (kind === "status") return h("select", { id }, h("option", { value: "active" }, "active"), h("option", { value: "hidden" }, "hidden"));
  return h("input", { id, type: kind === "int" ? "number" : "text" });
}

function fill(item) {
  for (const [name, , kind] of FIELDS) {
    const v = item?.[name];
    $(`cat-f-${name}`).value = kind === "csv" ? list(v) : v ?? (name === "status" ? "active" : "");
  }
}

function body() {
  const out = {};
  for (const [name, , kind] of FIELDS) {
    const v = $(`cat-f-${name}`).value.trim();
    if (kind === "csv") out[name] = csv(v);
    else if (kind === "int") out[name] = v === "" ? 0 : Number(v);
    else if (v !== "" || name === "description") out[name] = v;
  }
  return out;
}

const say = (text) => { $("cat-message").textContent = text; };

async function open(id) {
  showError($("cat-error"), null);
  say("");
  $("cat-id").value = id;
  try {
    const item = await api("GET", `/v1/items/${encodeURIComponent(id)}`);
    fill(item);
    $("cat-status").textContent = `${item.status}${item.updated_at ? ` · updated ${fmtTime(item.updated_at)}` : ""}`;
    $("cat-hide").textContent = item.status === "hidden" ? "Show" : "Hide";
  } catch (e) {
    if (e.status !== 404) return showError($("cat-error"), e);
    fill(null);
    $("cat-status").textContent = "not found: fill in the form and save to create it";
  }
  $("cat-details").hidden = false;
  related(id);
}

async function write(method, extra = {}) {
  const id = $("cat-id").value.trim();
  showError($("cat-error"), null);
  try {
    const path = `/v1/items/${encodeURIComponent(id)}`;
    await api(method, path, method === "PUT" ? { body: { ...body(), ...extra } } : {});
    say(`${method === "PUT" ? "saved" : "deleted"}: queued for the worker (applied within about a second)`);
    if (extra.status) {
      $("cat-f-status").value = extra.status;
      $("cat-hide").textContent = extra.status === "hidden" ? "Show" : "Hide";
    }
  } catch (e) {
    showError($("cat-error"), e);
  }
}

async function related(id) {
  const box = $("cat-related");
  const info = await serviceInfo();
  if (!info.surfaces.includes("related")) return box.replaceChildren(needsApi("a related surface (none is configured)"));
  try {
    const rec = await api("GET", "/v1/recommendations", {
      query: { user_id: $("cat-as-user").value.trim() || "console", surface: "related", item_id: id, limit: 10, debug: "true" },
    });
    const items = await Promise.all(rec.items.map((r) => api("GET", `/v1/items/${encodeURIComponent(r.item_id)}`).catch(() => null)));
    const rows = rec.items.map((r, i) => ({ ...r, title: items[i]?.title ?? "" }));
    box.replaceChildren(table([
      { label: "#", class: "num", cell: (r) => r.position },
      { label: "item", cell: (r) => h("a", { href: "#catalogue", onclick: (ev) => { ev.preventDefault(); open(r.item_id); } }, r.item_id) },
      { label: "title", cell: (r) => r.title },
      { label: "score", class: "num", cell: (r) => fmtNum(r.score) },
      { label: "reasons", cell: (r) => list(r.reasons) },
    ], rows, { id: "cat-related-table", empty: "no related items" }));
  } catch (e) {
    box.replaceChildren(h("p", { class: "error" }, e.message));
  }
}

function init(section) {
  const details = h("div", { id: "cat-details", hidden: true },
    h("p", { id: "cat-status", class: "meta" }),
    h("div", { class: "grid" }, FIELDS.map((f) => field(f[1], input(f)))),
    h("div", { class: "form-row" },
      h("button", { id: "cat-save", type: "button", onclick: () => write("PUT") }, "Save"),
      h("button", { id: "cat-hide", type: "button", onclick: () => write("PUT", { status: $("cat-f-status").value === "hidden" ? "active" : "hidden" }) }, "Hide"),
      h("button", { id: "cat-delete", type: "button", class: "danger", onclick: () => confirm(`Delete ${$("cat-id").value}?`) && write("DELETE") }, "Delete")),
    h("p", { id: "cat-message", class: "ok" }),
    h("h3", {}, "Related"),
    h("div", { id: "cat-related" }));
  section.replaceChildren(
    h("h2", {}, "Catalogue"),
    h("form", { class: "form-row", onsubmit: (ev) => { ev.preventDefault(); open($("cat-id").value.trim()); } },
      field("item id", h("input", { id: "cat-id", required: true, placeholder: "demo-0001" })),
      field("related as user", h("input", { id: "cat-as-user", value: "console" })),
      h("button", { id: "cat-open", type: "submit" }, "Open"),
      field("by meaning", h("input", { id: "cat-search", disabled: true, placeholder: "e.g. bread baking at home" }))),
    needsApi("finding items by meaning (a text search over the catalogue) and listing or browsing the catalogue; only an id can be opened today"),
    h("div", { id: "cat-error" }),
    details);
}

export default { id: "catalogue", title: "Catalogue", scope: "catalog", init };
