// The playground: one question to an adapter, the documents in context (icl:), rag and the
// bare base model, side by side, streamed; each answer with its prompt tokens, latency and cost.

import { api, apiKey } from "./api.js";
import { checkbox, errorBox, field, fmtUsd, h, page, submitForm } from "./ui.js";

function prices() {
  try {
    return JSON.parse(document.body.dataset.prices || "{}");
  } catch {
    return {};
  }
}

export async function playgroundPage() {
  const [adapters, collections] = await Promise.all([api("/v1/adapters"), api("/v1/collections")]);
  const ready = adapters.data.filter((a) => a.status === "ready");
  const adapter = h(
    "select",
    { name: "adapter" },
    ready.length ? ready.map((a) => h("option", { value: a.name, dataset: { collection: a.collection_id || "" } }, a.name)) : h("option", { value: "" }, "no ready adapter"),
  );
  const collection = h(
    "select",
    { name: "collection" },
    collections.data.map((c) => h("option", { value: c.id }, c.name)),
  );
  // Picking an adapter picks the collection it was trained on.
  const follow = () => {
    const col = adapter.selectedOptions[0]?.dataset.collection;
    if (col) collection.value = col;
  };
  adapter.addEventListener("change", follow);
  follow();
  const question = h("textarea", { rows: 3, required: true, name: "question" });
  const maxTokens = h("input", { type: "number", min: 1, max: 1024, value: 64, name: "max_tokens" });
  const topK = h("input", { type: "number", min: 1, max: 50, value: 3, name: "top_k" });
  const modes = {
    adapter: checkbox("adapter", { checked: true, name: "mode-adapter" }),
    "adapter+rag": checkbox("adapter + rag", { name: "mode-adapter-rag" }),
    icl: checkbox("icl: (documents in the prompt)", { checked: true, name: "mode-icl" }),
    rag: checkbox("rag (base + top passages)", { checked: true, name: "mode-rag" }),
    base: checkbox("base", { checked: true, name: "mode-base" }),
  };
  const answers = h("div", { class: "answers", id: "answers" });
  const out = h("div");
  const form = submitForm(
    { class: "card", id: "playground-form" },
    out,
    async () => {
      const chosen = Object.entries(modes)
        .filter(([, box]) => box.querySelector("input").checked)
        .map(([m]) => m);
      if (!chosen.length) {
        out.replaceChildren(errorBox({ message: "Choose at least one mode." }));
        return;
      }
      if (chosen.some((m) => m.startsWith("adapter")) && !adapter.value) {
        out.replaceChildren(errorBox({ message: "No ready adapter: train one first, or leave the adapter modes out." }));
        return;
      }
      const runs = chosen.map((m) => request(m, adapter.value, collection.value, Number(topK.value)));
      const cards = runs.map((r) => answerCard(r.label));
      answers.replaceChildren(...cards);
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      // One after another, so each latency is the model's alone, not a share of the CPU.
      for (let i = 0; i < runs.length; i++) {
        await ask(runs[i].body, question.value, Number(maxTokens.value), cards[i]);
      }
      button.disabled = false;
    },
    field("Question", question),
    h(
      "div",
      { class: "grid2" },
      field("Adapter", adapter),
      field("Collection (for icl: and rag)", collection),
      field("Max answer tokens", maxTokens),
      field("Passages for rag (top k)", topK, "BM25 picks the question's top passages from the collection."),
    ),
    h("fieldset", {}, h("legend", {}, "Modes, side by side"), h("div", { class: "checks" }, Object.values(modes))),
    h("button", { type: "submit" }, "Ask"),
    out,
  );
  page(
    "Playground",
    h("p", { class: "muted" }, "Answers stream in one mode after another; cost is prompt and completion tokens at the service's prices."),
    form,
    answers,
  );
}

function request(mode, adapterName, collectionId, topK) {
  const retrieval = { collection_id: collectionId, top_k: topK };
  switch (mode) {
    case "adapter":
      return { label: adapterName, body: { model: adapterName } };
    case "adapter+rag":
      return { label: `${adapterName}+rag`, body: { model: adapterName, retrieval } };
    case "icl":
      return { label: `icl:${collectionId}`, body: { model: `icl:${collectionId}` } };
    case "rag":
      return { label: "rag", body: { model: "base", retrieval } };
    default:
      return { label: "base", body: { model: "base" } };
  }
}

function answerCard(label) {
  const text = h("p", { class: "answer-text" });
  const meta = h("dl", { class: "facts small" });
  const card = h(
    "article",
    { class: "card answer", "aria-busy": "true", dataset: { mode: label } },
    h("h2", {}, label),
    text,
    meta,
  );
  card.text = text;
  card.meta = meta;
  return card;
}

/** Stream one chat completion into its card; the usage chunk gives the token counts. */
async function ask(body, question, maxTokens, card) {
  const started = performance.now();
  let first = null;
  let usage = null;
  let info = null;
  try {
    const resp = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { Authorization: `Bearer ${apiKey()}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        ...body,
        messages: [{ role: "user", content: question }],
        max_tokens: maxTokens,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    if (!resp.ok) {
      const err = await resp.json().catch(() => ({}));
      throw Object.assign(new Error(err.error?.message || resp.statusText), { status: resp.status, code: err.error?.code });
    }
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const line = buffer.slice(0, cut).trim();
        buffer = buffer.slice(cut + 2);
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw Object.assign(new Error(chunk.error.message), { code: chunk.error.code });
        if (chunk.docadapt) info = chunk.docadapt;
        if (chunk.usage) usage = chunk.usage;
        const delta = chunk.choices?.[0]?.delta?.content;
        if (delta) {
          first ??= performance.now();
          card.text.textContent += delta;
        }
      }
    }
  } catch (err) {
    card.append(errorBox(err));
  }
  const latency = (performance.now() - started) / 1000;
  const p = prices();
  const cost = usage && p.input_per_mtok !== undefined
    ? (usage.prompt_tokens * p.input_per_mtok + usage.completion_tokens * p.output_per_mtok) / 1e6
    : null;
  const rows = [
    ["Prompt tokens", usage ? usage.prompt_tokens : "—"],
    ["Completion tokens", usage ? usage.completion_tokens : "—"],
    ["Latency", `${latency.toFixed(2)} s`],
    ["First token after", first ? `${((first - started) / 1000).toFixed(2)} s` : "—"],
    ["Cost", fmtUsd(cost)],
  ];
  if (info?.passages_used !== undefined) rows.push(["Passages", `${info.passages_used} of ${info.passages_total}`]);
  card.meta.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { k } }, v)]));
  card.setAttribute("aria-busy", "false");
  card.dataset.done = "true";
}
