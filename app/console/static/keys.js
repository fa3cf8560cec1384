// Keys: every key, revoked ones too (GET /v1/admin/keys?revoked=true); a new one, its secret
// shown once (POST /v1/admin/keys); revoking one (POST /v1/admin/keys/{key_id}/revoke).
// Secrets are kept hashed: the answer that creates a key is the only place it ever appears.

import { api } from "./api.js";
import { field, fmtTime, h, list, showError, table } from "./ui.js";

const $ = (id) => document.getElementById(id);
const SCOPES = {
  recommend: "recommendations",
  events: "interactions, profiles",
  catalog: "items, search",
  admin: "everything",
};
let mine = null; // the id of the key this console signed in with

const say = (text) => { $("keys-message").textContent = text; };

function secretBox(created) {
  const copy = async (ev) => {
    try {
      await navigator.clipboard.writeText(created.key);
      ev.target.textContent = "Copied";
    } catch {
      ev.target.textContent = "Select it and copy by hand";
    }
  };
  return h("div", { id: "keys-secret-box", class: "secret", role: "status", "data-key-id": created.key_id },
    h("p", {}, h("strong", {}, `New key “${created.name}” (${created.key_id}), scopes ${list(created.scopes)}`)),
    h("p", {}, "Copy it now and keep it safe: ", h("strong", {}, "it will not be shown again"),
      " (only its hash is kept; a lost key is revoked and replaced)."),
    h("div", { class: "form-row" },
      h("code", { id: "keys-secret", class: "secret-value" }, created.key),
      h("button", { type: "button", class: "small-btn", onclick: copy }, "Copy"),
      h("button", { type: "button", class: "small-btn", onclick: () => $("keys-new").replaceChildren() }, "Done")));
}

async function create(ev) {
  ev.preventDefault();
  showError($("keys-error"), null);
  say("");
  const scopes = Object.keys(SCOPES).filter((s) => $(`keys-scope-${s}`).checked);
  if (!scopes.length) return showError($("keys-error"), new Error("pick at least one scope"));
  const body = { name: $("keys-name").value.trim(), scopes };
  const rate = $("keys-rate").value.trim(), burst = $("keys-burst").value.trim();
  if (rate) body.rate_per_s = Number(rate);
  if (burst) body.burst = Number(burst);
  try {
    const created = await api("POST", "/v1/admin/keys", { body });
    $("keys-new").replaceChildren(secretBox(created));
    $("keys-form").reset();
    load();
  } catch (e) {
    showError($("keys-error"), e);
  }
}

async function revoke(key) {
  const ask = `Revoke key “${key.name}” (${key.key_id})? Requests with it are refused at once here, `
    + "by the other API processes within 5 seconds. This cannot be undone.";
  if (!confirm(ask)) return;
  showError($("keys-error"), null);
  say("");
  try {
    const done = await api("POST", `/v1/admin/keys/${encodeURIComponent(key.key_id)}/revoke`);
    say(`revoked ${done.name} (${done.key_id}) at ${fmtTime(done.revoked_at)}`);
    load();
  } catch (e) {
    showError($("keys-error"), e);
  }
}

const COLUMNS = [
  { label: "id", cell: (k) => h("code", {}, k.key_id) },
  { label: "name", cell: (k) => [k.name, k.key_id === mine ? [" ", h("span", { class: "badge ok", title: "the key this console signed in with" }, "this console")] : ""] },
  { label: "scopes", cell: (k) => list(k.scopes) },
  { label: "rate / burst", class: "num", cell: (k) => `${k.rate_per_s}/s · ${k.burst}` },
  { label: "created", cell: (k) => fmtTime(k.created_at) },
  { label: "revoked", cell: (k) => (k.revoked_at ? h("span", { class: "warn" }, fmtTime(k.revoked_at)) : "") },
  { label: "", cell: (k) => (k.revoked_at ? "" : h("button", { type: "button", class: "small-btn danger", "data-revoke": k.key_id, onclick: () => revoke(k) }, "Revoke")) },
];

async function load() {
  if (!$("keys-list")) return; // still starting
  try {
    const { items } = await api("GET", "/v1/admin/keys", { query: { revoked: "true" } });
    // Live keys first, newest first; then the revoked ones, most recently revoked first.
    items.sort((a, b) => Boolean(a.revoked_at) - Boolean(b.revoked_at)
      || (b.revoked_at ?? 0) - (a.revoked_at ?? 0) || b.created_at - a.created_at);
    const live = items.filter((k) => !k.revoked_at).length;
    $("keys-list").replaceChildren(
      h("p", { class: "meta" }, `${live} live key(s), ${items.length - live} revoked`),
      table(COLUMNS, items, {
        id: "keys-table", empty: "no keys",
        rowAttrs: (k) => ({ "data-key-id": k.key_id, "data-revoked": k.revoked_at ? "true" : "false" }),
      }));
  } catch (e) {
    showError($("keys-error"), e);
  }
}

function form() {
  return h("form", { id: "keys-form", onsubmit: create },
    h("h3", {}, "New key"),
    h("div", { class: "form-row" },
      field("name", h("input", { id: "keys-name", required: true, maxlength: 100, placeholder: "web app" })),
      field("requests per second (empty = default)", h("input", { id: "keys-rate", type: "number", min: 0.001, step: "any" })),
      field("burst (empty = default)", h("input", { id: "keys-burst", type: "number", min: 1, step: 1 })),
      h("button", { id: "keys-create", type: "submit" }, "Create key")),
    h("fieldset", { class: "form-row" }, h("legend", {}, "scopes"),
      Object.entries(SCOPES).map(([s, what]) =>
        h("label", { class: "check", title: what }, h("input", { id: `keys-scope-${s}`, type: "checkbox", value: s }), `${s} (${what})`))));
}

function init(section, ctx) {
  mine = ctx.me.key?.key_id ?? null;
  section.replaceChildren(
    h("h2", {}, "API keys"),
    form(),
    h("div", { id: "keys-new" }),
    h("p", { id: "keys-message", class: "ok" }),
    h("div", { id: "keys-error" }),
    h("div", { id: "keys-list" }));
  load();
}

export default { id: "keys", title: "Keys", scope: "admin", init, shown: load };
