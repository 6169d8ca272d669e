// The client of the job service's public API: every request the pages make goes through here.
//
// When the server answers 401 (it was started with PLAYGROUND_API_TOKEN), the user is asked for the
// token once; it is kept in localStorage and sent as `Authorization: Bearer <token>` from then on.
// EventSource cannot send that header, so the token also goes into a SameSite=Strict cookie for
// /api, which the server accepts for reads only (a live stream under PLAYGROUND_AUTH_READS).

const TOKEN_KEY = "playground-token";
const TOKEN_COOKIE = "playground_token";

export class ApiError extends Error {
  constructor(status, detail, path) {
    super(describeDetail(status, detail, path));
    this.status = status;
    this.detail = detail; // FastAPI's `detail`: a string, or a list of {loc, msg, ...}
    this.path = path;
  }

  // [{field, msg}] for a 422 from pydantic validation, naming the parameter each error is about.
  fieldErrors() {
    if (!Array.isArray(this.detail)) return [];
    return this.detail.map((error) => ({ field: fieldOfLoc(error.loc || []), msg: error.msg || String(error) }));
  }
}

// ["body", "params", "lr"] -> "lr"; ["body", "device"] -> "device"; ["body", "params", "data", 0] -> "data".
export function fieldOfLoc(loc) {
  const parts = loc.filter((part) => part !== "body");
  if (parts[0] === "params" && parts.length > 1) return String(parts[1]);
  return parts.length ? String(parts[0]) : null;
}

function describeDetail(status, detail, path) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((e) => `${(e.loc || []).filter((p) => p !== "body").join(".")}: ${e.msg}`).join("; ");
  }
  return `${path} answered HTTP ${status}`;
}

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
  syncTokenCookie();
}

