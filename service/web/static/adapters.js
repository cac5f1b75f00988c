// Adapters: train one from a collection (and an augmentation), its live loss curve over the
// job's event stream, the knowledge check, lineage, download, import and delete.

import { api, schemaProperties, watchJob } from "./api.js";
import {
  cancelButton,
  field,
  flash,
  fmtDate,
  fmtNum,
  fmtPct,
  fmtSeconds,
  fill,
  h,
  jobProgress,
  lineChart,
  linkHead,
  listTable,
  page,
  pageSignal,
  saveBlob,
  statusBadge,
  submitForm,
  table,
} from "./ui.js";

// The fields of adapters.train.TrainConfig a person most often sets, with its docstrings.
const HYPERPARAMETERS = [
  ["max_steps", "Max steps", { min: 1, step: 1 }, "At most this many optimizer steps; training ends at whichever of epochs and max_steps comes first, or sooner when early stopping ends it. Empty: no cap."],
  ["epochs", "Epochs", { min: 1, step: 1, placeholder: "20" }, "At most this many passes over the training rows (early stopping may end sooner). Empty: 20."],
  ["learning_rate", "Learning rate", { min: 0, step: "any", placeholder: "0.001" }, "Peak AdamW learning rate. Empty: 1e-3."],
  ["rank", "LoRA rank", { min: 1, step: 1, placeholder: "16" }, "Width of the low-rank update; at most the server's max LoRA rank. Empty: 16."],
  ["batch_size", "Batch size", { min: 1, step: 1, placeholder: "2" }, "Rows (packed sequences) per micro-batch. Empty: 2."],
  ["max_seq_length", "Max sequence length", { min: 8, step: 1, placeholder: "128" }, "Tokens per row. Empty: 128."],
  ["eval_every", "Evaluate every (steps)", { min: 0, step: 1 }, "Optimizer steps between evaluations (held-out loss and the knowledge check); 0: only at the start and the end. Empty: about ten times a run."],
];

export function trainForm(collectionId, augmentations) {
  const name = h("input", { type: "text", required: true, maxlength: 100, name: "adapter_name" });
  const aug = h(
    "select",
    { name: "augmentation_id" },
    h("option", { value: "" }, "none: plain fine-tuning on the documents"),
    augmentations
      .filter((a) => a.status === "succeeded")
      .map((a) => h("option", { value: a.id }, `${a.id} (${(a.params.strategies || []).join(", ")}; ${a.stats?.examples ?? 0} examples)`)),
  );
  const examples = h(
    "select",
    { name: "examples" },
    ["not_flagged", "not_rejected", "approved", "all"].map((v) => h("option", { value: v }, v)),
  );
  const hp = HYPERPARAMETERS.map(([key, label, attrs, help]) => [key, h("input", { type: "number", name: key, ...attrs }), label, help]);
  const out = h("div");
  const form = submitForm(
    { class: "card", id: "train-form" },
    out,
    async () => {
      const body = { name: name.value, hyperparameters: {} };
      if (aug.value) {
        body.augmentation_id = aug.value;
        body.examples = examples.value;
      }
      for (const [key, input] of hp) {
        if (input.value !== "") body.hyperparameters[key] = Number(input.value);
      }
      const adapter = await api(`/v1/collections/${collectionId}/adapters`, { method: "POST", body });
      flash(`Training ${adapter.name} started.`);
      location.hash = `#/adapters/${adapter.id}`;
    },
    h("h3", {}, "Train an adapter"),
    field("Adapter name", name, "Unique in the workspace; queries name it as their model."),
    field("Augmentation", aug, "A finished augmentation of this collection, or none."),
    field("Which examples", examples, "By review state: not_flagged = approved plus pending ones verification did not flag; approved = approved only."),
    h(
      "details",
      {},
      h("summary", {}, "Hyperparameters (none needed: training stops when the knowledge check stops improving)"),
      hp.map(([, input, label, help]) => field(label, input, help)),
    ),
    h("button", { type: "submit" }, "Train adapter"),
    out,
  );
  // The API's description of `examples` is the authoritative help text.
  schemaProperties("AdapterCreate").then((p) => {
    const help = form.querySelector(`#${examples.id}-help`);
    if (help && p.examples?.description) help.textContent = p.examples.description;
  });
  return form;
}

