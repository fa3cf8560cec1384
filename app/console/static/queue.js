// Queue: the event partitions (lag, pending, consumers, workers) from GET /v1/admin/queue, and
// the dead letters (GET /v1/admin/dead-letters) with replay (POST .../replay) and drop (DELETE).

import { api } from "./api.js";
import { fmtTime, h, showError, table } from "./ui.js";

const $ = (id) => document.getElementById(id);
const PAGE = 100;

function summary(q) {
  const cells = [
    ["lag", q.lag], ["pending", q.pending], ["dead letters", q.dead_letters], ["in stream", q.length],
    ["partitions", q.partitions], ["consumer group", q.group], ["live workers", q.workers.length],
  ];
  return h("dl", { id: "queue-summary", class: "stats" },
    cells.map(([k, v]) => h("div", { "data-stat": k }, h("dt", {}, k), h("dd", {}, v))));
}

async function loadQueue() {
  const q = await api("GET", "/v1/admin/queue");
  $("queue-status").replaceChildren(
    summary(q),
    h("h3", {}, "Consumers"),
    table([
      { label: "name", cell: (c) => c.name },
      { label: "pending", class: "num", cell: (c) => c.pending },
      { label: "idle", class: "num", cell: (c) => `${(c.idle_ms / 1000).toFixed(1)} s` },
    ], q.consumers, { id: "queue-consumers", empty: "no consumer" }),
    h("p", { class: "small" }, `live workers: ${q.workers.join(", ") || "none"}`),
    h("h3", {}, "Partitions"),
    table([
      { label: "partition", class: "num", cell: (p) => p.partition },
      { label: "length", class: "num", cell: (p) => p.length },
      { label: "lag", class: "num", cell: (p) => p.lag },
      { label: "pending", class: "num", cell: (p) => p.pending },
      { label: "dead letters", class: "num", cell: (p) => p.dead_letters },
      { label: "worker", cell: (p) => p.worker ?? "free" },
    ], q.by_partition, { id: "queue-partitions" }));
}

async function act(what, ids) {
  showError($("queue-error"), null);
  try {
    if (what === "replay") {
      const res = await api("POST", "/v1/admin/dead-letters/replay", { body: { ids } });
      $("dl-message").textContent = `replayed ${res.replayed.length}` + (res.missing.length ? `; not found: ${res.missing.join(", ")}` : "");
    } else {
      if (!confirm(`Drop dead letter ${ids[0]} for good?`)) return;
      await api("DELETE", `/v1/admin/dead-letters/${encodeURIComponent(ids[0])}`);
      $("dl-message").textContent = `dropped ${ids[0]}`;
    }
  } catch (e) {
    showError($("queue-error"), e);
  }
  refresh();
}

const DEAD_COLUMNS = [
  { label: "", cell: (d) => h("input", { type: "checkbox", class: "dl-pick", value: d.id, "aria-label": `select ${d.id}` }) },
  { label: "id", cell: (d) => h("code", {}, d.id) },
  { label: "type", cell: (d) => d.type ?? "" },
  { label: "error", cell: (d) => h("span", { class: "error" }, d.error) },
  { label: "queued", cell: (d) => fmtTime(d.enqueued_at) },
  { label: "payload", cell: (d) => (d.data ? h("details", {}, h("summary", {}, d.data.slice(0, 40)), h("pre", {}, d.data)) : "") },
  { label: "", cell: (d) => [
    h("button", { type: "button", class: "small-btn", "data-replay": d.id, onclick: () => act("replay", [d.id]) }, "Replay"),
    h("button", { type: "button", class: "small-btn danger", "data-drop": d.id, onclick: () => act("drop", [d.id]) }, "Drop")] },
];

async function loadDead(after) {
  const page = await api("GET", "/v1/admin/dead-letters", { query: { limit: PAGE, after } });
  const more = page.next ? h("button", { id: "dl-more", type: "button", onclick: () => loadDead(page.next).catch((e) => showError($("queue-error"), e)) }, "Next page") : "";
  $("dead-letters").replaceChildren(
    h("p", { class: "meta" }, `${page.total} dead letter(s)${after ? ` · after ${after}` : ""}`),
    table(DEAD_COLUMNS, page.items, { id: "dl-table", rowAttrs: (d) => ({ "data-id": d.id }), empty: "no dead letters" }),
    more);
}

async function refresh() {
  if (!$("queue-status")) return;
  try {
    await Promise.all([loadQueue(), loadDead()]);
  } catch (e) {
    showError($("queue-error"), e);
  }
}

function replaySelected() {
  const ids = [...document.querySelectorAll(".dl-pick:checked")].map((el) => el.value);
  if (ids.length) act("replay", ids);
}

function init(section) {
  section.replaceChildren(
    h("h2", {}, "Queue"),
    h("div", { class: "form-row" }, h("button", { id: "queue-refresh", type: "button", onclick: refresh }, "Refresh")),
    h("div", { id: "queue-error" }),
    h("div", { id: "queue-status" }),
    h("h3", {}, "Dead letters"),
    h("div", { class: "form-row" },
      h("button", { id: "dl-replay-selected", type: "button", onclick: replaySelected }, "Replay selected"),
      h("span", { id: "dl-message", class: "ok" })),
    h("div", { id: "dead-letters" }));
  refresh();
}

export default { id: "queue", title: "Queue", scope: "admin", init, shown: refresh };
