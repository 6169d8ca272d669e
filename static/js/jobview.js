// The live view of one run (/jobs/{id}): status and progress, the loss (and accuracy) curves as
// points arrive over SSE, why it diverged and a one-click retry, what the model learned, a
// prediction box, and the downloads.

import { api, ApiError, wireDownload } from "./api.js";
import { COLORS, LineChart, VAL_DASH, withAlpha } from "./charts.js";
import { renderConfusion, renderPerClass, renderSamples } from "./cifarview.js";
import { LossSurfaceMap } from "./contour.js";
import { FitChart } from "./fitview.js";
import { shareQuery } from "./form.js";
import { duration, el, elapsedMs, isTerminal, jobLabel, num, percent, statusBadge } from "./format.js";
import "./header.js";
import { MetricStore, rowsToPoints } from "./metrics.js";
import { JobStream } from "./stream.js";
import { mountImagePredict, mountNumberPredict } from "./tryit.js";

// Above this many steps the history is fetched min/max-downsampled (to HISTORY_POINTS rows), and
// live points are appended at full resolution. `?history_limit=N` on the page's address lowers
// both to N (to see the downsampled view on a short run).
const pageQuery = new URLSearchParams(location.search);
const FULL_HISTORY_LIMIT = Number(pageQuery.get("history_limit")) || 20_000;
const HISTORY_POINTS = Math.min(4_000, FULL_HISTORY_LIMIT);

const root = document.getElementById("job-view");
const jobId = root.dataset.jobId;
const $ = (selector) => root.querySelector(selector);

const store = new MetricStore();
let job = null;
let kinds = null;
let smoothingOn = false;
let lossChart = null;
let accuracyChart = null;
let fitChart = null;
let surface = null;
let resultShown = false;
let tick = null;

// ---- header ---------------------------------------------------------------------------------

function renderHeader() {
  $("[data-job-title]").textContent = jobLabel(job);
  document.title = `${jobLabel(job)} · PyTorch Playground`;
  const badge = statusBadge(job.status);
  $("[data-status]").replaceChildren(badge);
  root.dataset.status = job.status;
  $("[data-job-meta]").textContent = `${job.kind} · device ${job.device ?? "auto"} · seed ${job.seed ?? "–"} · id ${job.id}`;
  $("[data-cancel]").hidden = isTerminal(job.status);
  renderProgress();
}

function renderProgress() {
  const progress = job.progress || {};
  const latest = store.latest();
  const epoch = Math.max(progress.epoch ?? 0, latest ? (store.accEpochs.at(-1) ?? 0) : 0);
  const epochs = progress.epochs ?? job.params?.epochs;
  const step = Math.max(progress.step ?? 0, latest?.step ?? 0);
  const shownEpoch = job.kind === "cifar" ? epoch : Math.max(epoch, step);
  const bar = $("[data-progress]");
  if (epochs) {
    bar.max = epochs;
    bar.value = job.status === "succeeded" ? epochs : Math.min(shownEpoch, epochs);
  }
  const elapsed = elapsedMs(job);
  const parts = [];
  if (job.status === "queued") parts.push("waiting for a worker");
  else if (epochs) parts.push(`epoch ${shownEpoch} of ${epochs}`);
  if (elapsed !== null) parts.push(`${duration(elapsed)} elapsed`);
  if (elapsed && step) parts.push(`${num(step / (elapsed / 1000), 3)} steps/s`);
  $("[data-progress-text]").textContent = parts.join(" · ");
}

function showConnection(state) {
  const node = $("[data-connection]");
  node.dataset.state = state;
  node.textContent = { connecting: "connecting…", live: "● live", reconnecting: "reconnecting…", reopening: "reconnecting…", closed: "" }[state] ?? "";
}

// ---- problems and retries -------------------------------------------------------------------

function retryButton(label, change) {
  return el(
    "button",
    {
      type: "button",
      class: "primary",
      onclick: async (event) => {
        event.target.disabled = true;
        try {
          const params = { ...job.params, ...change };
          const suffix = Object.entries(change).map(([k, v]) => `${k}=${v}`).join(", ");
          const created = await api.createJob({
            kind: job.kind,
            params,
            device: job.device ?? "auto",
            seed: job.seed,
            name: `${jobLabel(job)} · ${suffix}`.slice(0, 200),
          });
          location.href = `/jobs/${created.id}`;
        } catch (error) {
          event.target.disabled = false;
          $("[data-problem-advice]").textContent = error.message;
        }
      },
    },
    label,
  );
}