export async function adaptersPage() {
  const { data } = await api("/v1/adapters");
  const file = h("input", { type: "file", accept: ".tar.gz,.tgz,.zip", required: true, name: "adapter_file" });
  const name = h("input", { type: "text", required: true, maxlength: 100, name: "adapter_name" });
  const out = h("div");
  page(
    "Adapters",
    listTable(
      data,
      "No adapters yet: train one from a collection's page.",
      "Adapters in this workspace",
      ["Adapter", "Status", "Source", "Collection", "Knowledge check", "Created"],
      (a) => [
        linkHead(`#/adapters/${a.id}`, a.name),
        h("td", {}, statusBadge(a.status)),
        h("td", {}, a.source),
        h("td", {}, a.collection_id ? h("a", { href: `#/collections/${a.collection_id}` }, a.collection_id) : "—"),
        h("td", {}, a.metrics?.knowledge?.summary ?? "—"),
        h("td", {}, fmtDate(a.created_at)),
      ],
      { id: "adapters-table" },
    ),
    submitForm(
      { class: "card", id: "import-adapter-form" },
      out,
      async () => {
        const form = new FormData();
        form.append("name", name.value);
        form.append("file", file.files[0]);
        const a = await api("/v1/adapters/import", { method: "POST", body: form });
        flash(`Adapter ${a.name} imported.`);
        location.hash = `#/adapters/${a.id}`;
      },
      h("h2", {}, "Import an adapter"),
      field("PEFT LoRA adapter (.tar.gz or .zip)", file),
      field("Name", name),
      h("button", { type: "submit" }, "Import"),
      out,
    ),
  );
}

export async function adapterPage(id) {
  let adapter = await api(`/v1/adapters/${id}`);
  const progress = jobProgress();
  progress.cancel = (jobId) => cancelButton(jobId, api);
  const chart = lineChart("Loss per step: training, and held-out where measured", "step", "loss");
  chart.id = "loss-chart";
  const knowledge = h("section", { id: "knowledge", "aria-labelledby": "kn-h" });
  const lineage = h("section", { id: "lineage", "aria-labelledby": "li-h" });
  const head = h("p", { id: "adapter-head" });
  const live = [];
  const showAll = () => {
    head.replaceChildren(
      statusBadge(adapter.status),
      ` ${adapter.source} · base ${adapter.base_model} · rank ${adapter.rank ?? "—"}`,
      ...(adapter.status_reason ? [h("span", { class: "error" }, ` · ${adapter.status_reason}`)] : []),
    );
    const m = adapter.metrics || {};
    const curve = m.loss_curve?.length ? m.loss_curve : live;
    const series = [{ name: "training loss", points: curve, cls: "s1" }];
    if (m.held_out_curve?.length) series.push({ name: "held-out loss", points: m.held_out_curve, cls: "s2" });
    chart.draw(series);
    renderKnowledge(knowledge, m);
    renderLineage(lineage, adapter);
  };
  page(
    `Adapter: ${adapter.name}`,
    head,
    progress,
    h("h2", {}, "Loss curve"),
    chart,
    knowledge,
    lineage,
    h(
      "div",
      { class: "row" },
      h(
        "button",
        {
          type: "button",
          onclick: async () => {
            try {
              const blob = await api(`/v1/adapters/${adapter.id}/download`, { as: "blob" });
              saveBlob(blob, `${adapter.name}.tar.gz`);
              flash(`Downloading ${adapter.name}.tar.gz (${blob.size} bytes).`);
            } catch (err) {
              flash(`${err.message} (${err.status} ${err.code})`, "error");
            }
          },
        },
        "Download",
      ),
      h("a", { class: "button", href: "#/playground" }, "Ask it in the playground"),
      h(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: async () => {
            if (!confirm(`Delete adapter ${adapter.name}?`)) return;
            try {
              await api(`/v1/adapters/${adapter.id}`, { method: "DELETE" });
              flash(`Adapter ${adapter.name} deleted.`);
              location.hash = "#/adapters";
            } catch (err) {
              flash(err.message, "error");
            }
          },
        },
        "Delete",
      ),
    ),
  );
  showAll();
  if (!adapter.job_id) return;
  const job = await api(`/v1/jobs/${adapter.job_id}`);
  progress.update(job);
  if (["succeeded", "failed", "cancelled"].includes(job.status)) return;
  let lastStatus = adapter.status;
  await watchJob(
    adapter.job_id,
    async (j, name) => {
      progress.update(j);
      const loss = j.metrics?.loss;
      const step = j.progress?.done;
      if (typeof loss === "number" && step && !live.some((p) => p[0] === step)) {
        live.push([step, loss]);
        if (!adapter.metrics?.loss_curve) chart.draw([{ name: "training loss", points: live, cls: "s1" }]);
      }
      if (name === "end" || j.message !== lastStatus) {
        lastStatus = j.message;
        adapter = await api(`/v1/adapters/${id}`);
        showAll();
      }
    },
    pageSignal(),
  );
}