function syncTokenCookie() {
  const token = getToken();
  const value = token ? encodeURIComponent(token) : "";
  const expiry = token ? "" : "; max-age=0";
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${TOKEN_COOKIE}=${value}; path=/api; SameSite=Strict${secure}${expiry}`;
}
syncTokenCookie(); // a token saved on an earlier visit

export function authHeaders() {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// Shows the token dialog of base.html; resolves true when the user saved a token. Requests that
// get their 401 while it is open wait for the same answer: a second prompt would wipe what the user
// is typing (a page makes several reads at once when PLAYGROUND_AUTH_READS is on).
let tokenPrompt = null;

function askForToken(message) {
  if (!tokenPrompt) tokenPrompt = promptForToken(message).finally(() => (tokenPrompt = null));
  return tokenPrompt;
}

function promptForToken(message) {
  const dialog = document.getElementById("token-dialog");
  if (!dialog) return Promise.resolve(false);
  dialog.querySelector("[data-token-message]").textContent = message;
  const input = dialog.querySelector("input[name=token]");
  input.value = getToken();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        if (dialog.returnValue === "save" && input.value.trim()) {
          setToken(input.value.trim());
          resolve(true);
        } else {
          resolve(false);
        }
      },
      { once: true },
    );
    dialog.showModal();
    input.focus();
  });
}

// fetch() with the token, JSON in and out, and an ApiError for any non-2xx answer.
//   body: a plain object (sent as JSON) or a FormData (sent as multipart).
export async function request(method, path, { body, raw = false } = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = { Accept: "application/json", ...authHeaders() };
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await fetch(path, { method, headers, body: payload });
    if (response.status === 401 && attempt === 0) {
      const detail = await readDetail(response);
      const saved = await askForToken(
        typeof detail === "string" ? detail : "This server needs an access token for that.",
      );
      if (saved) continue;
      throw new ApiError(401, detail, path);
    }
    if (!response.ok) throw new ApiError(response.status, await readDetail(response), path);
    if (raw) return response;
    if (response.status === 204) return null;
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }
}

async function readDetail(response) {
  try {
    const data = await response.json();
    return data && "detail" in data ? data.detail : data;
  } catch {
    return `HTTP ${response.status}`;
  }
}

// ---- the endpoints --------------------------------------------------------------------------

export const api = {
  health: () => request("GET", "/api/health"),
  kinds: () => request("GET", "/api/kinds"),
  listJobs: ({ kind = "", status = "", limit = 50, offset = 0 } = {}) => {
    const query = new URLSearchParams({ limit: String(limit), offset: String(offset) });
    if (kind) query.set("kind", kind);
    if (status) query.set("status", status);
    return request("GET", `/api/jobs?${query}`);
  },
  createJob: (spec) => request("POST", "/api/jobs", { body: spec }),
  getJob: (id) => request("GET", `/api/jobs/${encodeURIComponent(id)}`),
  cancelJob: (id) => request("POST", `/api/jobs/${encodeURIComponent(id)}/cancel`),
  // Playing with a run: each answers 202 with the job as the command found it; the status it
  // leads to (paused, queued, running) comes over the event stream.
  pauseJob: (id) => request("POST", `/api/jobs/${encodeURIComponent(id)}/pause`),
  resumeJob: (id) => request("POST", `/api/jobs/${encodeURIComponent(id)}/resume`),
  // amount: {epochs: n} or {steps: n}; {} is one epoch.
  stepJob: (id, amount = {}) => request("POST", `/api/jobs/${encodeURIComponent(id)}/step`, { body: amount }),
  // Live parameters (x-live in the kind's schema), from the job's next step on.
  patchJob: (id, params) => request("PATCH", `/api/jobs/${encodeURIComponent(id)}`, { body: { params } }),
  deleteJob: (id) => request("DELETE", `/api/jobs/${encodeURIComponent(id)}`),
  // {columns, rows}; maxPoints asks for a min/max-downsampled history; withParent (a fork) puts
  // its parent's rows up to the fork step first.
  metrics: (id, { maxPoints, withParent = false } = {}) => {
    const query = new URLSearchParams({ format: "json" });
    if (maxPoints) query.set("max_points", String(maxPoints));
    if (withParent) query.set("with_parent", "true");
    return request("GET", `/api/jobs/${encodeURIComponent(id)}/metrics?${query}`);
  },
  // Who is asking: {name, role} (role open, admin, teacher or student).
  me: () => request("GET", "/api/me"),
  // The run's pictures of its model while it trained (mlp's curve, cifar's confusion matrix), oldest first.
  snapshots: (id) => request("GET", `/api/jobs/${encodeURIComponent(id)}/snapshots`),
  predictNumbers: (id, inputs) => request("POST", `/api/jobs/${encodeURIComponent(id)}/predict`, { body: { inputs } }),
  predictImage: (id, file) => {
    const form = new FormData();
    form.append("file", file);
    return request("POST", `/api/jobs/${encodeURIComponent(id)}/predict`, { body: form });
  },
  // A cifar run's net on one image: its convolutions' maps, first-layer filters, saliency.
  inside: (id, file) => {
    const form = new FormData();
    form.append("file", file);
    return request("POST", `/api/jobs/${encodeURIComponent(id)}/inside`, { body: form });
  },
  eventsUrl: (id) => `/api/jobs/${encodeURIComponent(id)}/events`,
  metricsUrl: (id, format) => `/api/jobs/${encodeURIComponent(id)}/metrics?format=${format}`,
  modelUrl: (id) => `/api/jobs/${encodeURIComponent(id)}/model`,
};

// A download link that still works when the server wants a token: plain links cannot send the
// Authorization header, so with a token the file is fetched and handed over as a blob.
export function wireDownload(link) {
  link.addEventListener("click", async (event) => {
    if (!getToken()) return;
    event.preventDefault();
    const response = await request("GET", link.getAttribute("href"), { raw: true });
    const url = URL.createObjectURL(await response.blob());
    const temp = document.createElement("a");
    temp.href = url;
    temp.download = link.getAttribute("download") || "";
    temp.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
}
