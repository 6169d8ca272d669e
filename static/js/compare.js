// Compare: the loss curves of two or more runs on one chart (their min/max-downsampled histories),
// and the settings in which they differ.

import { api } from "./api.js";
import { LineChart, PALETTE, VAL_DASH } from "./charts.js";
import { duration, el, elapsedMs, isTerminal, jobLabel, keyResult, markScrolling, statusBadge } from "./format.js";
import "./header.js";
import { rowsToPoints } from "./metrics.js";
import { onServerEvents } from "./serverevents.js";

const MAX_POINTS = 2000; // per run: plenty for a chart, and fast with many runs
const root = document.getElementById("compare-view");
const $ = (selector) => root.querySelector(selector);

let runs = []; // [{job, points}]
let chart = null;
let refresh = null; // a compared run changed: the view reloads REFRESH_MS later (once for many changes)
const REFRESH_MS = 2000;

function selectedIds() {
  const ids = new URLSearchParams(location.search).get("ids");
  return ids ? ids.split(",").filter(Boolean) : [];
}

// x of each loss point: its step, or its (fractional) epoch so runs of different batch counts line up.
function xOf(points, axis) {
  if (axis === "step") return points.map((p) => p.step);
  const epochOne = points.filter((p) => p.epoch === 1);
  const complete = points.some((p) => (p.epoch ?? 0) > 1);
  const perEpoch = complete && epochOne.length ? Math.max(...epochOne.map((p) => p.step)) : null;
  return points.map((p) => (perEpoch ? p.step / perEpoch : p.epoch));
}

function lossPoints(points) {
  // cifar's epoch-end points repeat a step with the epoch's mean loss; the batch points are the curve.
  return points.filter((p) => p.train_acc == null && p.val_acc == null);
}

function buildChartData(axis, showVal) {
  const tables = [];
  const series = [];
  runs.forEach(({ job, points }, i) => {
    const color = PALETTE[i % PALETTE.length];
    const loss = lossPoints(points);
    const xs = xOf(loss, axis);
    tables.push([xs, loss.map((p) => p.train_loss ?? null)]);
    series.push({ label: `${jobLabel(job)} train`, stroke: color, width: 2 });
    const valPoints = points.filter((p) => p.val_loss != null);
    if (showVal && valPoints.length) {
      tables.push([xOf(valPoints, axis), valPoints.map((p) => p.val_loss)]);
      series.push({ label: `${jobLabel(job)} val`, stroke: color, width: 2, dash: VAL_DASH });
    }
  });
  // uPlot.join aligns the runs on one x axis (null where a run has no point); x must be unique
  // and ascending within each table.
  const cleaned = tables.map(([xs, ys]) => dedupeSorted(xs, ys));
  return { data: cleaned.length ? uPlot.join(cleaned) : [[]], series };
}

function dedupeSorted(xs, ys) {
  const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  const outX = [], outY = [];
  for (const i of order) {
    if (xs[i] == null) continue;
    if (outX.length && outX[outX.length - 1] === xs[i]) {
      outY[outY.length - 1] = ys[i] ?? outY[outY.length - 1];
      continue;
    }
    outX.push(xs[i]);
    outY.push(ys[i]);
  }
  return [outX, outY];
}

function renderChart() {
  const empty = $("[data-compare-empty]");
  const container = $("[data-compare-chart]");
  if (runs.length < 2) {
    empty.hidden = false;
    empty.textContent = runs.length ? "Choose at least one more run." : "Choose at least two runs.";
  } else empty.hidden = true;
  if (!runs.length) {
    container.replaceChildren();
    return;
  }
  const axis = $("[data-x-axis]").value;
  const { data, series } = buildChartData(axis, $("[data-show-val]").checked);
  if (!chart) {
    chart = new LineChart(container, { height: 360, xLabel: axis, yLabel: "loss", log: $("[data-log]").checked, spec: () => chart.currentSpec });
  }
  chart.xLabel = axis;
  chart.currentSpec = { series };
  chart.data = data;
  chart.rebuild();
  container.dataset.runs = String(runs.length);
  const thinned = runs.filter(({ points, total }) => total && points.length < total);
  const note = $("[data-compare-note]");
  note.hidden = thinned.length === 0;
  note.textContent = thinned.length
    ? `Downsampled for drawing (lowest and highest value of each stretch): ${thinned.map(({ job, points, total }) => `${jobLabel(job)} ${points.length} of ${total} points`).join(", ")}.`
    : "";
}

function fmt(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") {
    const text = JSON.stringify(value);
    return text.length > 40 ? `${text.slice(0, 37)}…` : text;
  }
  return String(value);
}