function renderProblem() {
  const box = $("[data-problem]");
  const buttons = $("[data-retry-buttons]");
  const params = job.params || {};
  if (job.status === "diverged") {
    $("[data-problem-title]").textContent = "Training diverged";
    $("[data-problem-message]").textContent = job.error || "The loss stopped being a finite number.";
    $("[data-problem-advice]").textContent =
      "Each update overshot the minimum by more than the one before, so the loss grew without bound " +
      "(look at the log-scale loss and, for the line fit, the path over the loss surface). " +
      "A smaller learning rate takes smaller steps; inputs scaled to about 1 make the gradients of w " +
      "and b similar in size, so one learning rate suits both.";
    const lr = params.lr;
    const retries = [];
    if (typeof lr === "number") retries.push(retryButton(`Retry with lr ÷ 10 (lr = ${num(lr / 10)})`, { lr: Number((lr / 10).toPrecision(6)) }));
    if (typeof params.input_scale === "number") {
      const scale = params.input_scale > 0.1 ? 0.1 : Number((params.input_scale / 10).toPrecision(6));
      retries.push(retryButton(`Retry with input scaling (input_scale = ${scale})`, { input_scale: scale }));
    }
    buttons.replaceChildren(...retries);
    box.hidden = false;
  } else if (job.status === "failed" || job.status === "interrupted") {
    $("[data-problem-title]").textContent = job.status === "failed" ? "The run failed" : "The run was interrupted";
    $("[data-problem-message]").textContent = job.error || (job.status === "interrupted" ? "The server stopped while it ran." : "");
    $("[data-problem-advice]").textContent = "";
    buttons.replaceChildren(retryButton("Run it again", {}));
    box.hidden = false;
  } else {
    box.hidden = true;
  }
}

// ---- charts ---------------------------------------------------------------------------------

function lossSpec() {
  const series = [
    { label: "train loss", stroke: smoothingOn ? withAlpha(COLORS.train, 0.3) : COLORS.train, width: smoothingOn ? 1 : 2 },
  ];
  const hasVal = store.hasVal();
  if (hasVal) {
    series.push({ label: "val loss", stroke: smoothingOn ? withAlpha(COLORS.val, 0.35) : COLORS.val, width: smoothingOn ? 1 : 2, dash: VAL_DASH });
  }
  if (smoothingOn) {
    series.push({ label: "train (smoothed)", stroke: COLORS.train, width: 2.5 });
    if (hasVal) series.push({ label: "val (smoothed)", stroke: COLORS.val, width: 2.5, dash: VAL_DASH });
  }
  return { series };
}

function lossData() {
  const hasVal = store.hasVal();
  const columns = [store.steps, store.train];
  if (hasVal) columns.push(store.val);
  if (smoothingOn) {
    columns.push(store.smoothTrain);
    if (hasVal) columns.push(store.smoothVal);
  }
  return columns;
}

let chartHasVal = false;
function updateCharts() {
  if (store.hasVal() !== chartHasVal) {
    chartHasVal = store.hasVal();
    lossChart.data = lossData();
    lossChart.rebuild();
  } else {
    lossChart.setData(lossData());
  }
  if (store.accEpochs.length) {
    if (!accuracyChart) {
      $("[data-accuracy-panel]").hidden = false;
      accuracyChart = new LineChart($("[data-accuracy-chart]"), {
        height: 240,
        xLabel: "epoch",
        yLabel: "accuracy",
        spec: () => ({
          series: [
            { label: "train acc", stroke: COLORS.train, points: { show: true, size: 6 } },
            { label: "val acc", stroke: COLORS.val, dash: VAL_DASH, points: { show: true, size: 6, fill: "#fff" } },
          ],
          yRange: [0, 1],
        }),
      });
    }
    accuracyChart.setData([store.accEpochs, store.trainAcc, store.valAcc]);
  }
  if (surface && store.hasW) surface.setPath(store.w, store.b);
  if (fitChart && job.kind === "linear" && !resultShown) {
    const wb = store.latestWB();
    const scale = job.params?.input_scale ?? 1;
    if (wb) fitChart.setLine(wb.w * scale, wb.b);
  }
  renderProgress();
}

