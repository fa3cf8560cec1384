// Small DOM helpers shared by the screens. Text always goes in as text (never as HTML), so
// item titles, rule notes and dead-letter payloads cannot inject markup.

const SVG = "http://www.w3.org/2000/svg";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export const field = (label, input) => h("label", { class: "field" }, h("span", {}, label), input);

export const needsApi = (what) => h("p", { class: "needs-api" }, h("strong", {}, "needs API: "), what);

// A table from column specs {label, cell: row => text | Node, class?}; rowAttrs(row) -> attrs.
export function table(columns, rows, { id, rowAttrs, empty = "nothing yet" } = {}) {
  const head = h("tr", {}, columns.map((c) => h("th", { class: c.class }, c.label)));
  const body = rows.length
    ? rows.map((r) => h("tr", rowAttrs?.(r) ?? {}, columns.map((c) => h("td", { class: c.class }, c.cell(r)))))
    : [h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, empty))];
  return h("table", { id }, h("thead", {}, head), h("tbody", {}, body));
}

export function showError(box, err) {
  box.replaceChildren(err ? h("p", { class: "error", role: "alert" }, err.message ?? String(err)) : "");
}

export function fmtTime(epoch) {
  if (!epoch) return "";
  const d = new Date(epoch * 1000);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export const fmtNum = (x, digits = 4) => (x === null || x === undefined ? "" : Number(x).toFixed(digits));

export const list = (xs) => (xs ?? []).join(", ");

// A horizontal bar chart in inline SVG: rows [{label, value}], bars scaled to the largest.
export function barChart(rows, { title, format = (v) => String(v), width = 560 } = {}) {
  const bar = 18, gap = 6, labelW = 190, valueW = 80;
  const height = rows.length * (bar + gap) + gap;
  const max = Math.max(...rows.map((r) => r.value), 0) || 1;
  const svg = document.createElementNS(SVG, "svg");
  const set = (el, attrs) => { for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v); return el; };
  set(svg, { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart" });
  const add = (tag, attrs, text) => {
    const el = set(document.createElementNS(SVG, tag), attrs);
    if (text !== undefined) el.textContent = text;
    svg.append(el);
  };
  if (title) add("title", {}, title);
  rows.forEach((r, i) => {
    const y = gap + i * (bar + gap);
    const w = Math.max(1, ((width - labelW - valueW) * r.value) / max);
    add("text", { x: labelW - 8, y: y + bar - 5, "text-anchor": "end", class: "chart-label" }, r.label);
    add("rect", { x: labelW, y, width: w, height: bar, rx: 3, class: "chart-bar" });
    add("text", { x: labelW + w + 6, y: y + bar - 5, class: "chart-value" }, format(r.value));
  });
  return svg;
}
