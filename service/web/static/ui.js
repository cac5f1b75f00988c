// Small DOM helpers: elements are built with h(), never from HTML strings, so text from the
// API (documents, model answers) is always text.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG = "http://www.w3.org/2000/svg";

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  append(el, children);
  return el;
}

/** Replace an element's children, leaving out the null/false of conditional parts. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Replace the main area with a page: its title (focused, for screen readers) and content. */
export function page(title, ...content) {
  const main = document.getElementById("main");
  document.title = `${title} · docadapt`;
  const parts = content.filter((x) => x !== null && x !== undefined && x !== false);
  main.replaceChildren(h("h1", { id: "page-title", tabindex: "-1" }, title), ...parts);
  return main;
}

let flashTimer;
/** A message in the live region: kind "ok" or "error". */
export function flash(message, kind = "ok") {
  const box = document.getElementById("flash");
  box.className = kind;
  box.textContent = message;
  clearTimeout(flashTimer);
  if (kind === "ok") flashTimer = setTimeout(() => (box.textContent = ""), 6000);
}

/** An inline error next to a form, as the API gave it. */
export function errorBox(err) {
  const code = err.code ? ` (${err.status} ${err.code})` : "";
  return h("p", { class: "error", role: "alert" }, `${err.message}${code}`);
}

/** Clear `out`, run `action`, and show its error in `out` if it fails: a refusal stays next to
 * the form or buttons that asked. */
export async function withErrorBox(out, action) {
  out.replaceChildren();
  try {
    return await action();
  } catch (err) {
    out.replaceChildren(errorBox(err));
  }
}

/** A form whose submit stays on the page and runs `submit(event)` through withErrorBox(out). */
export function submitForm(attrs, out, submit, ...children) {
  const onsubmit = (e) => {
    e.preventDefault();
    return withErrorBox(out, () => submit(e));
  };
  return h("form", { ...attrs, onsubmit }, ...children);
}

/** The values of the checked inputs named `name` inside `root` (a group of checkboxes). */
export function checkedValues(root, name) {
  return [...root.querySelectorAll(`input[name=${name}]:checked`)].map((x) => x.value);
}

export function field(label, control, help) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const helpEl = help ? h("small", { id: `${id}-help`, class: "help" }, help) : null;
  if (helpEl) control.setAttribute("aria-describedby", helpEl.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, helpEl);
}

