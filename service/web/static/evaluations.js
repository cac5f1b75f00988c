// Evaluations: eval sets (generated from the documents, or uploaded JSONL), start one (modes,
// adapters), its progress, and the report: recommendation, accuracy, cost curve, per-item
// results, and the service's own HTML report embedded whole.

import { api, schemaProperties, watchJob } from "./api.js";
import {
  cancelButton,
  checkbox,
  checkedValues,
  errorBox,
  field,
  flash,
  fmtDate,
  fmtPct,
  fmtUsd,
  fill,
  h,
  jobProgress,
  linkHead,
  listTable,
  page,
  pageSignal,
  saveBlob,
  statusBadge,
  submitForm,
  table,
} from "./ui.js";

const MODES = ["base", "icl", "rag", "adapter", "adapter+rag"];
const CATEGORIES = ["forward", "reversed", "cross-document"];
// The report's own words for a mode's verdict against the most accurate mode.
const VERDICTS = {
  better: "significantly more accurate",
  within_margin: "at least as accurate, within the margin",
  not_shown_within_margin: "not significantly less accurate; not shown within the margin",
  worse: "significantly less accurate",
  unknown: "not compared",
};

export async function evaluationSection(section, col) {
  const [sets, evals, adapters, props] = await Promise.all([
    api(`/v1/collections/${col.id}/evalsets`),
    api(`/v1/evaluations?collection_id=${encodeURIComponent(col.id)}`),
    api("/v1/adapters"),
    schemaProperties("EvaluationCreate"),
  ]);
  const refresh = () => evaluationSection(section, col);
  fill(section, 
    h("h2", { id: "ev-h" }, "Evaluations"),
    listTable(
      sets.data,
      "No eval sets yet.",
      "Eval sets",
      ["Eval set", "Source", "Status", "Items", "Categories"],
      (s) => [
        h("th", { scope: "row" }, s.name, h("br"), h("small", { class: "mono" }, s.id)),
        h("td", {}, s.source),
        h("td", {}, statusBadge(s.status || "ready")),
        h("td", { class: "num" }, s.item_count),
        h("td", {}, (s.categories || []).join(", ")),
      ],
      { id: "evalsets-table" },
    ),
    listTable(
      evals.data,
      null,
      "Evaluations of this collection",
      ["Evaluation", "Status", "Modes", "Created"],
      (e) => [
        linkHead(`#/evaluations/${e.id}`, e.id),
        h("td", {}, statusBadge(e.status)),
        h("td", {}, modeNames(e).join(", ")),
        h("td", {}, fmtDate(e.created_at)),
      ],
      { id: "evaluations-table" },
    ),
    h(
      "div",
      { class: "grid2" },
      generateForm(col, refresh),
      uploadForm(col, refresh),
    ),
    startForm(col, sets.data, adapters.data.filter((a) => a.status === "ready"), props),
  );
}

function modeNames(e) {
  return (e.modes || []).map((m) => (typeof m === "string" ? m : m.name || m.mode || JSON.stringify(m)));
}

function generateForm(col, refresh) {
  const cats = CATEGORIES.map((c) => checkbox(c, { name: "category", value: c, checked: true }));
  const maxItems = h("input", { type: "number", min: 1, max: 1000, value: 50, name: "max_items" });
  const holdOut = h("input", { type: "number", min: 0, max: 0.9, step: 0.05, value: 0, name: "hold_out" });
  const progress = jobProgress();
  progress.hidden = true;
  const out = h("div");
  const form = submitForm(
    { class: "card", id: "generate-evalset-form" },
    out,
    async () => {
      const categories = checkedValues(form, "category");
      const set = await api(`/v1/collections/${col.id}/evalsets`, {
        method: "POST",
        body: { generate: { categories, max_items: Number(maxItems.value), hold_out: Number(holdOut.value) } },
      });
      progress.hidden = false;
      const job = await watchJob(set.job.id, (j) => progress.update(j), pageSignal());
      if (job?.status === "succeeded") flash(`Eval set ${set.name} generated.`);
      else out.replaceChildren(errorBox({ message: `Generation ${job?.status}: ${job?.error ?? ""}` }));
      await refresh();
    },
    h("h3", {}, "Generate an eval set from the documents"),
    h("fieldset", {}, h("legend", {}, "Categories"), h("div", { class: "checks" }, cats)),
    field("At most this many items", maxItems),
    field("Hold out (share of sentences)", holdOut, "Sentences an adapter naming this set as its hold-out never sees in training."),
    h("button", { type: "submit" }, "Generate"),
    progress,
    out,
  );
  return form;
}

