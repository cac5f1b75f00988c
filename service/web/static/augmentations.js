// Augmentations: start one (strategies, teacher, parameters with the API's own help text),
// follow its job over the event stream, its yield per stage, and review its examples.

import { api, schemaProperties, watchJob } from "./api.js";
import {
  cancelButton,
  checkbox,
  checkedValues,
  field,
  flash,
  fmtDate,
  fmtSeconds,
  fill,
  h,
  jobProgress,
  listTable,
  page,
  pageSignal,
  statusBadge,
  submitForm,
  table,
  withErrorBox,
} from "./ui.js";

const STRATEGIES = ["decomposed", "linked", "qa", "local", "global"];
const DEFAULT_STRATEGIES = ["decomposed", "linked", "qa"];

export async function augmentationForm(collectionId) {
  const props = await schemaProperties("AugmentationCreate");
  const teacherProps = await schemaProperties("TeacherOverride");
  const help = (name) => props[name]?.description;
  const boxes = STRATEGIES.map((s) =>
    checkbox(s, { name: "strategy", value: s, checked: DEFAULT_STRATEGIES.includes(s) }),
  );
  const unit = h(
    "select",
    { name: "unit" },
    h("option", { value: "sentence" }, "sentence"),
    h("option", { value: "passage" }, "passage"),
  );
  const num = (name, attrs) => h("input", { type: "number", name, ...attrs });
  const outputs = num("outputs_per_unit", { min: 1, max: 16, value: props.outputs_per_unit?.default ?? 3 });
  const temperature = num("temperature", { min: 0, max: 2, step: 0.1, value: props.temperature?.default ?? 0.7 });
  const maxTokens = num("max_tokens", { min: 1, max: 4096, value: props.max_tokens?.default ?? 128 });
  const gate = checkbox("Gate: drop outputs that contradict their source", { name: "gate", checked: true }, help("gate"));
  const redact = h(
    "select",
    { name: "redact_pii" },
    h("option", { value: "" }, "the operator's policy"),
    h("option", { value: "true" }, "redact"),
    h("option", { value: "false" }, "do not redact"),
  );
  const teacherName = h("input", { type: "text", name: "teacher_name", maxlength: 100 });
  const teacherUrl = h("input", { type: "url", name: "teacher_base_url" });
  const teacherModel = h("input", { type: "text", name: "teacher_model" });
  const teacherKey = h("input", { type: "password", name: "teacher_api_key", autocomplete: "off" });
  const out = h("div");
  const form = submitForm(
    { class: "card", id: "augment-form" },
    out,
    async () => {
      const body = {
        strategies: checkedValues(form, "strategy"),
        unit: unit.value,
        outputs_per_unit: Number(outputs.value),
        temperature: Number(temperature.value),
        max_tokens: Number(maxTokens.value),
        gate: gate.querySelector("input").checked,
      };
      if (redact.value) body.redact_pii = redact.value === "true";
      const teacher = {};
      if (teacherName.value) teacher.name = teacherName.value;
      if (teacherUrl.value) teacher.base_url = teacherUrl.value;
      if (teacherModel.value) teacher.model = teacherModel.value;
      if (teacherKey.value) teacher.api_key = teacherKey.value;
      if (Object.keys(teacher).length) body.teacher = teacher;
      const aug = await api(`/v1/collections/${collectionId}/augmentations`, { method: "POST", body });
      flash("Augmentation started.");
      location.hash = `#/augmentations/${aug.id}`;
    },
    h("h3", {}, "Start an augmentation"),
    h(
      "fieldset",
      {},
      h("legend", {}, "Strategies"),
      h("div", { class: "checks" }, boxes),
      h("small", { class: "help" }, help("strategies")),
    ),
    h(
      "details",
      {},
      h("summary", {}, "Parameters"),
      field("Unit", unit, "What one prompt to the teacher is about: a sentence or a passage."),
      field("Outputs per unit", outputs, help("outputs_per_unit") || "Teacher completions per unit (local, global)."),
      field("Temperature", temperature, help("temperature") || "Sampling temperature of the teacher."),
      field("Max tokens", maxTokens, help("max_tokens")),
      gate,
      field("Personal data", redact, help("redact_pii")),
    ),
    h(
      "details",
      {},
      h("summary", {}, "Teacher (default: the service's own)"),
      h("p", { class: "help" }, teacherProps._description || ""),
      field("Named teacher", teacherName, teacherProps.name?.description),
      field("Endpoint URL", teacherUrl, teacherProps.base_url?.description),
      field("Model", teacherModel),
      field("API key", teacherKey, teacherProps.api_key?.description),
    ),
    h("button", { type: "submit" }, "Start augmentation"),
    out,
  );
  return form;
}