function renderDiff() {
  const table = $("[data-diff-table]");
  if (!runs.length) {
    table.replaceChildren();
    $("[data-same]").textContent = "";
    return;
  }
  const head = el("tr", {}, el("th", { scope: "col" }, "setting"));
  runs.forEach(({ job }, i) => {
    head.append(
      el("th", { scope: "col" },
        el("span", { class: "swatch", style: `background:${PALETTE[i % PALETTE.length]}`, "aria-hidden": "true" }),
        el("a", { href: `/jobs/${job.id}` }, jobLabel(job))),
    );
  });
  const rows = [];
  const same = [];
  const facts = {
    kind: (job) => job.kind,
    status: (job) => job.status,
    device: (job) => job.device,
    seed: (job) => job.seed,
  };
  const paramNames = [...new Set(runs.flatMap(({ job }) => Object.keys(job.params || {})))];
  const getters = [
    ...Object.entries(facts),
    ...paramNames.map((name) => [name, (job) => (job.params && name in job.params ? job.params[name] : undefined)]),
  ];
  for (const [name, get] of getters) {
    const values = runs.map(({ job }) => get(job));
    const differs = new Set(values.map((v) => JSON.stringify(v ?? null))).size > 1;
    if (!differs) {
      same.push(`${name} = ${fmt(values[0])}`);
      continue;
    }
    const row = el("tr", { class: "differs", dataset: { setting: name } }, el("th", { scope: "row" }, el("code", {}, name)));
    for (const value of values) row.append(el("td", {}, name === "status" ? statusBadge(value) : fmt(value)));
    rows.push(row);
  }
  const result = el("tr", {}, el("th", { scope: "row" }, "result"), ...runs.map(({ job }) => el("td", {}, keyResult(job) || "—")));
  const time = el("tr", {}, el("th", { scope: "row" }, "duration"), ...runs.map(({ job }) => el("td", {}, duration(elapsedMs(job)))));
  table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows, result, time));
  $("[data-same]").textContent = same.length ? `The same in all: ${same.join(", ")}.` : "";
  markScrolling($("[data-diff-scroll]"), $("[data-scroll-hint]"));
}

async function loadRuns(ids) {
  const loaded = await Promise.all(
    ids.map(async (id) => {
      try {
        const [job, history] = await Promise.all([api.getJob(id), api.metrics(id, { maxPoints: MAX_POINTS })]);
        return { job, points: rowsToPoints(history), total: history.total ?? job.progress?.step ?? null };
      } catch (error) {
        return { error: `${id}: ${error.message}` };
      }
    }),
  );
  const errors = loaded.filter((r) => r.error).map((r) => r.error);
  runs = loaded.filter((r) => !r.error);
  if (errors.length) {
    const note = $("[data-compare-note]");
    note.hidden = false;
    note.textContent = `Could not load ${errors.join("; ")}`;
  }
}

// The run picker: the newest runs (summaries), read when the server's event stream says so (its
// first connection, a reset) and when the kind filter changes, then kept current by the stream's
// job changes, updated in place so ticks and focus stay where they are. Nothing polls.
const PICKER_LIMIT = 100;
const pickRows = new Map(); // job id -> li
let pickerLoading = null;
let pickerAgain = false; // the kind changed while the list was read: read it again after
let pickerPending = []; // events that came while the list was read
function pickRow(job, chosen) {
  const label = el("label", { for: `pick-${job.id}` });
  return el("li", { dataset: { jobId: job.id } },
    el("input", { type: "checkbox", id: `pick-${job.id}`, name: "ids", value: job.id, checked: chosen.has(job.id) }),
    label);
}

function fillPickLabel(li, job) {
  li.querySelector("label").replaceChildren(`${jobLabel(job)} `, el("span", { class: "muted" }, `${job.kind}`), " ",
    statusBadge(job.status), " ", el("span", { class: "muted" }, keyResult(job)));
  li.dataset.status = job.status;
}

function pickerChosen() {
  return new Set([...root.querySelectorAll("[data-pick-list] input:checked")].map((i) => i.value).concat(selectedIds()));
}