function renderKnowledge(section, m) {
  const k = m.knowledge;
  fill(section, 
    h("h2", { id: "kn-h" }, "Knowledge check"),
    !k
      ? h("p", { class: "empty" }, "Not yet: the check runs once the adapter is trained and loaded.")
      : h(
          "div",
          {},
          h("p", { id: "knowledge-summary" }, k.summary ?? k.note ?? ""),
          k.flag ? h("p", { class: "error" }, k.flag) : null,
          k.probes
            ? table(
                "Probes from the adapter's own documents",
                ["", "Adapter", "Base", "Chance", "Target"],
                [
                  h("tr", {}, h("th", { scope: "row" }, `facts (${k.probes} probes)`), h("td", {}, fmtPct(k.adapter)), h("td", {}, fmtPct(k.base)), h("td", {}, fmtPct(k.chance)), h("td", {}, fmtPct(k.target))),
                  k.questions
                    ? h("tr", {}, h("th", { scope: "row" }, `chat questions (${k.questions.probes})`), h("td", {}, fmtPct(k.questions.adapter)), h("td", {}, fmtPct(k.questions.base)), h("td", {}, "—"), h("td", {}, "—"))
                    : null,
                ],
              )
            : null,
        ),
    m.steps !== undefined
      ? h(
          "p",
          { class: "muted" },
          `${m.steps} steps of ${m.planned_steps ?? "?"}${m.stopped_early_at ? ` (stopped early at ${m.stopped_early_at})` : ""} · final loss ${fmtNum(m.final_loss)} · ${m.training_examples ?? m.examples ?? "?"} training examples · ${fmtSeconds(m.train_seconds)} training · ${fmtNum(m.tokens_per_second)} tokens/s`,
        )
      : null,
  );
}

function renderLineage(section, a) {
  const docs = Object.entries(a.document_versions || {});
  const r = a.review;
  fill(section, 
    h("h2", { id: "li-h" }, "Lineage"),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Collection"),
      h("dd", {}, a.collection_id ? h("a", { href: `#/collections/${a.collection_id}` }, a.collection_id) : "—"),
      h("dt", {}, "Augmentation"),
      h("dd", {}, a.augmentation_id ? h("a", { href: `#/augmentations/${a.augmentation_id}` }, a.augmentation_id) : "none (plain fine-tuning)"),
      h("dt", {}, "Examples trained on"),
      h("dd", {}, r ? Object.entries(r).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(" · ") : "—"),
      h("dt", {}, "Dataset hash"),
      h("dd", { class: "mono" }, a.dataset_hash ?? "—"),
      h("dt", {}, "Hyperparameters"),
      h("dd", {}, h("details", {}, h("summary", {}, "show"), h("pre", {}, JSON.stringify(a.hyperparameters, null, 1)))),
      h("dt", {}, "Created / ready"),
      h("dd", {}, `${fmtDate(a.created_at)} / ${fmtDate(a.ready_at)}`),
    ),
    listTable(
      docs,
      null,
      "Documents and the versions (text sha256) it was trained on",
      ["Document", "Version"],
      ([d, sha]) => [linkHead(`#/documents/${d}`, d), h("td", { class: "mono" }, String(sha).slice(0, 16))],
    ),
  );
}