function uploadForm(col, refresh) {
  const file = h("input", { type: "file", accept: ".jsonl,.ndjson,.txt", required: true, name: "evalset_file" });
  const out = h("div");
  return submitForm(
    { class: "card", id: "upload-evalset-form" },
    out,
    async () => {
      const f = file.files[0];
      const set = await api(`/v1/collections/${col.id}/evalsets?name=${encodeURIComponent(f.name)}`, {
        method: "POST",
        body: await f.text(),
        headers: { "Content-Type": "application/x-ndjson" },
      });
      flash(`Eval set ${set.name} stored: ${set.item_count} items.`);
      await refresh();
    },
    h("h3", {}, "Upload an eval set (JSONL)"),
    field("File", file, 'One item a line: {"question", "answer", "choices"?, "category"?}.'),
    h("button", { type: "submit" }, "Upload"),
    out,
  );
}

function startForm(col, sets, adapters, props) {
  const ready = sets.filter((s) => !s.status || s.status === "ready");
  const evalset = h(
    "select",
    { name: "evalset_id" },
    ready.length ? ready.map((s) => h("option", { value: s.id }, `${s.name} (${s.item_count} items)`)) : h("option", { value: "" }, "no eval set yet"),
  );
  const modes = MODES.map((m) => checkbox(m, { name: "mode", value: m, checked: ["base", "icl"].includes(m) || (adapters.length > 0 && m === "adapter") }));
  const adapterBoxes = adapters.map((a) => checkbox(a.name, { name: "adapter", value: a.id, checked: a.collection_id === col.id }));
  const topK = h("input", { type: "number", min: 1, max: 50, value: 3, name: "rag_top_k" });
  const latency = checkbox("Measure latency (cold and warm)", { name: "measure_latency", checked: true }, props.measure_latency?.description);
  const out = h("div");
  const form = submitForm(
    { class: "card", id: "evaluation-form" },
    out,
    async () => {
      const body = {
        collection_id: col.id,
        evalset_id: evalset.value,
        modes: checkedValues(form, "mode"),
        adapter_ids: checkedValues(form, "adapter"),
        rag_top_k: Number(topK.value),
        measure_latency: latency.querySelector("input").checked,
      };
      const ev = await api("/v1/evaluations", { method: "POST", body });
      flash("Evaluation started.");
      location.hash = `#/evaluations/${ev.id}`;
    },
    h("h3", {}, "Start an evaluation"),
    field("Eval set", evalset),
    h("fieldset", {}, h("legend", {}, "Modes"), h("div", { class: "checks" }, modes), h("small", { class: "help" }, props.modes?.description)),
    h(
      "fieldset",
      {},
      h("legend", {}, "Adapters"),
      adapterBoxes.length ? h("div", { class: "checks" }, adapterBoxes) : h("p", { class: "empty" }, "No ready adapter."),
    ),
    field("Passages for rag (top k)", topK, props.rag_top_k?.description),
    latency,
    h("button", { type: "submit" }, "Start evaluation"),
    out,
  );
  return form;
}

export async function evaluationsPage() {
  const { data } = await api("/v1/evaluations");
  page(
    "Evaluations",
    h("p", { class: "muted" }, "Start an evaluation from a collection's page."),
    listTable(
      data,
      "No evaluations yet.",
      "Evaluations in this workspace",
      ["Evaluation", "Status", "Collection", "Modes", "Created"],
      (e) => [
        linkHead(`#/evaluations/${e.id}`, e.id),
        h("td", {}, statusBadge(e.status)),
        h("td", {}, h("a", { href: `#/collections/${e.collection_id}` }, e.collection_id)),
        h("td", {}, modeNames(e).join(", ")),
        h("td", {}, fmtDate(e.created_at)),
      ],
      { id: "evaluations-table" },
    ),
  );
}

export async function evaluationPage(id) {
  let ev = await api(`/v1/evaluations/${id}`);
  const progress = jobProgress();
  progress.cancel = (jobId) => cancelButton(jobId, api);
  const report = h("div", { id: "report" });
  const head = h("p", { id: "evaluation-head" });
  const showHead = () =>
    head.replaceChildren(statusBadge(ev.status), ` modes ${modeNames(ev).join(", ")} · eval set ${ev.evalset_id} · started ${fmtDate(ev.created_at)}`);
  page(
    `Evaluation ${ev.id}`,
    h("p", {}, h("a", { href: `#/collections/${ev.collection_id}` }, "← Back to the collection")),
    head,
    progress,
    report,
  );
  showHead();
  if (ev.job) progress.update(ev.job);
  if (ev.job && !["succeeded", "failed", "cancelled"].includes(ev.job.status)) {
    await watchJob(ev.job.id, (j) => progress.update(j), pageSignal());
    ev = await api(`/v1/evaluations/${id}`);
    showHead();
  }
  if (ev.status === "succeeded" && ev.report_ready) await renderReport(report, ev);
  else report.replaceChildren(h("p", { class: "empty" }, `No report: the evaluation is ${ev.status}.`));
}

