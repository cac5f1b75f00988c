// Collections and their documents: list, create, upload (file input or drag-and-drop, one
// request per file so each file gets its own result or error), read a document's text.

import { api } from "./api.js";
import {
  field,
  flash,
  fmtDate,
  fill,
  h,
  linkHead,
  listTable,
  page,
  plural,
  statusBadge,
  submitForm,
} from "./ui.js";
import { augmentationForm } from "./augmentations.js";
import { trainForm } from "./adapters.js";
import { evaluationSection } from "./evaluations.js";

export async function collectionsPage() {
  const list = h("div");
  const name = h("input", { type: "text", required: true, maxlength: 200 });
  const description = h("textarea", { rows: 2, maxlength: 5000 });
  const out = h("div");
  const form = submitForm(
    { class: "card" },
    out,
    async () => {
      const col = await api("/v1/collections", {
        method: "POST",
        body: { name: name.value, description: description.value },
      });
      flash(`Collection ${col.name} created.`);
      location.hash = `#/collections/${col.id}`;
    },
    h("h2", {}, "New collection"),
    field("Name", name),
    field("Description (optional)", description),
    h("button", { type: "submit" }, "Create collection"),
    out,
  );
  page("Collections", list, form);
  const { data } = await api("/v1/collections");
  list.replaceChildren(
    listTable(
      data,
      "No collections yet: create one below.",
      "Your collections",
      ["Name", "Documents", "Sentences", "Tokens", "Created"],
      (c) => [
        linkHead(`#/collections/${c.id}`, c.name),
        h("td", { class: "num" }, c.document_count),
        h("td", { class: "num" }, c.sentence_count),
        h("td", { class: "num" }, c.token_count),
        h("td", {}, fmtDate(c.created_at)),
      ],
      { id: "collections-table" },
    ),
  );
}

export async function collectionPage(id) {
  const col = await api(`/v1/collections/${id}`);
  const summary = h("p", { class: "muted", id: "collection-summary" });
  const showSummary = (c) => {
    summary.textContent = `${c.document_count} documents · ${c.sentence_count} sentences · ${c.token_count} tokens · ${c.id}`;
  };
  showSummary(col);
  const docs = h("div", { id: "documents" });
  const refresh = async () => {
    const [{ data }, c] = await Promise.all([
      api(`/v1/collections/${id}/documents`),
      api(`/v1/collections/${id}`),
    ]);
    showSummary(c);
    docs.replaceChildren(documentsTable(data, refresh));
  };
  const augSection = h("section", { "aria-labelledby": "aug-h" });
  const adapterSection = h("section", { "aria-labelledby": "ad-h" });
  const evalSection = h("section", { "aria-labelledby": "ev-h" });
  page(
    `Collection: ${col.name}`,
    col.description ? h("p", {}, col.description) : null,
    summary,
    h(
      "nav",
      { class: "toc", "aria-label": "On this page" },
      h("a", { href: "#/collections" }, "← All collections"),
      " · ",
      h("a", { href: "#/playground" }, "Playground"),
    ),
    h(
      "section",
      { "aria-labelledby": "docs-h" },
      h("h2", { id: "docs-h" }, "Documents"),
      docs,
      uploader(id, refresh),
    ),
    augSection,
    adapterSection,
    evalSection,
    h(
      "section",
      { class: "danger" },
      h("h2", {}, "Delete this collection"),
      h(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: async () => {
            if (!confirm(`Delete collection ${col.name} and its documents?`)) return;
            try {
              await api(`/v1/collections/${id}`, { method: "DELETE" });
              flash(`Collection ${col.name} deleted.`);
              location.hash = "#/collections";
            } catch (err) {
              flash(err.message, "error");
            }
          },
        },
        "Delete collection",
      ),
    ),
  );
  await refresh();
  await Promise.all([
    augmentationsSection(augSection, id),
    adaptersSection(adapterSection, id),
    evaluationSection(evalSection, col),
  ]);
}

function documentsTable(data, refresh) {
  return listTable(
    data,
    "No documents yet: upload some below.",
    "Documents in this collection",
    ["File", "Type", "Sentences", "Passages", "Tokens", "Size", ""],
    (d) => [
      linkHead(`#/documents/${d.id}`, d.filename),
      h("td", {}, d.media_type),
      h("td", { class: "num" }, d.sentence_count),
      h("td", { class: "num" }, d.passage_count),
      h("td", { class: "num" }, d.token_count),
      h("td", { class: "num" }, `${d.size_bytes} B`),
      h(
        "td",
        {},
        h(
          "button",
          {
            type: "button",
            class: "small",
            "aria-label": `Delete ${d.filename}`,
            onclick: async () => {
              if (!confirm(`Delete ${d.filename}?`)) return;
              try {
                await api(`/v1/documents/${d.id}`, { method: "DELETE" });
                flash(`${d.filename} deleted.`);
                await refresh();
              } catch (err) {
                flash(err.message, "error");
              }
            },
          },
          "Delete",
        ),
      ),
    ],
    { id: "documents-table" },
  );
}

