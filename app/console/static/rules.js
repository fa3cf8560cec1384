// Rules: pins, boosts and buries with their surfaces and expiry; list (every page of
// GET /v1/admin/rules), create and edit (PUT /v1/admin/rules/{id}), delete (DELETE).

import { api, serviceInfo } from "./api.js";
import { field, fmtTime, h, list, showError, table } from "./ui.js";

const $ = (id) => document.getElementById(id);
const MAX_PAGES = 50;
let surfaces = [];

async function allRules() {
  const rules = [];
  let after;
  for (let page = 0; page < MAX_PAGES; page++) {
    const res = await api("GET", "/v1/admin/rules", { query: { limit: 100, after } });
    rules.push(...res.items);
    if (!res.next_after) break;
    after = res.next_after;
  }
  return rules;
}

function syncForm() {
  const pin = $("rule-action").value === "pin";
  $("rule-target").disabled = pin;
  if (pin) $("rule-target").value = "item";
  const onItem = $("rule-target").value === "item";
  $("rule-item").closest("label").hidden = !onItem;
  $("rule-category").closest("label").hidden = onItem;
  $("rule-position").closest("label").hidden = !pin;
  $("rule-weight").closest("label").hidden = pin;
}

// The form's value for <input type="datetime-local"> from unix seconds (local time), and back.
const toLocal = (s) => (s ? new Date(s * 1000 - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16) : "");
const fromLocal = (v) => (v ? new Date(v).getTime() / 1000 : undefined);

function edit(rule) {
  $("rule-id").value = rule?.rule_id ?? "";
  $("rule-id").readOnly = Boolean(rule);
  $("rule-action").value = rule?.action ?? "pin";
  $("rule-target").value = rule?.category ? "category" : "item";
  $("rule-item").value = rule?.item_id ?? "";
  $("rule-category").value = rule?.category ?? "";
  $("rule-position").value = rule?.position ?? 1;
  $("rule-weight").value = rule?.weight ?? 0.5;
  for (const s of surfaces) $(`rule-surface-${s}`).checked = rule?.surfaces?.includes(s) ?? false;
  $("rule-expires").value = toLocal(rule?.expires_at);
  $("rule-note").value = rule?.note ?? "";
  $("rule-form-title").textContent = rule ? `Edit ${rule.rule_id}` : "New rule";
  syncForm();
}

function body() {
  const action = $("rule-action").value;
  const onItem = $("rule-target").value === "item";
  const out = {
    action,
    ...(onItem ? { item_id: $("rule-item").value.trim() } : { category: $("rule-category").value.trim() }),
    ...(action === "pin" ? { position: Number($("rule-position").value) } : { weight: Number($("rule-weight").value) }),
    surfaces: surfaces.filter((s) => $(`rule-surface-${s}`).checked),
  };
  const expires = fromLocal($("rule-expires").value);
  if (expires) out.expires_at = expires;
  if ($("rule-note").value.trim()) out.note = $("rule-note").value.trim();
  return out;
}

async function save(ev) {
  ev.preventDefault();
  showError($("rule-error"), null);
  const id = $("rule-id").value.trim();
  try {
    await api("PUT", `/v1/admin/rules/${encodeURIComponent(id)}`, { body: body() });
    $("rule-message").textContent = `saved ${id}: serving applies it within about a second`;
    edit(null);
    load();
  } catch (e) {
    showError($("rule-error"), e);
  }
}

async function remove(rule) {
  if (!confirm(`Delete rule ${rule.rule_id}?`)) return;
  try {
    await api("DELETE", `/v1/admin/rules/${encodeURIComponent(rule.rule_id)}`);
    $("rule-message").textContent = `deleted ${rule.rule_id}`;
    load();
  } catch (e) {
    showError($("rule-error"), e);
  }
}

const COLUMNS = [
  { label: "rule", cell: (r) => h("code", {}, r.rule_id) },
  { label: "action", cell: (r) => r.action },
  { label: "target", cell: (r) => (r.item_id ? `item ${r.item_id}` : `category ${r.category}`) },
  { label: "position / weight", class: "num", cell: (r) => (r.action === "pin" ? `#${r.position}` : r.weight) },
  { label: "surfaces", cell: (r) => list(r.surfaces) || "all" },
  { label: "expires", cell: (r) => (r.expired ? h("span", { class: "warn" }, `expired ${fmtTime(r.expires_at)}`) : fmtTime(r.expires_at) || "never") },
  { label: "note", cell: (r) => r.note ?? "" },
  { label: "", cell: (r) => [
    h("button", { type: "button", class: "small-btn", "data-edit": r.rule_id, onclick: () => edit(r) }, "Edit"),
    h("button", { type: "button", class: "small-btn danger", "data-delete": r.rule_id, onclick: () => remove(r) }, "Delete")] },
];

async function load() {
  if (!$("rule-list")) return; // still starting
  try {
    const rules = await allRules();
    $("rule-list").replaceChildren(table(COLUMNS, rules, { id: "rules-table", rowAttrs: (r) => ({ "data-rule-id": r.rule_id }), empty: "no rules" }));
  } catch (e) {
    showError($("rule-error"), e);
  }
}

function form() {
  const select = (id, options) => h("select", { id, onchange: syncForm }, options.map((o) => h("option", { value: o }, o)));
  return h("form", { id: "rule-form", onsubmit: save },
    h("h3", { id: "rule-form-title" }, "New rule"),
    h("div", { class: "form-row" },
      field("rule id", h("input", { id: "rule-id", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9._:\\-]{0,63}", placeholder: "spring-campaign" })),
      field("action", select("rule-action", ["pin", "boost", "bury"])),
      field("target", select("rule-target", ["item", "category"])),
      field("item id", h("input", { id: "rule-item" })),
      field("category", h("input", { id: "rule-category" })),
      field("position", h("input", { id: "rule-position", type: "number", min: 1, max: 100, value: 1 })),
      field("weight", h("input", { id: "rule-weight", type: "number", min: 0.01, max: 10, step: 0.01, value: 0.5 })),
      field("expires (empty = never)", h("input", { id: "rule-expires", type: "datetime-local" }))),
    h("fieldset", { class: "form-row" }, h("legend", {}, "surfaces (none checked = all)"),
      surfaces.map((s) => h("label", { class: "check" }, h("input", { id: `rule-surface-${s}`, type: "checkbox" }), s))),
    h("div", { class: "form-row" },
      field("note", h("input", { id: "rule-note", size: 60, maxlength: 500 })),
      h("button", { id: "rule-save", type: "submit" }, "Save rule"),
      h("button", { id: "rule-new", type: "button", onclick: () => edit(null) }, "Clear")));
}

async function init(section) {
  surfaces = (await serviceInfo()).surfaces;
  section.replaceChildren(h("h2", {}, "Rules"), form(), h("p", { id: "rule-message", class: "ok" }),
    h("div", { id: "rule-error" }), h("div", { id: "rule-list" }));
  edit(null);
  load();
}

export default { id: "rules", title: "Rules", scope: "admin", init, shown: load };