export async function augmentationPage(id) {
  let aug = await api(`/v1/augmentations/${id}`);
  const progress = jobProgress();
  progress.cancel = (jobId) => cancelButton(jobId, api);
  const statsBox = h("div", { id: "augmentation-stats" });
  const head = h("p", { class: "muted", id: "augmentation-head" });
  const examples = h("section", { "aria-labelledby": "ex-h", id: "examples" });
  const showHead = () => {
    head.replaceChildren(
      statusBadge(aug.status),
      ` ${(aug.params.strategies || []).join(", ")} · ${aug.document_count} documents · started ${fmtDate(aug.created_at)}`,
    );
  };
  page(
    `Augmentation ${aug.id}`,
    h("p", {}, h("a", { href: `#/collections/${aug.collection_id}` }, "← Back to the collection")),
    head,
    progress,
    h("h2", {}, "Yield per stage"),
    statsBox,
    examples,
  );
  showHead();
  renderStats(statsBox, aug);
  if (aug.job) progress.update(aug.job);
  const review = await examplesReview(examples, aug);
  if (aug.job && !["succeeded", "failed", "cancelled"].includes(aug.job.status)) {
    const signal = pageSignal();
    let lastRefresh = 0;
    await watchJob(
      aug.job.id,
      async (job, name) => {
        progress.update(job);
        const now = Date.now();
        if (name === "end" || now - lastRefresh > 3000) {
          lastRefresh = now;
          aug = await api(`/v1/augmentations/${id}`);
          showHead();
          renderStats(statsBox, aug);
          if (name === "end") await review.reload();
        }
      },
      signal,
    );
  }
}

function renderStats(box, aug) {
  const st = aug.stats || {};
  const per = st.strategies || {};
  const names = Object.keys(per);
  const sum = (o) => Object.values(o || {}).reduce((a, b) => a + b, 0);
  const reasons = (o) =>
    Object.entries(o || {})
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
  fill(box, 
    h(
      "p",
      {},
      `${st.examples ?? 0} examples · estimated precision ${st.estimated_precision ?? "—"} · ${st.prompt_tokens ?? 0} prompt + ${st.completion_tokens ?? 0} completion tokens to the teacher · ${fmtSeconds(st.wall_s)}`,
    ),
    listTable(
      names,
      "No unit has finished yet.",
      "What each strategy produced, stage by stage",
      ["Strategy", "Units done", "Generated", "Parsed", "Dropped", "Kept", "Est. precision", "Flagged"],
      (n) => {
        const s = per[n];
        return [
          h("th", { scope: "row" }, n),
          h("td", { class: "num" }, `${s.units_done ?? 0} of ${s.units_total ?? "?"}${s.units_failed ? ` (${s.units_failed} failed)` : ""}`),
          h("td", { class: "num" }, s.generated ?? 0),
          h("td", { class: "num", title: reasons(s.unparsed) }, s.parsed ?? 0),
          h("td", { class: "num" }, `${sum(s.dropped)}${sum(s.dropped) ? ` (${reasons(s.dropped)})` : ""}`),
          h("td", { class: "num" }, s.kept ?? 0),
          h("td", { class: "num" }, s.estimated_precision ?? "—"),
          h("td", { class: "num" }, s.flagged ?? 0),
        ];
      },
      { id: "yield-table" },
    ),
  );
}

const PAGE = 50;

