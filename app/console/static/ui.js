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

// An <svg> of `width` x `height` and `add(tag, attrs, text?, parent?)`, which appends an SVG
// element to it (or to `parent`) with its text as text.
function svgCanvas(width, height, title) {
  const svg = document.createElementNS(SVG, "svg");
  const set = (el, attrs) => { for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v); return el; };
  set(svg, { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart" });
  const add = (tag, attrs, text, parent = svg) => {
    const el = set(document.createElementNS(SVG, tag), attrs);
    if (text !== undefined) el.textContent = text;
    parent.append(el);
    return el;
  };
  if (title) add("title", {}, title);
  return { svg, add };
}

// A horizontal bar chart in inline SVG: rows [{label, value, class?, attrs?}], bars scaled to
// the largest. Each bar is a <g class="bar"> carrying the row's `attrs`; `class` is added to
// its rect; `format(value, row)` writes the value beside it.
export function barChart(rows, { title, format = (v) => String(v), width = 560, valueW = 80 } = {}) {
  const bar = 18, gap = 6, labelW = 190;
  const height = rows.length * (bar + gap) + gap;
  const max = Math.max(...rows.map((r) => r.value), 0) || 1;
  const { svg, add } = svgCanvas(width, height, title);
  rows.forEach((r, i) => {
    const y = gap + i * (bar + gap);
    const w = Math.max(1, ((width - labelW - valueW) * r.value) / max);
    const g = add("g", { class: "bar", ...(r.attrs ?? {}) });
    add("text", { x: labelW - 8, y: y + bar - 5, "text-anchor": "end", class: "chart-label" }, r.label, g);
    add("rect", { x: labelW, y, width: w, height: bar, rx: 3, class: r.class ? `chart-bar ${r.class}` : "chart-bar" }, undefined, g);
    add("text", { x: labelW + w + 6, y: y + bar - 5, class: "chart-value" }, format(r.value, r), g);
  });
  return svg;
}

// An estimate with its interval on a horizontal axis centred on 0 (marked): the interval as a
// bar, the estimate as a dot, the axis running to the widest of them either way (and beyond
// `span` if given). `format` writes the axis' end labels; `marks` [{value, cls?}] adds a dashed
// reference line each (a margin, say: the caption beside the plot says what it is).
export function intervalPlot({ estimate, low, high }, { title, format = (v) => String(v), width = 300, span = 0, cls = "", marks = [] } = {}) {
  const height = 46, pad = 34, mid = 17;
  const reach = Math.max(Math.abs(low), Math.abs(high), Math.abs(estimate), span) * 1.1 || 1;
  const x = (v) => pad + ((v + reach) / (2 * reach)) * (width - 2 * pad);
  const { svg, add } = svgCanvas(width, height, title);
  svg.classList.add("interval");
  if (cls) svg.classList.add(cls);
  add("line", { x1: pad, x2: width - pad, y1: mid, y2: mid, class: "chart-axis" });
  add("line", { x1: x(0), x2: x(0), y1: mid - 12, y2: mid + 12, class: "interval-zero" });
  for (const m of marks) {
    add("line", { x1: x(m.value), x2: x(m.value), y1: mid - 12, y2: mid + 12, class: `interval-mark ${m.cls ?? ""}`.trim() });
  }
  add("rect", { x: x(low), y: mid - 5, width: Math.max(1, x(high) - x(low)), height: 10, rx: 3, class: "interval-bar" });
  add("circle", { cx: x(estimate), cy: mid, r: 4.5, class: "interval-dot" });
  const tick = (v, anchor) => add("text", { x: x(v), y: mid + 25, "text-anchor": anchor, class: "chart-tick" }, v ? format(v) : "0");
  tick(-reach, "start");
  tick(0, "middle");
  tick(reach, "end");
  return svg;
}

// Hourly columns in inline SVG: one strip per series (each scaled to its own largest value,
// which its label states) over a shared time axis. points: [{hour (unix s), [key]: number}],
// oldest first, one per hour; series: [{key, label, format?}]. Each hour is a <g class="hour">
// carrying data-hour and data-<key> (raw values), with a tooltip of every series.
export function hourlyChart(points, series, { title, width = 1100, strip = 64 } = {}) {
  const labelW = 120, right = 8, gap = 14, axis = 22;
  const height = series.length * (strip + gap) + axis;
  const { svg, add } = svgCanvas(width, height, title);
  svg.classList.add("hourly");
  const plotW = width - labelW - right;
  const step = plotW / Math.max(points.length, 1);
  const colW = Math.max(1, step * 0.72);
  const fmt = (s, v) => (s.format ?? String)(v);
  const max = series.map((s) => Math.max(...points.map((p) => p[s.key] ?? 0), 0));
  series.forEach((s, i) => {
    const top = i * (strip + gap) + 4;
    add("line", { x1: labelW, x2: width - right, y1: top + strip, y2: top + strip, class: "chart-axis" });
    add("text", { x: labelW - 8, y: top + 12, "text-anchor": "end", class: "chart-label" }, s.label);
    add("text", { x: labelW - 8, y: top + 28, "text-anchor": "end", class: "chart-tick" }, `max ${fmt(s, max[i])}`);
  });
  // Ticks: about a dozen along the axis, on round hours (midnight for a week).
  const every = points.length > 72 ? 24 : points.length > 24 ? 6 : 3;
  const lastTop = (series.length - 1) * (strip + gap) + 4 + strip;
  points.forEach((p, n) => {
    const x = labelW + n * step + (step - colW) / 2;
    const when = new Date(p.hour * 1000);
    const data = Object.fromEntries(series.map((s) => [`data-${s.key}`, p[s.key] ?? 0]));
    const g = add("g", { class: "hour", "data-hour": p.hour, ...data });
    const clock = fmtTime(p.hour).slice(11, 16); // local time
    add("title", {}, `${fmtTime(p.hour).slice(0, 16)}: ${series.map((s) => `${s.label} ${fmt(s, p[s.key] ?? 0)}`).join(", ")}`, g);
    series.forEach((s, i) => {
      const v = p[s.key] ?? 0;
      const top = i * (strip + gap) + 4;
      const colH = v > 0 ? Math.max(1, (strip * v) / max[i]) : 0;
      add("rect", { x, y: top + strip - colH, width: colW, height: colH, class: `chart-col chart-${s.key}` }, undefined, g);
    });
    if (when.getHours() % every === 0) {
      const label = every === 24 ? `${when.toLocaleDateString([], { weekday: "short" })} ${when.getDate()}` : clock;
      add("text", { x: x + colW / 2, y: lastTop + 16, "text-anchor": "middle", class: "chart-tick" }, label);
    }
  });
  return svg;
}
