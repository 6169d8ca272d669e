// Compare: the loss (and accuracy) curves of two or more runs on one chart (their min/max-downsampled
// histories), the settings in which they differ, and one CSV of all their metrics. Runs that differ
// only in their seed are one mean curve in a min–max band with the spread of their final metrics
// (bands.js); runs that differ in one numeric parameter get a chart of their result against it
// (sweep.js); the curves themselves are comparecurves.js's.

import { api, wireDownload } from "./api.js";
import { BandChart, meanSd, seedGroups } from "./bands.js";
import { PALETTE } from "./charts.js";
import { ACCURACY_CURVES, chartSeries, clipDiverged, groupLabel, LOSS_CURVES, runCurves } from "./comparecurves.js";
import { duration, el, elapsedMs, isTerminal, jobLabel, keyResult, markScrolling, num, percent, statusBadge } from "./format.js";
import "./header.js";
import { rowsToPoints } from "./metrics.js";
import { RaceView } from "./racesurface.js";
import { onServerEvents } from "./serverevents.js";
import { SweepView, sweepParam } from "./sweep.js";

const MAX_POINTS = 2000; // per run: plenty for a chart, and fast with many runs
const root = document.getElementById("compare-view");
const $ = (selector) => root.querySelector(selector);

let runs = []; // [{job, points}]
let chart = null;
let accChart = null;
const sweep = new SweepView($("[data-sweep]"));
const race = new RaceView($("[data-race]")); // line fits over the same points: their paths on one loss surface
let refresh = null; // a compared run changed: the view reloads REFRESH_MS later (once for many changes)
const REFRESH_MS = 2000;

function selectedIds() {
  const ids = new URLSearchParams(location.search).get("ids");
  return ids ? ids.split(",").filter(Boolean) : [];
}

// The loss chart (and the accuracy chart, when a run has accuracies): a line per run, or a mean
// and band per group of runs that differ only in their seed; diverged runs clipped and marked.
function renderChart() {
  const empty = $("[data-compare-empty]");
  const container = $("[data-compare-chart]");
  if (runs.length < 2) {
    empty.hidden = false;
    empty.textContent = runs.length ? "Choose at least one more run." : "Choose at least two runs.";
  } else empty.hidden = true;
  if (!runs.length) {
    container.replaceChildren();
    $("[data-compare-acc-panel]").hidden = true;
    return;
  }
  const axis = $("[data-x-axis]").value;
  const alpha = Number($("[data-smoothing]").value);
  const curves = runs.map((run) => runCurves(run, axis, alpha));
  const clipped = clipDiverged(runs, curves, axis);
  const grouped = $("[data-bands]").checked;
  const families = $("[data-show-val]").checked ? LOSS_CURVES : LOSS_CURVES.filter(({ key }) => key !== "val");
  const loss = chartSeries(runs, curves, families, { grouped });
  $("[data-bands-row]").hidden = !seedGroups(runs).length;
  if (!chart) {
    chart = new BandChart(container, { height: 360, xLabel: axis, yLabel: "loss", log: $("[data-log]").checked, wholeX: axis === "step", spec: () => chart.currentSpec });
  }
  drawInto(chart, loss, axis === "time" ? "time (s)" : axis);
  chart.setMarkers(clipped.filter(({ x }) => x !== null).map(({ index, step, x }) => ({ x, label: `${jobLabel(runs[index].job)} diverged at step ${step}`, color: "#b42318" })));
  container.dataset.runs = String(runs.length);
  container.dataset.groups = String(loss.groups.length);
  renderClipNote(clipped);
  renderAccuracy(curves, axis, grouped);
  const thinned = runs.filter(({ points, total }) => total && points.length < total);
  const note = $("[data-compare-note]");
  note.hidden = thinned.length === 0;
  note.textContent = thinned.length
    ? `Downsampled for drawing (lowest and highest value of each stretch): ${thinned.map(({ job, points, total }) => `${jobLabel(job)} ${points.length} of ${total} points`).join(", ")}.`
    : "";
}

