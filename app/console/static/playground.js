// Playground: GET /v1/recommendations for a user, surface, context item and filters, with the
// per-stage timings (debug=true, which the recommend scope may ask for); a second column
// compares another surface or user (the user's id picks the experiment variant). An admin key
// also asks, per column, why an item is not in the list (GET /v1/recommendations/why-not).

import { api, serviceInfo } from "./api.js";
import { barChart, field, fmtNum, h, list, needsApi, showError, table } from "./ui.js";

const USERS = "vantage.console.users";
const $ = (id) => document.getElementById(id);

function recentUsers() {
  return JSON.parse(sessionStorage.getItem(USERS) ?? "[]");
}

let known = []; // ids the API knows that start with what was typed (admin keys only)

function fillUsers() {
  const users = [...new Set([...recentUsers(), ...known])];
  $("pg-users").replaceChildren(...users.map((u) => h("option", { value: u })));
}

function remember(user) {
  const users = [user, ...recentUsers().filter((u) => u !== user)].slice(0, 20);
  sessionStorage.setItem(USERS, JSON.stringify(users));
  fillUsers();
}

// Suggest the users the API knows (GET /v1/admin/users?prefix=), as the operator types.
let lookup = null;
function suggestUsers(prefix) {
  clearTimeout(lookup);
  lookup = setTimeout(async () => {
    try {
      const page = await api("GET", "/v1/admin/users", { query: { prefix, limit: 20 } });
      known = page.items.slice(0, 20);
      fillUsers();
    } catch {
      // suggestions only: the field works without them
    }
  }, 250);
}

// "Why not this item?" above a column's list (admin keys only: the API reads any item).
function whyNotForm(side) {
  const id = (name) => `pg-${side}-${name}`;
  return h("form", { id: id("whynot"), class: "form-row whynot",
    onsubmit: (ev) => { ev.preventDefault(); whyNot(side); } },
  field("why not this item?", h("input", { id: id("whynot-item"), "data-whynot": "", placeholder: "item id", size: 14 })),
  h("button", { id: id("whynot-go"), type: "submit", class: "small-btn",
    title: "run this column's request again, traced, and say where the item left the list" }, "Why not?"));
}

function panel(side, info, defaults, ctx) {
  const id = (name) => `pg-${side}-${name}`;
  const surface = h("select", { id: id("surface") },
    info.surfaces.map((s) => h("option", { value: s, selected: s === defaults.surface }, s)));
  return h("div", { class: "panel", id: id("panel"), hidden: side === "b" },
    h("div", { class: "form-row" },
      field("user", h("input", { id: id("user"), list: "pg-users", value: defaults.user, required: true, size: 10 })),
      field("surface", surface),
      field("context item", h("input", { id: id("item"), placeholder: "related, up next…", size: 14 })),
      field("category", h("input", { id: id("category"), size: 9 })),
      field("language", h("input", { id: id("language"), size: 5 })),
      field("limit", h("input", { id: id("limit"), type: "number", min: 1, max: info.maxLimit, value: 10 })),
    ),
    h("div", { id: id("meta"), class: "meta" }),
    ctx.has("admin") ? [whyNotForm(side), h("div", { id: id("whynot-result") })] : "",
    h("div", { id: id("error") }),
    h("div", { id: id("results") }),
    h("div", { id: id("timings"), class: "timings" }),
  );
}

function request(side, debug) {
  const v = (name) => $(`pg-${side}-${name}`).value.trim();
  return {
    user_id: v("user"), surface: v("surface"), item_id: v("item"), category: v("category"),
    language: v("language"), limit: v("limit"), debug: debug ? "true" : undefined,
    details: "true", // each item's current title and primary category, in the same answer
  };
}

// Title, id and primary category in one cell, so two lists fit side by side.
function itemCell(r) {
  return [
    h("span", { class: "title" }, r.title ?? ""),
    h("div", { class: "small" }, h("code", {}, r.item_id), r.category ? ` · ${r.category}` : ""),
  ];
}

const COLUMNS = [
  { label: "#", class: "num", cell: (r) => r.position },
  { label: "item", cell: itemCell },
  { label: "score", class: "num", cell: (r) => fmtNum(r.score) },
  { label: "sources", class: "small", cell: (r) => list(r.sources) },
  { label: "reasons", class: "small", cell: (r) => list(r.reasons) },
  { label: "propensity", class: "num", cell: (r) => fmtNum(r.propensity, 3) + (r.explored ? " explored" : "") },
];