export function checkbox(label, attrs = {}, help) {
  const input = h("input", { type: "checkbox", ...attrs });
  const id = input.id || `c-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const helpEl = help ? h("small", { id: `${id}-help`, class: "help" }, help) : null;
  if (helpEl) input.setAttribute("aria-describedby", helpEl.id);
  return h("div", { class: "check" }, input, h("label", { for: id }, label), helpEl);
}

export function table(caption, headers, rows, attrs = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      attrs,
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows),
    ),
  );
}

/** A table of `items`, one row of `row(item)`'s cells each, or the `empty` line when there are
 * none (`empty` null: nothing at all). */
export function listTable(items, empty, caption, headers, row, attrs) {
  if (!items.length) return empty === null ? null : h("p", { class: "empty" }, empty);
  return table(caption, headers, items.map((item) => h("tr", {}, row(item))), attrs);
}

/** A row's heading cell: the item's name, linked to its own page. */
export function linkHead(href, text) {
  return h("th", { scope: "row" }, h("a", { href }, text));
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, status);
}

/** "1 sentence", "3 sentences". */
export function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export function fmtSeconds(s) {
  if (s === null || s === undefined) return "—";
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export function fmtPct(x, digits = 0) {
  return x === null || x === undefined ? "—" : `${(x * 100).toFixed(digits)}%`;
}

export function fmtNum(x, digits = 3) {
  if (x === null || x === undefined) return "—";
  if (typeof x !== "number") return String(x);
  return Number.isInteger(x) ? String(x) : x.toPrecision(digits);
}

export function fmtDate(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

export function fmtUsd(x) {
  if (x === null || x === undefined) return "—";
  return x === 0 ? "$0" : x < 0.01 ? `$${x.toExponential(2)}` : `$${x.toFixed(4)}`;
}

/** A button that asks the job to stop (POST /v1/jobs/{id}/cancel); jobProgress hides it once
 * the job has ended. */
export function cancelButton(jobId, api) {
  return h(
    "button",
    {
      type: "button",
      class: "small cancel-job",
      onclick: async () => {
        try {
          await api(`/v1/jobs/${jobId}/cancel`, { method: "POST" });
          flash("Cancel requested: the job stops at its next step.");
        } catch (err) {
          flash(`${err.message} (${err.status} ${err.code})`, "error");
        }
      },
    },
    "Cancel job",
  );
}

/** A job's progress: a <progress> bar, done/total, ETA and its message, updated in place. */
export function jobProgress() {
  const bar = h("progress", { max: 1, value: 0, "aria-label": "Job progress" });
  const text = h("span", { class: "progress-text" });
  const box = h("div", { class: "job-progress", role: "status", "aria-live": "polite" }, bar, text);
  box.update = (job) => {
    const { done, total, fraction } = job.progress || {};
    if (fraction !== null && fraction !== undefined) bar.value = fraction;
    else bar.removeAttribute("value");
    if (job.status === "succeeded") bar.value = 1;
    const parts = [job.status];
    if (total) parts.push(`${done} of ${total}`);
    if (job.status === "running" && job.eta_seconds !== null && job.eta_seconds !== undefined) {
      const rough = job.metrics && job.metrics.eta_note ? "~" : "";
      parts.push(`ETA ${rough}${fmtSeconds(job.eta_seconds)}`);
    }
    if (job.message) parts.push(job.message);
    if (job.error) parts.push(`error: ${job.error}`);
    text.textContent = parts.join(" · ");
    box.dataset.status = job.status;
    const ended = ["succeeded", "failed", "cancelled"].includes(job.status);
    if (ended) box.querySelector(".cancel-job")?.remove();
    else if (box.cancel && !box.querySelector(".cancel-job")) box.append(box.cancel(job.id));
  };
  return box;
}

/**
 * A line chart as SVG: series of [x, y] points, each {name, points, cls}. Axes with min/max
 * labels; redraw with chart.draw(series).
 */
export function lineChart(title, xLabel, yLabel) {
  const W = 640;
  const H = 260;
  const pad = { l: 56, r: 12, t: 12, b: 40 };
  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": title,
    class: "chart",
  });
  const legend = h("ul", { class: "legend" });
  const box = h("figure", { class: "chart-box" }, svg, h("figcaption", {}, title, legend));
  box.draw = (series) => {
    svg.replaceChildren();
    legend.replaceChildren();
    const all = series.flatMap((x) => x.points);
    if (!all.length) {
      svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no points yet"));
      return;
    }
    const xs = all.map((p) => p[0]);
    const ys = all.map((p) => p[1]);
    let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    let [y0, y1] = [Math.min(0, ...ys), Math.max(...ys)];
    if (x0 === x1) x1 = x0 + 1;
    if (y0 === y1) y1 = y0 + 1;
    const X = (x) => pad.l + ((x - x0) / (x1 - x0)) * (W - pad.l - pad.r);
    const Y = (y) => H - pad.b - ((y - y0) / (y1 - y0)) * (H - pad.t - pad.b);
    svg.append(
      s("line", { x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b, class: "axis" }),
      s("line", { x1: pad.l, y1: pad.t, x2: pad.l, y2: H - pad.b, class: "axis" }),
      s("text", { x: pad.l - 6, y: Y(y1) + 4, "text-anchor": "end" }, fmtNum(y1)),
      s("text", { x: pad.l - 6, y: Y(y0) + 4, "text-anchor": "end" }, fmtNum(y0)),
      s("text", { x: pad.l, y: H - pad.b + 16, "text-anchor": "middle" }, fmtNum(x0)),
      s("text", { x: W - pad.r, y: H - pad.b + 16, "text-anchor": "end" }, fmtNum(x1)),
      s("text", { x: (W + pad.l) / 2, y: H - 6, "text-anchor": "middle" }, xLabel),
      s(
        "text",
        { x: 14, y: (H - pad.b) / 2, "text-anchor": "middle", transform: `rotate(-90 14 ${(H - pad.b) / 2})` },
        yLabel,
      ),
    );
    for (const line of series) {
      if (!line.points.length) continue;
      const d = line.points.map((p, i) => `${i ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`);
      svg.append(s("path", { d: d.join(" "), class: `series ${line.cls}` }));
      for (const p of line.points.length < 40 ? line.points : []) {
        svg.append(s("circle", { cx: X(p[0]), cy: Y(p[1]), r: 2.5, class: `series ${line.cls}` }));
      }
      const lastPoint = line.points[line.points.length - 1];
      legend.append(
        h("li", { class: line.cls }, `${line.name}: ${line.points.length} points, last ${fmtNum(lastPoint[1])}`),
      );
    }
  };
  return box;
}

/** Download a Blob under a file name. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// Work a page started (event streams, timers) stops when the user leaves it.
let leaving = new AbortController();

export function pageSignal() {
  return leaving.signal;
}

export function leavePage() {
  leaving.abort();
  leaving = new AbortController();
}
