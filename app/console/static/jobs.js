// Jobs: start a re-index or a model refresh, follow it (GET /v1/admin/jobs/{id} every 500 ms)
// on a progress bar with rate and ETA, and the history with results and errors.

import { api, getKey } from "./api.js";
import { field, fmtNum, fmtTime, h, showError, table } from "./ui.js";

const $ = (id) => document.getElementById(id);
const ACTIVE = new Set(["queued", "running"]);
const POLL_MS = 500;
let following = null;

const percent = (job) => (job.state === "succeeded" ? 100 : Math.floor((job.progress ?? 0) * 100));

function eta(s) {
  if (s === null || s === undefined) return "";
  return s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${Math.round(s)} s`;
}

function renderCurrent(job) {
  const pct = percent(job);
  const bar = $("job-progress");
  bar.setAttribute("aria-valuenow", pct);
  bar.dataset.state = job.state;
  $("job-progress-fill").style.width = `${pct}%`;
  $("job-progress-label").textContent = `${pct}%`;
  const parts = [
    `${job.kind} ${job.id.slice(0, 8)}`, job.state, job.stage ?? "",
    job.total ? `${job.done} / ${job.total}` : "",
    job.rate ? `${fmtNum(job.rate, 1)}/s` : "",
    ACTIVE.has(job.state) && job.eta_s ? `ETA ${eta(job.eta_s)}` : "",
  ].filter(Boolean);
  $("job-current").textContent = parts.join(" · ");
  $("job-current").dataset.state = job.state;
  showError($("job-error"), job.error ? new Error(job.error) : null);
}

async function follow(id) {
  following = id;
  while (following === id && getKey()) {
    let job;
    try {
      job = await api("GET", `/v1/admin/jobs/${id}`);
    } catch (e) {
      showError($("job-error"), e);
      break;
    }
    renderCurrent(job);
    if (!ACTIVE.has(job.state)) break;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  if (following === id) following = null;
  history();
}

async function start(path, body) {
  showError($("job-error"), null);
  try {
    const job = await api("POST", path, { body });
    renderCurrent(job);
    follow(job.id);
  } catch (e) {
    showError($("job-error"), e);
  }
}

function reindexBody() {
  const model = $("job-model").value.trim();
  const batch = $("job-batch").value.trim();
  const body = { ...(model && { model }), ...(batch && { batch_size: Number(batch) }) };
  return Object.keys(body).length ? body : undefined;
}

// A job's result, one "key value" per field (a collection name, counts, seconds).
const summary = (result) =>
  Object.entries(result ?? {}).map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`).join(" · ");

const duration = (j) => (j.finished_at && j.started_at ? `${fmtNum(j.finished_at - j.started_at, 1)} s` : "");

async function history() {
  try {
    const { items } = await api("GET", "/v1/admin/jobs", { query: { limit: 20 } });
    $("job-history").replaceChildren(table([
      { label: "created", class: "nowrap", cell: (j) => fmtTime(j.created_at) },
      { label: "kind", cell: (j) => j.kind },
      { label: "state", cell: (j) => h("span", { class: `state-${j.state}` }, j.state) },
      { label: "stage", cell: (j) => j.stage ?? "" },
      { label: "progress", class: "num", cell: (j) => `${percent(j)}%` },
      { label: "took", class: "num nowrap", cell: duration },
      { label: "attempts", class: "num", cell: (j) => j.attempts },
      { label: "result or error", class: "small", cell: (j) => (j.error ? h("span", { class: "error" }, j.error) : summary(j.result)) },
    ], items, { id: "job-history-table", rowAttrs: (j) => ({ "data-job-id": j.id, "data-state": j.state }) }));
    const active = items.find((j) => ACTIVE.has(j.state));
    if (active && following === null) follow(active.id);
  } catch (e) {
    showError($("job-error"), e);
  }
}

function init(section) {
  section.replaceChildren(
    h("h2", {}, "Jobs"),
    h("div", { class: "form-row" },
      h("button", { id: "job-reindex", type: "button", onclick: () => start("/v1/admin/reindex", reindexBody()) }, "Re-index the catalogue"),
      field("model (optional)", h("input", { id: "job-model", placeholder: "the live model" })),
      field("batch size", h("input", { id: "job-batch", type: "number", min: 16, max: 4096, placeholder: "default" })),
      h("button", { id: "job-refresh", type: "button", onclick: () => start("/v1/admin/models/refresh") }, "Refresh the models")),
    h("p", { class: "small" }, "A worker with jobs enabled runs them, one at a time; asking again while one is active returns that job."),
    h("div", { id: "job-progress", class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": 0, "aria-label": "job progress" },
      h("div", { id: "job-progress-fill", class: "progress-fill" }),
      h("span", { id: "job-progress-label", class: "progress-label" }, "no job followed")),
    h("p", { id: "job-current", class: "meta" }),
    h("div", { id: "job-error" }),
    h("h3", {}, "History"),
    h("div", { id: "job-history" }));
  history();
}

export default { id: "jobs", title: "Jobs", scope: "admin", init, shown: history };