// Each column's last list: the request that asked for it, its id and its items. Why-not
// replays its exploration draws while the column's fields still ask the same.
const last = {};
const asked = {};
const sameRequest = (a, b) => JSON.stringify({ ...a, debug: undefined }) === JSON.stringify({ ...b, debug: undefined });

// Stages a filter decides (nothing in the ranking brings the item back), and the rest.
const STAGE_CLASS = { served: "ok", unknown_item: "bad", hard_filter: "bad", request_filter: "bad" };
const numberText = (v) => (v !== null && typeof v === "object"
  ? Object.entries(v).map(([k, x]) => `${k} ${x}`).join(", ")
  : typeof v === "number" && !Number.isInteger(v) ? fmtNum(v) : String(v));

// The answer's facts on its box (data-item-id, data-stage, …), all gone while none is shown.
function markWhyNot(box, attrs = {}) {
  for (const k of ["item-id", "stage", "served", "position", "recommendation-id"]) {
    const v = attrs[k];
    if (v === undefined || v === null) box.removeAttribute(`data-${k}`);
    else box.setAttribute(`data-${k}`, String(v));
  }
}

function renderWhyNot(side, why, replayed) {
  const box = $(`pg-${side}-whynot-result`);
  const numbers = Object.entries(why.numbers ?? {});
  const shown = last[side]?.items;
  const differs = replayed && shown && JSON.stringify(shown) !== JSON.stringify(why.items);
  markWhyNot(box, {
    "item-id": why.item_id, stage: why.stage, served: why.served,
    position: why.served ? why.numbers.position : undefined, "recommendation-id": replayed ?? "",
  });
  box.replaceChildren(h("div", { class: "whynot-answer panel" },
    h("p", {},
      h("code", {}, why.item_id), " ",
      h("span", { class: `badge stage ${STAGE_CLASS[why.stage] ?? "warn"}` }, why.stage), " ",
      h("strong", { class: "served" }, why.served ? `served at position ${why.numbers.position}` : "not served")),
    why.served ? "" : h("p", { class: "detail" }, why.detail), // served: the line above says where
    numbers.length
      ? table([
        { label: "number", cell: ([k]) => k },
        { label: "value", class: "num", cell: ([, v]) => numberText(v) },
      ], numbers, { id: `pg-${side}-whynot-numbers`, rowAttrs: ([k]) => ({ "data-key": k }) })
      : "",
    h("p", { class: "small" },
      `variant ${why.variant} · `,
      replayed ? `exploration replayed from list ${replayed}` : "a fresh run (exploration drawn anew: run the list first to replay it)",
      ` · this run's list: ${why.items.length} item(s)`,
      differs ? h("span", { class: "warn" }, " (differs from the list shown: the data or the rules moved since, or it came from the cache)") : "")));
}

async function whyNot(side) {
  const box = $(`pg-${side}-whynot-result`);
  const item = $(`pg-${side}-whynot-item`).value.trim();
  if (!item) return $(`pg-${side}-whynot-item`).focus();
  const req = request(side, false);
  const replayed = last[side] && sameRequest(last[side].req, req) ? last[side].id : undefined;
  const n = (asked[side] = (asked[side] ?? 0) + 1); // only the latest question's answer shows
  markWhyNot(box);
  box.replaceChildren(h("p", { class: "small" }, "asking…"));
  try {
    const why = await api("GET", "/v1/recommendations/why-not", {
      query: {
        user_id: req.user_id, item_id: item, surface: req.surface, context_item_id: req.item_id,
        limit: req.limit, category: req.category, language: req.language, recommendation_id: replayed,
      },
    });
    if (asked[side] === n) renderWhyNot(side, why, replayed);
  } catch (e) {
    if (asked[side] === n) showError(box, e);
  }
}

function renderMeta(side, rec) {
  const flags = [
    `variant ${rec.variant}`, `id ${rec.recommendation_id}`, rec.cached ? "cached" : "",
    rec.degraded ? `degraded: ${list(rec.degraded_reasons)}` : "",
  ].filter(Boolean);
  $(`pg-${side}-meta`).replaceChildren(h("span", { class: rec.degraded ? "warn" : "" }, flags.join(" · ")));
}