function wireChartControls() {
  $("[data-log]").addEventListener("change", (event) => lossChart.setLog(event.target.checked));
  const slider = $("[data-smoothing]");
  slider.addEventListener("input", () => {
    const alpha = Number(slider.value);
    $("[data-smoothing-value]").textContent = alpha.toFixed(2);
    store.setAlpha(alpha);
    const on = alpha > 0;
    if (on !== smoothingOn) {
      smoothingOn = on;
      lossChart.data = lossData();
      lossChart.rebuild();
    } else lossChart.setData(lossData());
  });
  const reset = $("[data-reset-zoom]");
  reset.addEventListener("click", () => lossChart.resetZoom());
  $("[data-loss-chart]").addEventListener("zoomchange", (event) => (reset.disabled = !event.detail));
}

function showDownsampleNote() {
  const note = $("[data-downsampled]");
  const d = store.downsampled;
  if (!d) {
    note.hidden = true;
    return;
  }
  const from = store.steps[store.fullFrom];
  note.replaceChildren(
    `This run has ${d.total.toLocaleString()} points; the history is shown downsampled to ${d.shown.toLocaleString()} (the lowest and highest value of each stretch), `,
    from !== undefined
      ? `and at full resolution from step ${from}. Smoothing starts there, since an average over thinned-out points would be wrong. `
      : "so smoothing has no full-resolution points to work on. ",
    el("button", { type: "button", class: "small", onclick: loadFullHistory }, "Load every point"),
  );
  note.hidden = false;
}

async function loadFullHistory() {
  const note = $("[data-downsampled]");
  note.textContent = "Loading every point…";
  const fresh = new MetricStore();
  fresh.loadHistory(rowsToPoints(await api.metrics(jobId)));
  fresh.append(store.pointsAfter(fresh.lastStep, fresh.lastAccEpoch)); // live points the fetch missed
  Object.assign(store, fresh, { alpha: store.alpha });
  store.setAlpha(store.alpha);
  showDownsampleNote();
  lossChart.data = lossData();
  lossChart.rebuild();
  updateCharts();
}

// ---- what the model learned -----------------------------------------------------------------

function mountLearned() {
  const box = $("[data-learned]");
  if (job.kind === "linear") {
    box.replaceChildren(
      el("div", { class: "two-columns" },
        el("figure", {},
          el("div", { class: "chart", dataset: { fitChart: "" } }),
          el("p", { class: "notice info small", dataset: { fitPlaceholder: "" }, hidden: true }),
          el("figcaption", {}, "The data and the line t_c = w · (input_scale · t_u) + b with the current w and b.")),
        el("figure", {},
          el("div", { class: "surface", dataset: { surface: "" } }),
          el("figcaption", {}, el("span", { dataset: { surfaceReadout: "" }, "aria-live": "off" }), el("br"),
            "Loss over (w, b); bands are equal steps of log(loss − minimum). The white path is the parameters, epoch by epoch: a learning rate that is too large zig-zags across the valley or flies off.")),
      ),
    );
    fitChart = new FitChart(box.querySelector("[data-fit-chart]"), { fitLabel: "fitted line", placeholder: box.querySelector("[data-fit-placeholder]") });
    surface = new LossSurfaceMap(box.querySelector("[data-surface]"), box.querySelector("[data-surface-readout]"));
    fitChart.setPoints([], []);
  } else if (job.kind === "mlp") {
    box.replaceChildren(
      el("figure", {},
        el("div", { class: "chart", dataset: { fitChart: "" } }),
        el("p", { class: "notice info small", dataset: { fitPlaceholder: "" }, hidden: true }),
        el("figcaption", { dataset: { fitCaption: "" } }, "The data; the network's output is drawn as it trains.")),
    );
    fitChart = new FitChart(box.querySelector("[data-fit-chart]"), { fitLabel: "network output", placeholder: box.querySelector("[data-fit-placeholder]") });
  } else if (job.kind === "cifar") {
    box.replaceChildren(el("p", { class: "muted" }, "The confusion matrix, the accuracy per class and sample predictions appear when training ends."));
  }
  showDataPoints();
}

// A picture of the model while it trains: for mlp, the network's output over the input range; for
// cifar, after each epoch, where its test predictions land (the result adds the images).
function showSnapshot(picture) {
  if (resultShown) return;
  if (job.kind === "mlp" && picture.curve) {
    fitChart.setCurve(picture.curve, { live: true });
    root.querySelector("[data-fit-caption]").textContent =
      `The data and the network's output at epoch ${picture.epoch.toLocaleString()} (it is redrawn as it trains).`;
  } else if (job.kind === "cifar" && picture.confusion_matrix && picture.per_class_acc) {
    const live = { classes: Object.keys(picture.per_class_acc), confusion_matrix: picture.confusion_matrix, per_class_acc: picture.per_class_acc };
    showClassifier(
      el("p", { dataset: { snapshotCaption: "" } },
        `After epoch ${picture.epoch} of ${job.params?.epochs ?? "?"}, on the test images; redrawn after each epoch. Example images and sample predictions come when training ends.`),
      live,
    );
  }
}