async function renderReport(box, ev) {
  const [rep, html, png] = await Promise.all([
    api(`/v1/evaluations/${ev.id}/report?format=json`),
    api(`/v1/evaluations/${ev.id}/report?format=html`, { as: "text" }),
    api(`/v1/evaluations/${ev.id}/cost-curve.png`, { as: "blob" }).catch(() => null),
  ]);
  const set = await api(`/v1/evalsets/${ev.evalset_id}`).catch(() => ({ items: [] }));
  const questions = new Map((set.items || []).map((it, i) => [String(it.id ?? i), it.question]));
  const rec = rep.recommendation || {};
  const recRows = Object.entries(rec.modes || {}).map(([m, e]) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, m),
      h("td", {}, e.kind),
      h("td", { class: "num" }, `${fmtPct(e.accuracy, 1)} (${e.correct}/${e.n})`),
      h("td", {}, m === rec.best ? "most accurate" : VERDICTS[e.verdict] ?? e.verdict),
      h("td", { class: "num" }, fmtUsd(e.per_query_usd?.uncached)),
      h("td", { class: "num" }, fmtUsd(e.per_correct_usd?.uncached)),
      h("td", { class: "num" }, fmtUsd(e.one_time_usd)),
    ),
  );
  const iframe = h("iframe", { title: "The evaluation's HTML report", class: "report-frame", sandbox: "", id: "report-frame" });
  iframe.srcdoc = html;
  const open = () => {
    const url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
    window.open(url, "_blank", "noopener");
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  };
  fill(box, 
    h("h2", {}, "Which mode to use"),
    h("ul", { id: "recommendation" }, (rec.lines || []).map((l) => h("li", {}, l))),
    table("Accuracy first, then cost", ["Mode", "Kind", "Accuracy", "Against the best", "Per query", "Per correct answer", "One-time"], recRows, { id: "recommendation-table" }),
    png ? h("figure", {}, h("img", { src: URL.createObjectURL(png), alt: "Cumulative cost of each mode against the number of queries", class: "cost-curve", id: "cost-curve" }), h("figcaption", {}, "Cost curve: cumulative cost against queries")) : null,
    h("h2", {}, "Per-item results"),
    await resultsSection(ev.id, Object.keys(rec.modes || {}), questions),
    h("h2", {}, "The full report"),
    h(
      "div",
      { class: "row" },
      h("button", { type: "button", onclick: open }, "Open the HTML report"),
      h("button", { type: "button", onclick: async () => saveBlob(new Blob([await api(`/v1/evaluations/${ev.id}/report?format=md`, { as: "text" })], { type: "text/markdown" }), `${ev.id}.md`) }, "Download Markdown"),
    ),
    iframe,
  );
}

const RESULTS_PAGE = 200;

/** Per-item results, a page at a time (GET .../results with offset and limit), filtered by mode. */
async function resultsSection(evaluationId, modes, questions) {
  const box = h("div", { id: "results" });
  const mode = h("select", { name: "results_mode" }, [h("option", { value: "" }, "all modes"), ...modes.map((m) => h("option", { value: m }, m))]);
  const count = h("span");
  const headers = ["Mode", "Question", "Category", "Answer", "Chosen", "Scored", "Prompt tokens", "Latency"];
  const results = table(count, headers, [], { id: "results-table" });
  const body = results.querySelector("tbody");
  const more = h("button", { type: "button", id: "more-results" }, `Show ${RESULTS_PAGE} more`);
  let shown = 0;
  const load = async (reset) => {
    if (reset) {
      shown = 0;
      body.replaceChildren();
    }
    const filter = mode.value ? `&mode=${encodeURIComponent(mode.value)}` : "";
    const batch = await api(`/v1/evaluations/${evaluationId}/results?offset=${shown}&limit=${RESULTS_PAGE}${filter}`);
    body.append(...batch.data.map((r) => resultRow(r, questions)));
    shown += batch.data.length;
    count.textContent = `${shown} of ${batch.total} results`;
    more.hidden = shown >= batch.total;
  };
  mode.addEventListener("change", () => load(true).catch((err) => flash(err.message, "error")));
  more.addEventListener("click", () => load(false).catch((err) => flash(err.message, "error")));
  await load(true);
  return fill(box, field("Show the results of", mode), results, more);
}

function resultRow(r, questions) {
  return h(
    "tr",
    { class: r.correct ? "right" : "wrong" },
    h("td", {}, r.mode),
    h("td", {}, questions.get(r.item_id) ?? r.item_id),
    h("td", {}, r.category ?? "—"),
    h("td", {}, r.answer),
    h("td", {}, r.prediction ?? "—"),
    h("td", {}, r.correct ? "right" : "wrong"),
    h("td", { class: "num" }, r.prompt_tokens),
    h("td", { class: "num" }, `${(r.latency_s ?? 0).toFixed(2)} s`),
  );
}