function drawInto(target, { tables, series, bands }, xLabel) {
  target.xLabel = xLabel;
  target.wholeX = xLabel === "step";
  target.currentSpec = { series, bands };
  target.data = tables.length ? uPlot.join(tables) : [[]];
  target.rebuild();
}

function renderClipNote(clipped) {
  const note = $("[data-clip-note]");
  const shown = clipped.filter(({ ceiling }) => ceiling !== null);
  note.hidden = !shown.length;
  note.textContent = shown.length
    ? `Diverged: ${shown.map(({ index, step }) => `${jobLabel(runs[index].job)} (at step ${step})`).join(", ")}. ` +
      `Its loss above ${num(shown[0].ceiling)} (twice the highest of the other runs) is left out of the chart, so that the others stay readable.`
    : "";
}

function renderAccuracy(curves, axis, grouped) {
  const panel = $("[data-compare-acc-panel]");
  const has = curves.some((c) => c.trainAcc || c.valAcc);
  panel.hidden = !has;
  if (!has) return;
  const acc = chartSeries(runs, curves, ACCURACY_CURVES, { grouped });
  if (!accChart) {
    accChart = new BandChart($("[data-compare-acc-chart]"), { height: 260, xLabel: axis, yLabel: "accuracy", spec: () => accChart.currentSpec });
  }
  drawInto(accChart, acc, axis === "time" ? "time (s)" : axis);
}

// The spread of the final metrics of each group of runs that differ only in their seed.
function renderSpread() {
  const groups = seedGroups(runs);
  const panel = $("[data-spread-panel]");
  panel.hidden = !groups.length;
  if (!groups.length) return;
  const metrics = SPREAD_METRICS.filter(({ key }) => groups.some((group) => group.runs.some(({ job }) => job.result?.[key] != null)));
  const head = el("tr", {}, el("th", { scope: "col" }, "runs"), el("th", { scope: "col" }, "seeds"),
    ...metrics.map(({ label }) => el("th", { scope: "col" }, `final ${label}`)));
  const rows = groups.map((group) => el("tr", { dataset: { group: group.runs.map(({ job }) => job.id).join(",") } },
    el("th", { scope: "row" }, groupLabel(group)),
    el("td", {}, group.runs.map(({ job }) => job.seed).join(", ")),
    ...metrics.map(({ key, format }) => {
      const spread = meanSd(group.runs.map(({ job }) => job.result?.[key] ?? null));
      if (!spread) return el("td", { dataset: { metric: key } }, "–");
      const partial = spread.n < group.runs.length ? ` (${spread.n} of ${group.runs.length})` : "";
      return el("td", { dataset: { metric: key, mean: String(spread.mean), sd: String(spread.sd), n: String(spread.n) } },
        `${format(spread.mean)} ± ${format(spread.sd)}${partial}`);
    })));
  $("[data-spread-table]").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
}

const SPREAD_METRICS = [
  { key: "train_loss", label: "train loss", format: num },
  { key: "val_loss", label: "val loss", format: num },
  { key: "train_acc", label: "train acc", format: percent },
  { key: "val_acc", label: "val acc", format: percent },
];

function renderSweep() {
  const name = runs.length >= 2 ? sweepParam(runs) : null;
  if (!name) return sweep.hide();
  sweep.show(runs, name, { logY: $("[data-log]").checked });
}

function renderDownload() {
  const link = $("[data-compare-csv]");
  link.hidden = !runs.length;
  link.href = `/api/compare/metrics.csv?ids=${runs.map(({ job }) => job.id).join(",")}`;
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
  renderSpread();
  renderSweep();
  race.show(runs);
  renderDownload();
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
$("[data-log]").addEventListener("change", (event) => {
  chart?.setLog(event.target.checked);
  renderSweep();
});
$("[data-show-val]").addEventListener("change", renderChart);
$("[data-x-axis]").addEventListener("change", renderChart);
$("[data-bands]").addEventListener("change", renderChart);
$("[data-smoothing]").addEventListener("input", (event) => {
  $("[data-smoothing-value]").textContent = event.target.value;
  renderChart();
});
wireDownload($("[data-compare-csv]"));
window.addEventListener("popstate", show);

show();