// What a CIFAR classifier does with the test images: the confusion matrix and the accuracy per
// class (after an epoch, or the result, which also has sample predictions).
function showClassifier(intro, report) {
  const box = $("[data-learned]");
  const detail = el("div", { class: "cell-detail", hidden: true, "aria-live": "polite", dataset: { cellDetail: "" } });
  box.replaceChildren(
    intro,
    el("div", { class: "two-columns" },
      el("div", {}, el("h3", {}, "Confusion matrix"), el("div", { dataset: { confusion: "" } }), detail),
      el("div", {}, el("h3", {}, "Accuracy per class"), el("div", { dataset: { perClass: "" } }))),
  );
  renderConfusion(box.querySelector("[data-confusion]"), detail, report);
  renderPerClass(box.querySelector("[data-per-class]"), report);
  if ("samples" in report) { // the result's (null when no epoch finished), not an epoch's
    box.append(el("h3", {}, "Sample predictions"), el("div", { dataset: { samples: "" } }));
    renderSamples(box.querySelector("[data-samples]"), report);
  }
}

// The points being fitted, drawn from the start: the run's own data, or the book's (which
// /api/kinds gives, so this runs again when that answer comes). The result replaces them with
// the run's split into training and validation points.
function showDataPoints() {
  if (!fitChart || resultShown) return;
  const points = job.params?.data ?? kinds?.find((k) => k.kind === job.kind)?.default_data;
  if (!points?.length) return;
  const split = (job.params?.val_fraction ?? 0) > 0;
  fitChart.setPoints(points, [], split ? "data points" : "training points");
  if (surface) surface.setData(points, job.params?.input_scale ?? 1);
}

function showResult() {
  const result = job.result;
  if (!result || resultShown) return;
  resultShown = true;
  if (job.kind === "linear") {
    fitChart.setPoints(result.train_points, result.val_points);
    if (result.slope != null && result.intercept != null) fitChart.setLine(result.slope, result.intercept);
    surface.setData(result.train_points, result.input_scale ?? job.params.input_scale ?? 1);
  } else if (job.kind === "mlp") {
    fitChart.setPoints(result.train_points, result.val_points);
    fitChart.setCurve(result.curve);
    root.querySelector("[data-fit-caption]").textContent = "The data and the network's output over the input range.";
  } else if (job.kind === "cifar") {
    showClassifier(el("p", {}, `Validation accuracy ${percent(result.val_acc)}, training accuracy ${percent(result.train_acc)}.`), result);
  }
}

function mountTryIt() {
  // Diverged weights are not finite numbers: nothing worth asking them.
  if (!job.has_model || job.status === "diverged" || !job.result) return;
  const panel = $("[data-tryit-panel]");
  if (!panel.hidden) return;
  panel.hidden = false;
  if (job.kind === "cifar") mountImagePredict($("[data-tryit]"), jobId);
  else mountNumberPredict($("[data-tryit]"), jobId);
}

// ---- settings and downloads -----------------------------------------------------------------

function renderSettings() {
  const table = $("[data-params]");
  table.replaceChildren(el("caption", { class: "visually-hidden" }, "Parameters of this run"));
  for (const [name, value] of Object.entries(job.params || {})) {
    let shown = value === null ? "— (default)" : typeof value === "object" ? JSON.stringify(value) : String(value);
    if (shown.length > 80) shown = `${shown.slice(0, 77)}…`;
    table.append(el("tr", {}, el("th", { scope: "row" }, el("code", {}, name)), el("td", {}, shown)));
  }
  const defaults = kinds?.find((k) => k.kind === job.kind)?.defaults ?? {};
  const query = shareQuery(job.kind, job.params || {}, defaults, { seed: job.seed, name: job.name });
  $("[data-edit-link]").href = `/?${query}`;
  $("[data-compare-link]").href = `/compare?ids=${job.id}`;
  renderDownloads();
}