/** File input plus a drop zone; each file is its own upload, with its own result line. */
function uploader(collectionId, refresh) {
  const input = h("input", { type: "file", multiple: true, id: "upload-files" });
  const results = h("ul", { class: "upload-results", id: "upload-results", "aria-live": "polite" });
  const send = async (files) => {
    if (!files.length) return;
    const lines = [...files].map((f) => {
      const li = h("li", { class: "pending" }, `${f.name}: uploading…`);
      results.append(li);
      return li;
    });
    await Promise.all(
      [...files].map(async (f, i) => {
        const form = new FormData();
        form.append("files", f, f.name);
        try {
          const { data } = await api(`/v1/collections/${collectionId}/documents`, {
            method: "POST",
            body: form,
          });
          const d = data[0];
          lines[i].className = "ok";
          lines[i].textContent = `${f.name}: ${d.duplicate ? "already in the collection (duplicate)" : "stored"} — ${plural(d.sentence_count, "sentence")}, ${plural(d.passage_count, "passage")}, ${plural(d.token_count, "token")} (${d.media_type})`;
        } catch (err) {
          lines[i].className = "error";
          lines[i].textContent = `${f.name}: refused — ${err.message} (${err.status} ${err.code})`;
        }
      }),
    );
    await refresh();
  };
  input.addEventListener("change", () => {
    send(input.files).then(() => (input.value = ""));
  });
  const zone = h(
    "div",
    { class: "dropzone", id: "dropzone" },
    h("p", {}, "Drop files here, or choose them:"),
    h("label", { for: input.id }, "Files to upload (.txt .md .html .pdf .docx)"),
    input,
  );
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    send(e.dataTransfer.files);
  });
  return h("div", { class: "card" }, h("h3", {}, "Upload documents"), zone, results);
}

async function augmentationsSection(section, collectionId) {
  const { data } = await api(`/v1/collections/${collectionId}/augmentations`);
  fill(section, 
    h("h2", { id: "aug-h" }, "Augmentations"),
    listTable(
      data,
      "No augmentations yet.",
      "Augmentations of this collection",
      ["Augmentation", "Status", "Strategies", "Examples", "Est. precision", "Created"],
      (a) => [
        linkHead(`#/augmentations/${a.id}`, a.id),
        h("td", {}, statusBadge(a.status)),
        h("td", {}, (a.params.strategies || []).join(", ")),
        h("td", { class: "num" }, a.stats?.examples ?? "—"),
        h("td", { class: "num" }, a.stats?.estimated_precision ?? "—"),
        h("td", {}, fmtDate(a.created_at)),
      ],
      { id: "augmentations-table" },
    ),
    await augmentationForm(collectionId),
  );
}

async function adaptersSection(section, collectionId) {
  const [{ data }, augs] = await Promise.all([
    api("/v1/adapters"),
    api(`/v1/collections/${collectionId}/augmentations`),
  ]);
  const mine = data.filter((a) => a.collection_id === collectionId);
  fill(section, 
    h("h2", { id: "ad-h" }, "Adapters"),
    listTable(
      mine,
      "No adapters yet.",
      "Adapters trained on this collection",
      ["Adapter", "Status", "Augmentation", "Created"],
      (a) => [
        linkHead(`#/adapters/${a.id}`, a.name),
        h("td", {}, statusBadge(a.status)),
        h("td", {}, a.augmentation_id || "none (plain fine-tuning)"),
        h("td", {}, fmtDate(a.created_at)),
      ],
    ),
    trainForm(collectionId, augs.data),
  );
}

export async function documentPage(id) {
  const doc = await api(`/v1/documents/${id}`);
  const view = h("div", { id: "document-view" });
  const asText = () =>
    view.replaceChildren(h("pre", { class: "doc-text", id: "document-text" }, doc.text));
  const asPassages = () =>
    view.replaceChildren(
      h(
        "ol",
        { class: "passages", id: "document-passages" },
        doc.passages.map((p) =>
          h(
            "li",
            {},
            h("p", { class: "muted" }, `Passage ${p.index + 1} · ${p.token_count} tokens · ${p.sentences.length} sentences`),
            h("ol", { class: "sentences" }, p.sentences.map((s) => h("li", {}, s))),
          ),
        ),
      ),
    );
  const tabs = h(
    "div",
    { class: "row", role: "group", "aria-label": "View" },
    h("button", { type: "button", onclick: asPassages }, "Passages and sentences"),
    h("button", { type: "button", onclick: asText }, "Full text"),
  );
  page(
    `Document: ${doc.filename}`,
    h(
      "p",
      { class: "muted" },
      `${doc.media_type}${doc.text_encoding ? ` (${doc.text_encoding})` : ""} · ${doc.size_bytes} bytes · ${doc.char_count} characters · ${doc.passage_count} passages · ${doc.sentence_count} sentences · ${doc.token_count} tokens`,
    ),
    h("p", {}, h("a", { href: `#/collections/${doc.collection_id}` }, "← Back to the collection")),
    tabs,
    view,
  );
  asPassages();
}
