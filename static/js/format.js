// How numbers, times and job facts are written on the pages.

export const TERMINAL = new Set(["succeeded", "failed", "cancelled", "diverged", "interrupted"]);
export const STATUSES = ["queued", "running", "paused", "succeeded", "failed", "cancelled", "diverged", "interrupted"];

export function isTerminal(status) {
  return TERMINAL.has(status);
}

// 4 significant digits, exponent form for the very large and very small (diverging losses); a whole
// number below a million as it is (epochs 10243, not 10240).
export function num(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (typeof value !== "number") return String(value);
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (Number.isInteger(value) && abs < 1e6) return String(value);
  if (abs >= 1e6 || abs < 1e-4) return value.toExponential(digits - 1);
  return String(Number(value.toPrecision(digits)));
}

export function percent(value) {
  if (value === null || value === undefined) return "–";
  return `${(100 * value).toFixed(1)}%`;
}

// The service writes UTC timestamps; one without a zone is read as UTC, not local time.
export function parseTime(text) {
  if (!text) return null;
  const hasZone = /[zZ]|[+-]\d\d:?\d\d$/.test(text);
  const ms = Date.parse(hasZone ? text : `${text}Z`);
  return Number.isNaN(ms) ? null : ms;
}

export function duration(ms) {
  if (ms === null || ms === undefined || ms < 0) return "–";
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

// How long the job has trained: its finished runs on a worker, plus the current one while it runs
// (time paused or waiting for a worker is not counted). A job made before the service counted
// that: from its start to its end, or to now.
export function elapsedMs(job, now = Date.now()) {
  if (job.train_seconds != null || job.running_since) {
    const since = parseTime(job.running_since);
    return Math.max(0, (job.train_seconds ?? 0) * 1000 + (since === null ? 0 : now - since));
  }
  const start = parseTime(job.started_at);
  if (start === null) return null;
  const end = parseTime(job.finished_at) ?? now;
  return Math.max(0, end - start);
}

export function timeAgo(text, now = Date.now()) {
  const t = parseTime(text);
  if (t === null) return "";
  const s = Math.round((now - t) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString();
}

// The one number that says how a run went, per kind.
export function keyResult(job) {
  const r = job.result;
  if (!r) return "";
  if (job.kind === "cifar") {
    return r.val_acc !== undefined && r.val_acc !== null ? `val acc ${percent(r.val_acc)}` : "";
  }
  if (r.val_loss !== undefined && r.val_loss !== null) return `val loss ${num(r.val_loss)}`;
  if (r.train_loss !== undefined && r.train_loss !== null) return `loss ${num(r.train_loss)}`;
  return "";
}

export function jobLabel(job) {
  return job.name || `${job.kind} ${job.id.slice(0, 8)}`;
}

// The name of a run made from another with some parameters changed: the base name with each
// changed parameter once, at its new value. "fit · lr=0.001" with lr 0.0001 is "fit · lr=0.0001",
// not "fit · lr=0.001 · lr=0.0001" (retries of retries, sweeps of a named run).
export function variantName(base, change) {
  const changed = new Set(Object.keys(change));
  const kept = String(base)
    .split(" · ")
    .filter((part, i) => i === 0 || !changed.has(part.split("=")[0]));
  return [...kept, ...Object.entries(change).map(([k, v]) => `${k}=${v ?? "default"}`)].join(" · ").slice(0, 200);
}

// A status badge: the word is always shown, so colour is never the only cue.
export function statusBadge(status) {
  const span = document.createElement("span");
  span.className = `badge status-${status}`;
  span.textContent = status;
  return span;
}

// A box that scrolls sideways says so: the .scrolls class (shadows at the edges that hide more) and
// a hint line. Call the returned function again after its content changes.
export function markScrolling(box, hint) {
  const update = () => {
    const scrolls = box.scrollWidth > box.clientWidth + 1;
    box.classList.toggle("scrolls", scrolls);
    if (hint) hint.hidden = !scrolls;
  };
  if (!box.scrollWatch) {
    box.scrollWatch = new ResizeObserver(update);
    box.scrollWatch.observe(box);
  }
  update();
  return update;
}

// element("a", {href: "/", class: "x"}, "text", child, ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// On a server with users a student changes only their own runs (the server answers 403 to the
// rest); a teacher, the admin or anyone on an open server changes all. viewer: GET /api/me's answer.
export function mayChange(job, viewer) {
  return !viewer || viewer.role !== "student" || job.owner === viewer.name;
}