async function renderPicker() {
  if (pickerLoading) {
    pickerAgain = true;
    return pickerLoading;
  }
  pickerLoading = (async () => {
    let page;
    try {
      page = await api.listJobs({ kind: $("[data-pick-kind]").value, limit: PICKER_LIMIT });
    } catch (error) {
      return;
    } finally {
      pickerLoading = null;
    }
    const list = $("[data-pick-list]");
    const chosen = pickerChosen();
    const seen = new Set();
    let previous = null;
    for (const job of page.items) {
      seen.add(job.id);
      let li = pickRows.get(job.id);
      if (!li) {
        li = pickRow(job, chosen);
        pickRows.set(job.id, li);
      }
      fillPickLabel(li, job);
      const expectedNext = previous ? previous.nextSibling : list.firstChild;
      if (expectedNext !== li) list.insertBefore(li, expectedNext);
      previous = li;
    }
    for (const [id, li] of pickRows) {
      if (!seen.has(id)) {
        li.remove();
        pickRows.delete(id);
      }
    }
    const events = pickerPending;
    pickerPending = [];
    for (const [type, data] of events) pickerApply(type, data);
    pickerUpdated();
  })();
  const loaded = pickerLoading;
  await loaded;
  if (pickerAgain) {
    pickerAgain = false;
    return renderPicker();
  }
}

function pickerUpdated() {
  const list = $("[data-pick-list]");
  list.querySelector("[data-empty]")?.remove();
  if (!pickRows.size) list.append(el("li", { class: "muted", dataset: { empty: "" } }, "No runs yet. Train some first."));
  list.dataset.updated = String(Date.now());
}

// A job change from the server's stream, applied to the picker.
function pickerApply(type, data) {
  const li = pickRows.get(data.id);
  const kind = $("[data-pick-kind]").value;
  if (type === "created" && !li && (!kind || data.kind === kind)) {
    const row = pickRow(data, pickerChosen());
    fillPickLabel(row, data);
    pickRows.set(data.id, row);
    $("[data-pick-list]").prepend(row);
    // The list is newest first: the one to drop is its last row (not the Map's last entry, which
    // is the run just added).
    const rows = [...$("[data-pick-list]").querySelectorAll("li[data-job-id]")];
    while (pickRows.size > PICKER_LIMIT && rows.length) {
      const oldestLi = rows.pop();
      oldestLi.remove();
      pickRows.delete(oldestLi.dataset.jobId);
    }
  } else if (type === "status" && li) fillPickLabel(li, data);
  else if (type === "deleted" && li) {
    li.remove();
    pickRows.delete(data.id);
  }
}

function onPickerEvent(type, data) {
  if (pickerLoading) pickerPending.push([type, data]);
  else {
    pickerApply(type, data);
    pickerUpdated();
  }
}

// A compared run that changes (its points, its status) redraws the view, at most every REFRESH_MS.
function comparedChanged(id) {
  if (refresh || !runs.some(({ job }) => job.id === id)) return;
  refresh = setTimeout(() => show({ quiet: true }), REFRESH_MS);
}

async function show({ quiet = false } = {}) {
  clearTimeout(refresh);
  refresh = null;
  const ids = selectedIds();
  if (ids.length && !quiet) {
    $("[data-compare-empty]").hidden = false;
    $("[data-compare-empty]").textContent = `Loading ${ids.length} run${ids.length === 1 ? "" : "s"}…`;
  }
  await loadRuns(ids);
  renderChart();
  renderDiff();
  // Runs still queued or training (a sweep from the start page): their curves grow on this view too.
  const going = runs.filter(({ job }) => !isTerminal(job.status)).length;
  const note = $("[data-compare-live]");
  note.hidden = !going;
  note.textContent = going ? `${going} of these runs ${going === 1 ? "is" : "are"} still going: this view updates as they train.` : "";
  root.dataset.ready = "true";
}

$("[data-picker]").addEventListener("submit", (event) => {
  event.preventDefault();
  const ids = [...root.querySelectorAll("[data-pick-list] input:checked")].map((i) => i.value);
  history.pushState(null, "", `/compare?ids=${ids.join(",")}`);
  root.dataset.ready = "false";
  show();
});
$("[data-pick-kind]").addEventListener("change", renderPicker);
onServerEvents({
  reload: () => {
    renderPicker();
    if (runs.some(({ job }) => !isTerminal(job.status))) show({ quiet: true });
  },
  connection: (state) => state === "reopening" && !pickRows.size && renderPicker(),
  created: (job) => onPickerEvent("created", job),
  status: (job) => {
    onPickerEvent("status", job);
    comparedChanged(job.id);
  },
  progress: (change) => comparedChanged(change.id),
  deleted: (change) => onPickerEvent("deleted", change),
});
$("[data-log]").addEventListener("change", (event) => chart?.setLog(event.target.checked));
$("[data-show-val]").addEventListener("change", renderChart);
$("[data-x-axis]").addEventListener("change", renderChart);
window.addEventListener("popstate", show);

show();