function renderTimings(side, debug) {
  const box = $(`pg-${side}-timings`);
  if (!debug) return box.replaceChildren();
  const stages = Object.entries(debug.stages ?? {}).map(([label, value]) => ({ label, value }));
  const sources = (debug.sources ?? []).map((s) =>
    `${s.name}: ${s.count} in ${fmtNum(s.ms, 1)} ms (${s.origin})${s.error ? ` error ${s.error}` : ""}`);
  box.replaceChildren(
    h("h4", {}, "Timings (ms)"),
    barChart(stages, { title: "per-stage timings", format: (v) => fmtNum(v, 2), width: 520 }),
    h("p", { class: "small" }, `candidates ${debug.generated}, after hard filters ${debug.after_hard_filters}; ranker ${debug.ranker ?? "none"}`),
    h("ul", { class: "small" }, sources.map((s) => h("li", {}, s))),
  );
}

async function runSide(side, ctx) {
  const req = request(side, $("pg-debug").checked);
  showError($(`pg-${side}-error`), null);
  const why = $(`pg-${side}-whynot-result`); // it answered for the list replaced now
  if (why) {
    markWhyNot(why);
    why.replaceChildren();
  }
  try {
    const rec = await api("GET", "/v1/recommendations", { query: req });
    last[side] = { req, id: rec.recommendation_id, items: rec.items.map((r) => r.item_id) };
    remember(req.user_id);
    renderMeta(side, rec);
    $(`pg-${side}-results`).replaceChildren(table(COLUMNS, rec.items, {
      id: `pg-${side}-table`, empty: "no items",
      rowAttrs: (r) => ({ "data-item-id": r.item_id, "data-position": r.position }),
    }));
    renderTimings(side, rec.debug);
  } catch (e) {
    delete last[side];
    $(`pg-${side}-results`).replaceChildren();
    $(`pg-${side}-timings`).replaceChildren();
    showError($(`pg-${side}-error`), e);
  }
}

async function run(ctx) {
  const sides = $("pg-compare").checked ? ["a", "b"] : ["a"];
  $("pg-status").textContent = "running…";
  await Promise.all(sides.map((s) => runSide(s, ctx)));
  $("pg-status").textContent = `done at ${new Date().toLocaleTimeString()}`;
}

function compare(on) {
  $("pg-b-panel").hidden = !on;
  if (on && !$("pg-b-table")) $("pg-b-user").value = $("pg-a-user").value; // same user to start
}

async function init(section, ctx) {
  const info = await serviceInfo();
  const user = recentUsers()[0] ?? "u-0001";
  const controls = h("form", { id: "pg-form", class: "form-row",
    onsubmit: (ev) => { ev.preventDefault(); run(ctx); } },
  h("label", { class: "check" }, h("input", { id: "pg-debug", type: "checkbox", checked: true }), "per-stage timings (debug: not cached, not an impression)"),
  h("label", { class: "check" }, h("input", { id: "pg-compare", type: "checkbox",
    onchange: (ev) => compare(ev.target.checked) }), "compare side by side"),
  h("button", { id: "pg-run", type: "submit" }, "Run"),
  h("span", { id: "pg-status", class: "small" }));
  section.replaceChildren(
    h("h2", {}, "Playground"),
    h("datalist", { id: "pg-users" }, recentUsers().map((u) => h("option", { value: u }))),
    controls,
    h("div", { class: "columns" },
      panel("a", info, { user, surface: info.surfaces.includes("homepage") ? "homepage" : info.surfaces[0] }, ctx),
      panel("b", info, { user, surface: info.surfaces.includes("trending") ? "trending" : info.surfaces[0] }, ctx)),
    needsApi("choosing the experiment variant (the user id picks it: compare two users to compare variants)"),
  );
  if (ctx.has("admin")) {
    for (const side of ["a", "b"]) {
      const input = $(`pg-${side}-user`);
      input.addEventListener("input", () => suggestUsers(input.value.trim()));
    }
    suggestUsers("");
  }
  // Enter in any field of a panel runs too (but in why-not's: that asks why not).
  section.querySelectorAll(".panel input:not([data-whynot])").forEach((el) =>
    el.addEventListener("keydown", (ev) => { if (ev.key === "Enter") run(ctx); }));
}

export default { id: "playground", title: "Playground", scope: "recommend", init };