function renderDownloads() {
  const list = $("[data-downloads]");
  const items = [
    el("li", {}, el("a", { href: api.metricsUrl(jobId, "csv"), download: `${jobId}-metrics.csv` }, "Metrics (CSV)")),
    el("li", {}, el("a", { href: api.metricsUrl(jobId, "json"), download: `${jobId}-metrics.json` }, "Metrics (JSON)")),
  ];
  if (job.has_model) {
    items.push(el("li", {}, el("a", { href: api.modelUrl(jobId), download: `${jobId}.pt`, dataset: { modelLink: "" } }, "Trained weights (.pt, torch.load)")));
  }
  list.replaceChildren(...items);
  for (const link of list.querySelectorAll("a")) wireDownload(link);
}

// ---- the life of the page -------------------------------------------------------------------

function onJob(updated) {
  // An answer that left the server before the job ended (a slow cancel reply) must not bring a
  // finished job back to life: a run's status only moves forward.
  if (job && isTerminal(job.status) && !isTerminal(updated.status)) return;
  const statusChanged = !job || updated.status !== job.status;
  job = { ...job, ...updated };
  renderHeader();
  if (statusChanged) {
    renderProblem();
    renderDownloads();
    if (job.status === "diverged" && lossChart && !$("[data-log]").checked) {
      $("[data-log]").checked = true;
      lossChart.setLog(true);
    }
  }
  if (isTerminal(job.status)) {
    clearInterval(tick);
    showResult();
    mountTryIt();
  }
}

// The points so far, from /metrics; returns the id of the newest event they include.
async function loadHistory() {
  const steps = job.progress?.step ?? 0;
  let history;
  if (steps > FULL_HISTORY_LIMIT) {
    history = await api.metrics(jobId, { maxPoints: HISTORY_POINTS });
    const points = rowsToPoints(history);
    const total = history.total ?? steps;
    store.loadHistory(points, points.length < total ? { shown: points.length, total } : null);
  } else {
    history = await api.metrics(jobId);
    store.loadHistory(rowsToPoints(history));
  }
  showDownsampleNote();
  if (history.snapshot && !isTerminal(job.status)) showSnapshot(history.snapshot); // the result will say more
  return history.last_event_id ?? null;
}

async function main() {
  try {
    job = await api.getJob(jobId);
  } catch (error) {
    const message = error instanceof ApiError && error.status === 404 ? `There is no run with id ${jobId}; it may have been deleted.` : error.message;
    root.replaceChildren(el("h1", {}, "Run not found"), el("p", {}, message), el("p", {}, el("a", { href: "/" }, "Start a new run")));
    return;
  }
  api.kinds().then((list) => {
    kinds = list;
    renderSettings();
    showDataPoints();
  }, () => renderSettings());
  renderHeader();
  renderProblem();
  renderSettings();
  // A diverged loss spans dozens of orders of magnitude: only a log axis shows its growth.
  const startLog = job.status === "diverged";
  $("[data-log]").checked = startLog;
  lossChart = new LineChart($("[data-loss-chart]"), { height: 320, xLabel: "step", yLabel: "loss", spec: lossSpec, log: startLog });
  wireChartControls();
  mountLearned();

  // The history first, then the live events after its last one: a long run's points come once.
  let covered = await loadHistory();
  if (!isTerminal(job.status)) {
    // The job as of that history (a status it reached meanwhile is not in the events after it);
    // one that ended meanwhile gets its last points too, and no stream.
    const now = await api.getJob(jobId);
    if (isTerminal(now.status)) {
      job = { ...job, progress: now.progress };
      covered = await loadHistory();
    }
    onJob(now);
  }
  let stream = null;
  if (!isTerminal(job.status)) {
    stream = new JobStream(api.eventsUrl(jobId), {
      status: onJob,
      metric: (points) => {
        if (store.append(points)) updateCharts(); // duplicates (by step) are dropped
      },
      snapshot: showSnapshot,
      done: (final) => {
        onJob(final);
        updateCharts();
      },
      connection: showConnection,
    }, covered);
    $("[data-cancel]").addEventListener("click", async (event) => {
      event.target.disabled = true;
      try {
        // The stream brings the cancelled status; the reply only says the request was taken.
        await api.cancelJob(jobId);
      } catch (error) {
        $("[data-progress-text]").textContent = error.message;
      }
      event.target.disabled = false;
    });
    tick = setInterval(renderProgress, 1000);
  }
  chartHasVal = store.hasVal();
  lossChart.data = lossData();
  lossChart.rebuild();
  updateCharts();
  if (isTerminal(job.status)) onJob(job);
  // Hooks for the browser tests (and the curious): the store, the stream, the charts.
  window.playgroundJob = { store, stream, lossChart, get job() { return job; } };
  root.dataset.ready = "true";
}

main();
