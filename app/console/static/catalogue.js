// Catalogue: items found by meaning (GET /v1/search/items) or opened by id (GET), edited
// (PUT), hidden or shown (PUT status), deleted (DELETE), and an item's related list
// (GET /v1/recommendations?surface=related). Writes are applied by a worker, usually within a
// second.

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

let searches = 0; // only the newest search's answer is shown

async function search(ev) {
  ev.preventDefault();
  const n = ++searches;
  const q = $("cat-search").value.trim();
  const box = $("cat-search-results");
  $("cat-search-panel").hidden = false;
  $("cat-search-go").disabled = true;
  $("cat-search-status").textContent = "searching… (the service's first search loads its text model: a few seconds)";
  box.replaceChildren();
  try {
    const res = await api("GET", "/v1/search/items", {
      query: { q, limit: 20, category: $("cat-search-category").value.trim() },
    });
    if (n !== searches) return;
    $("cat-search-status").replaceChildren(
      `${res.items.length} item(s) nearest to “${q}” · text model `, h("code", { id: "cat-search-model" }, res.model));
    box.replaceChildren(table([
      { label: "item", cell: (r) => h("a", { href: "#catalogue", onclick: (e) => { e.preventDefault(); open(r.item_id); } }, r.item_id) },
      { label: "title", cell: (r) => h("span", { class: "title" }, r.title) },
      { label: "categories", cell: (r) => list(r.categories) },
      { label: "status", cell: (r) => (r.status === "active" ? r.status : h("span", { class: "badge warn" }, r.status)) },
      { label: "score", class: "num", cell: (r) => fmtNum(r.score, 3) },
    ], res.items, {
      id: "cat-search-table", empty: "nothing found",
      rowAttrs: (r) => ({ "data-item-id": r.item_id, "data-category": r.categories?.[0] ?? "", "data-status": r.status }),
    }));
  } catch (e) {
    if (n !== searches) return;
    $("cat-search-status").textContent = "";
    showError(box, e);
  } finally {
    if (n === searches) $("cat-search-go").disabled = false;
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
  const results = h("div", { id: "cat-search-panel", hidden: true },
    h("h3", {}, "Found by meaning"),
    h("p", { id: "cat-search-status", class: "meta" }),
    h("div", { id: "cat-search-results" }));
  section.replaceChildren(
    h("h2", {}, "Catalogue"),
    h("form", { id: "cat-search-form", class: "form-row", onsubmit: search },
      field("search by meaning", h("input", { id: "cat-search", required: true, size: 40, maxlength: 500, placeholder: "e.g. bread baking at home" })),
      field("primary category (optional)", h("input", { id: "cat-search-category", size: 14, placeholder: "any" })),
      h("button", { id: "cat-search-go", type: "submit" }, "Search")),
    h("form", { class: "form-row", onsubmit: (ev) => { ev.preventDefault(); open($("cat-id").value.trim()); } },
      field("item id", h("input", { id: "cat-id", required: true, placeholder: "demo-0001" })),
      field("related as user", h("input", { id: "cat-as-user", value: "console" })),
      h("button", { id: "cat-open", type: "submit" }, "Open")),
    needsApi("listing or browsing the whole catalogue (a page of items at a time); search by meaning or open an item by id"),
    h("div", { id: "cat-error" }),
    h("div", { class: "columns" }, results, details));
}

export default { id: "catalogue", title: "Catalogue", scope: "catalog", init };
