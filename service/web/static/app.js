// The dashboard's entry: a hash router (#/collections/col_...), the session bar, sign-in and the
// admin view. Each page lives in its own module and only calls the REST API.

import { api, apiKey, signIn, signOut } from "./api.js";
import { errorBox, field, flash, h, leavePage, page, submitForm } from "./ui.js";
import { collectionPage, collectionsPage, documentPage } from "./collections.js";
import { augmentationPage } from "./augmentations.js";
import { adapterPage, adaptersPage } from "./adapters.js";
import { playgroundPage } from "./playground.js";
import { evaluationPage, evaluationsPage } from "./evaluations.js";

const ROUTES = [
  [/^\/?$/, () => (apiKey() ? collectionsPage() : signInPage()), { open: true }],
  [/^\/signin$/, () => signInPage(), { open: true }],
  [/^\/admin$/, () => adminPage(), { open: true }],
  [/^\/collections$/, () => collectionsPage()],
  [/^\/collections\/([\w-]+)$/, (id) => collectionPage(id)],
  [/^\/documents\/([\w-]+)$/, (id) => documentPage(id)],
  [/^\/augmentations\/([\w-]+)$/, (id) => augmentationPage(id)],
  [/^\/adapters$/, () => adaptersPage()],
  [/^\/adapters\/([\w.:-]+)$/, (id) => adapterPage(id)],
  [/^\/playground$/, () => playgroundPage()],
  [/^\/evaluations$/, () => evaluationsPage()],
  [/^\/evaluations\/([\w-]+)$/, (id) => evaluationPage(id)],
];

// A page that loads slowly can finish after the user (or a 401) moved on: it then paints over
// the newer page, so the route that is current is rendered again.
let routeSeq = 0;
let paintedSeq = 0;

async function route() {
  leavePage();
  const seq = ++routeSeq;
  const path = decodeURIComponent(location.hash.replace(/^#/, "")) || "/";
  renderSession();
  markNav(path);
  const match = ROUTES.map(([pattern, render, opts]) => [path.match(pattern), render, opts]).find(([m]) => m);
  if (!match) {
    page("Not found", h("p", {}, "No page here. "), h("a", { href: "#/" }, "Home"));
    paintedSeq = seq;
    return;
  }
  const [m, render, opts] = match;
  if (!apiKey() && !(opts && opts.open)) {
    location.hash = "#/signin";
    return;
  }
  try {
    await render(...m.slice(1));
  } catch (err) {
    if (seq === routeSeq) page("Something went wrong", errorBox(err));
  }
  if (seq !== routeSeq) {
    if (paintedSeq === routeSeq) route();
    return;
  }
  paintedSeq = seq;
  document.getElementById("page-title")?.focus({ preventScroll: true });
}

function markNav(path) {
  for (const a of document.querySelectorAll("#nav a")) {
    const target = a.getAttribute("href").slice(1);
    if (path === target || path.startsWith(`${target}/`)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function renderSession() {
  const box = document.getElementById("session");
  const key = apiKey();
  if (!key) {
    box.replaceChildren(h("a", { href: "#/signin" }, "Sign in"));
    return;
  }
  box.replaceChildren(
    h("span", { class: "muted" }, `Key …${key.slice(-4)}`),
    h(
      "button",
      {
        type: "button",
        class: "link",
        onclick: () => {
          signOut();
          flash("Signed out.");
          location.hash = "#/signin";
          route();
        },
      },
      "Sign out",
    ),
  );
}

function signInPage() {
  const key = h("input", {
    type: "password",
    name: "api_key",
    autocomplete: "off",
    required: true,
    spellcheck: "false",
  });
  const out = h("div");
  const form = submitForm(
    { class: "card narrow" },
    out,
    async () => {
      // Any authenticated read tells whether the key is valid.
      await api("/v1/collections", { key: key.value.trim() });
      signIn(key.value);
      flash("Signed in.");
      location.hash = "#/collections";
    },
    field(
      "Workspace API key",
      key,
      "Kept in this browser tab only (sessionStorage) until you sign out or close the tab.",
    ),
    h("button", { type: "submit" }, "Sign in"),
    out,
  );
  page(
    "Sign in",
    h("p", {}, "Sign in with a workspace API key. An operator creates workspaces on the ",
      h("a", { href: "#/admin" }, "admin page"), " with the service's admin key."),
    form,
  );
}

function adminPage() {
  const adminKey = h("input", { type: "password", autocomplete: "off", required: true });
  const name = h("input", { type: "text", required: true, maxlength: 200 });
  const out = h("div", { "aria-live": "polite" });
  const form = submitForm(
    { class: "card narrow" },
    out,
    async () => {
      const ws = await api("/v1/workspaces", {
        method: "POST",
        body: { name: name.value },
        key: adminKey.value.trim(),
      });
      const keyOut = h("output", { class: "secret", id: "new-api-key" }, ws.api_key);
      out.replaceChildren(
        h(
          "div",
          { class: "card ok-box" },
          h("h2", {}, `Workspace ${ws.name} created`),
          h("p", {}, "Its API key is shown once; keep it somewhere safe:"),
          keyOut,
          h(
            "div",
            { class: "row" },
            h(
              "button",
              {
                type: "button",
                onclick: () => navigator.clipboard?.writeText(ws.api_key).then(
                  () => flash("Key copied."),
                  () => flash("Copy it by hand: the clipboard is not available.", "error"),
                ),
              },
              "Copy key",
            ),
            h(
              "button",
              {
                type: "button",
                onclick: () => {
                  signIn(ws.api_key);
                  flash(`Signed in to ${ws.name}.`);
                  location.hash = "#/collections";
                },
              },
              "Sign in with this key",
            ),
          ),
        ),
      );
    },
    field("Admin key", adminKey, "The service's admin key (docadapt-data/admin_key); sent once, never stored."),
    field("Workspace name", name),
    h("button", { type: "submit" }, "Create workspace"),
  );
  page("Admin: create a workspace", form, out);
}

window.addEventListener("hashchange", route);
window.addEventListener("docadapt:unauthorized", () => {
  signOut();
  flash("The key was refused (401); sign in again.", "error");
  location.hash = "#/signin";
});
route();