/** The examples, filtered, one page at a time, with approve/reject per row and in bulk. */
async function examplesReview(section, aug) {
  const state = { offset: 0, review: "", strategy: "", flagged: "" };
  const counts = h("p", { id: "review-counts", "aria-live": "polite" });
  const body = h("div");
  const out = h("div");
  const sel = (name, label, options) => {
    const s = h("select", { name }, options.map(([v, t]) => h("option", { value: v }, t)));
    s.addEventListener("change", () => {
      state[name] = s.value;
      state.offset = 0;
      reload();
    });
    return field(label, s);
  };
  const query = () => {
    const q = new URLSearchParams({ format: "json", limit: PAGE, offset: state.offset });
    for (const k of ["review", "strategy", "flagged"]) if (state[k]) q.set(k, state[k]);
    return q;
  };
  const filterBody = () => {
    const f = {};
    for (const k of ["review", "strategy"]) if (state[k]) f[k] = state[k];
    if (state.flagged) f.flagged = state.flagged === "true";
    return f;
  };
  const bulk = (decision, ids) =>
    withErrorBox(out, async () => {
      const payload = ids ? { decision, example_ids: ids } : { decision, filter: filterBody() };
      const r = await api(`/v1/augmentations/${aug.id}/review`, { method: "POST", body: payload });
      flash(`${r.updated} examples ${decision === "approve" ? "approved" : decision === "reject" ? "rejected" : "reset"}.`);
      await reload();
    });
  const selected = () => [...body.querySelectorAll("input[name=pick]:checked")].map((x) => Number(x.value));
  const one = (exampleId, decision) =>
    withErrorBox(out, async () => {
      await api(`/v1/augmentations/${aug.id}/examples/${exampleId}/review`, { method: "POST", body: { decision } });
      await reload();
    });
  const reload = async () => {
    const r = await api(`/v1/augmentations/${aug.id}/examples?${query()}`);
    const c = r.counts;
    counts.textContent = `${c.total} examples: ${c.pending} pending, ${c.approved} approved, ${c.rejected} rejected · ${r.total} match the filter`;
    if (!r.data.length) {
      body.replaceChildren(h("p", { class: "empty" }, "No examples match."));
      return;
    }
    const all = h("input", {
      type: "checkbox",
      "aria-label": "Select every example on this page",
      onchange: (e) => body.querySelectorAll("input[name=pick]").forEach((x) => (x.checked = e.target.checked)),
    });
    body.replaceChildren(
      table(
        `Examples ${r.offset + 1}–${r.offset + r.data.length} of ${r.total}`,
        [all, "Statement", "Source sentence", "Strategy", "Score", "Review", "Decide"],
        r.data.map((ex) =>
          h(
            "tr",
            { dataset: { exampleId: ex.id, review: ex.review }, class: ex.flagged ? "flagged" : "" },
            h("td", {}, h("input", { type: "checkbox", name: "pick", value: ex.id, "aria-label": `Select example ${ex.id}` })),
            h(
              "td",
              { class: "statement" },
              ex.text,
              h(
                "details",
                { class: "prov" },
                h("summary", {}, "provenance"),
                h("pre", {}, JSON.stringify(ex.provenance, null, 1)),
              ),
            ),
            h("td", { class: "source" }, ex.source_text ?? "—"),
            h("td", {}, ex.strategy),
            h("td", { class: "num" }, ex.score === null ? "—" : ex.score.toFixed(2), ex.flagged ? h("span", { class: "badge status-failed" }, "flagged") : null),
            h("td", {}, statusBadge(ex.review)),
            h(
              "td",
              { class: "actions" },
              h("button", { type: "button", class: "small", "aria-label": `Approve example ${ex.id}`, onclick: () => one(ex.id, "approve") }, "Approve"),
              h("button", { type: "button", class: "small", "aria-label": `Reject example ${ex.id}`, onclick: () => one(ex.id, "reject") }, "Reject"),
              ex.review !== "pending"
                ? h("button", { type: "button", class: "small link", "aria-label": `Reset example ${ex.id}`, onclick: () => one(ex.id, "reset") }, "Reset")
                : null,
            ),
          ),
        ),
        { id: "examples-table" },
      ),
      h(
        "div",
        { class: "row" },
        h("button", { type: "button", disabled: r.offset === 0, onclick: () => ((state.offset -= PAGE), reload()) }, "Previous page"),
        h("button", { type: "button", disabled: r.offset + PAGE >= r.total, onclick: () => ((state.offset += PAGE), reload()) }, "Next page"),
      ),
    );
  };
  fill(section, 
    h("h2", { id: "ex-h" }, "Examples and review"),
    counts,
    h(
      "div",
      { class: "filters" },
      sel("review", "Review state", [["", "any"], ["pending", "pending"], ["approved", "approved"], ["rejected", "rejected"]]),
      sel("strategy", "Strategy", [["", "any"], ...STRATEGIES.map((s) => [s, s]), ["uploaded", "uploaded"]]),
      sel("flagged", "Flagged", [["", "any"], ["true", "flagged only"], ["false", "not flagged"]]),
    ),
    h(
      "div",
      { class: "row bulk", role: "group", "aria-label": "Bulk review" },
      h("button", { type: "button", onclick: () => { const ids = selected(); if (ids.length) bulk("approve", ids); else flash("Select examples first.", "error"); } }, "Approve selected"),
      h("button", { type: "button", onclick: () => { const ids = selected(); if (ids.length) bulk("reject", ids); else flash("Select examples first.", "error"); } }, "Reject selected"),
      h("button", { type: "button", onclick: () => bulk("approve") }, "Approve all matching"),
      h("button", { type: "button", onclick: () => bulk("reject") }, "Reject all matching"),
    ),
    out,
    body,
  );
  await reload();
  return { reload };
}
