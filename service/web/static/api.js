// The REST client the pages share: the workspace key lives in sessionStorage (this tab, until
// it closes or the user signs out) and goes in the Authorization header, never in a URL.

const KEY = "docadapt.key";

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function signIn(key) {
  sessionStorage.setItem(KEY, key.trim());
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

/** An error the API answered: its status and the envelope's code and message. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

async function errorOf(resp) {
  let code = "http_error";
  let message = `${resp.status} ${resp.statusText}`;
  let details;
  try {
    const body = await resp.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      details = body.error.details;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(resp.status, code, message, details);
}

/**
 * One request to the API. `body` as an object is sent as JSON, FormData as multipart; `key`
 * overrides the signed-in key (the admin key). Answers the parsed JSON, text or the Response.
 */
export async function api(path, { method = "GET", body, key, as = "json", headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  const token = key ?? apiKey();
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body instanceof FormData || typeof body === "string" || body instanceof Blob) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (!resp.ok) {
    const err = await errorOf(resp);
    if (resp.status === 401 && token === apiKey() && token) {
      window.dispatchEvent(new CustomEvent("docadapt:unauthorized", { detail: err }));
    }
    throw err;
  }
  if (as === "response") return resp;
  if (resp.status === 204) return null;
  if (as === "text") return resp.text();
  if (as === "blob") return resp.blob();
  return resp.json();
}

/**
 * Follow a server-sent event stream with the key in the header (EventSource cannot send one).
 * Calls onEvent(name, data) per event; resolves when the stream ends, or when `signal` aborts.
 */
export async function followEvents(path, onEvent, signal) {
  const resp = await fetch(path, {
    headers: { Authorization: `Bearer ${apiKey()}`, Accept: "text/event-stream" },
    signal,
  });
  if (!resp.ok) throw await errorOf(resp);
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, data.join("\n"));
    }
  }
}

/**
 * Follow a job to its end over its event stream (`progress`, then `end`); falls back to polling
 * GET /v1/jobs/{id} if the stream breaks. Resolves with the final job.
 */
export async function watchJob(jobId, onProgress, signal) {
  let last = null;
  try {
    await followEvents(
      `/v1/jobs/${jobId}/events`,
      (name, data) => {
        last = JSON.parse(data);
        onProgress(last, name);
      },
      signal,
    );
  } catch (err) {
    if (signal?.aborted) return last;
    if (err instanceof ApiError) throw err;
  }
  const terminal = ["succeeded", "failed", "cancelled"];
  while (!signal?.aborted && !(last && terminal.includes(last.status))) {
    await new Promise((r) => setTimeout(r, 1000));
    last = await api(`/v1/jobs/${jobId}`);
    onProgress(last, terminal.includes(last.status) ? "end" : "progress");
  }
  return last;
}

let schemas;
/**
 * A request model's properties from the service's OpenAPI schema (descriptions, defaults), so
 * the forms show the API's own help text; `_description` holds the model's docstring.
 */
export async function schemaProperties(name) {
  schemas ??= fetch("/openapi.json").then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  const schema = (await schemas).components?.schemas?.[name] || {};
  return { ...(schema.properties || {}), _description: schema.description };
}
