// The live view of one run (/jobs/{id}): status and progress, the loss (and accuracy) curves as
// points arrive over SSE, why it diverged and a one-click retry, what the model learned, a
// prediction box, and the downloads. Beside the charts, the run's controls (pause, resume, step,
// cancel, its live parameters, each change marked on the charts) and a fork from any step.

import { api, ApiError, wireDownload } from "./api.js";
import { COLORS, LineChart, VAL_DASH, withAlpha } from "./charts.js";
import { CodePanel } from "./codeview.js";
import { INLINE_CHARS } from "./datapoints.js";
import { finderSummary, renderFinder } from "./finderview.js";
import { renderConfusion, renderPerClass, renderSamples } from "./cifarview.js";
import { LossSurfaceMap } from "./contour.js";
import { FitChart } from "./fitview.js";
import { HistogramPanel } from "./histview.js";
import { ForkPanel } from "./forkform.js";
import { changeLabel, indexAtStep, loadParentLine, mergeChanges, withParentColumns } from "./lineage.js";
import { shareQuery } from "./form.js";
import { duration, el, elapsedMs, isTerminal, jobLabel, mayChange, num, percent, statusBadge, variantName } from "./format.js";
import { onSignedIn } from "./header.js";
import { editInPlace, NAME_MAX, NOTES_MAX, saveLabel } from "./labels.js";
import { MetricStore, rowsToPoints } from "./metrics.js";
import { formDefaults } from "./presets.js";
import { Replay } from "./replay.js";
import { loadPrevious, RerunPanel, withOverlayColumns } from "./rerun.js";
import { RunControls } from "./runcontrols.js";
import { RunPreview } from "./runpreview.js";
import { JobStream } from "./stream.js";
import { mountImagePredict, mountNumberPredict } from "./tryit.js";
import { renderHiddenUnits } from "./unitsview.js";
import { bestValidation, verdict } from "./verdict.js";

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
let runPreview = null; // the start page's preview of a line fit, faint under its path on the surface
let resultShown = false;
let tick = null;
let stream = null;
let covered = null; // the id of the newest event the page has (history or stream)
let controls = null;
let fork = null;
let received = []; // live changes from `control` events, until the job's `changes` list them
let parent = null; // a fork's parent line up to the fork step: {steps, train, val}
let replay = null;
let histograms = null; // weights and gradients over time (mlp, cifar)
let rerun = null;
let previous = null; // `?previous=<id>`: the run this one was edited from, drawn faintly underneath
const previousId = pageQuery.get("previous");
let viewer = null; // who reads the page (GET /api/me): a student renames only their own runs
let verdictAt = 0; // when the verdict was last written (it is rewritten at most 4 times a second while points arrive)

// ---- header ---------------------------------------------------------------------------------

function renderHeader() {
  renderLabel();
  const badge = statusBadge(job.status);
  $("[data-status]").replaceChildren(badge);
  root.dataset.status = job.status;
  $("[data-job-meta]").textContent = `${job.kind} · device ${job.device ?? "auto"} · seed ${job.seed ?? "–"} · id ${job.id}`;
  renderLineage();
  controls?.update(job);
  fork?.update(job);
  renderProgress();
}

// The name in the title and the notes under it, each editable in place by whoever may change the
// run (PATCH /api/jobs/{id}/label; other tabs' lists hear of it from the server's stream).
function renderLabel() {
  const title = $("[data-job-title]");
  if (!title.hidden) title.textContent = jobLabel(job);
  document.title = `${jobLabel(job)} · PyTorch Playground`;
  const notes = $("[data-notes]");
  const editingNotes = Boolean(root.querySelector("[data-notes-editor]"));
  if (!editingNotes) {
    notes.textContent = job.notes ?? "";
    notes.hidden = !job.notes;
  }
  const may = mayChange(job, viewer);
  $("[data-rename]").hidden = !may || title.hidden;
  $("[data-rename]").setAttribute("aria-label", `Rename ${jobLabel(job)}`);
  const editNotes = $("[data-edit-notes]");
  editNotes.hidden = !may || editingNotes;
  editNotes.textContent = job.notes ? "Edit the note" : "Add a note";
}

function wireLabel() {
  const title = $("[data-job-title]");
  const rename = $("[data-rename]");
  rename.addEventListener("click", () => {
    editInPlace(title, {
      value: job.name ?? "",
      label: "The run's name",
      maxLength: NAME_MAX,
      save: async (name) => {
        const saved = await saveLabel(jobId, { name: name || null });
        job = { ...job, name: saved.name };
      },
      closed: renderLabel,
      returnFocus: rename,
    });
    rename.hidden = true;
  });
  const editNotes = $("[data-edit-notes]");
  editNotes.addEventListener("click", () => {
    const notes = $("[data-notes]");
    const form = editInPlace(notes, {
      value: job.notes ?? "",
      label: "Notes on the run",
      maxLength: NOTES_MAX,
      multiline: true,
      save: async (text) => {
        const saved = await saveLabel(jobId, { notes: text || null });
        job = { ...job, notes: saved.notes };
      },
      closed: renderLabel,
      returnFocus: editNotes,
    });
    form.dataset.notesEditor = "";
    editNotes.hidden = true;
  });
  onSignedIn((me) => {
    viewer = me;
    if (job) renderLabel();
  });
}

function renderLineage() {
  const node = $("[data-lineage]");
  if (!job.parent_id) return;
  node.replaceChildren(
    "Continued from ",
    el("a", { href: `/jobs/${job.parent_id}`, dataset: { parentLink: "" } }, `run ${job.parent_id.slice(0, 8)}`),
    ` at step ${(job.fork_step ?? 0).toLocaleString()}; its curve up to there is drawn faintly.`,
  );
  node.hidden = false;
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
  else if (job.params?.lr_finder) parts.push(`range test: ${step} of at most 100 steps`);
  else if (job.kind === "cifar" && !isTerminal(job.status) && epochs) parts.push(...cifarProgress(step, store.accEpochs.at(-1) ?? 0, epochs, elapsed));
  else if (job.kind === "cifar" && epochs && job.status !== "succeeded") parts.push(cifarEnded(step, epochs));
  else if (job.status === "paused" && epochs) parts.push(`paused at epoch ${shownEpoch} of ${epochs}`);
  else if (epochs) parts.push(`epoch ${shownEpoch} of ${epochs}`);
  if (elapsed !== null) parts.push(`${duration(elapsed)} of training`);
  if (elapsed && step) parts.push(`${num(step / (elapsed / 1000), 3)} steps/s`);
  $("[data-progress-text]").textContent = parts.join(" · ");
}

// A CIFAR run in batches: the epoch under way and the batch in it (not "epoch 0 of 2"), and, once
// an epoch has ended (which tells how many batches one has), about how long the rest takes at the
// speed so far.
function cifarProgress(step, epochsDone, epochs, elapsed) {
  const ends = store.accSteps;
  const perEpoch = store.stepsPerEpoch(job.fork_step ?? 0);
  const lead = job.status === "paused" ? "paused in epoch" : "epoch";
  if (epochsDone >= epochs) return [`${lead} ${epochs} of ${epochs}`];
  const parts = [`${lead} ${epochsDone + 1} of ${epochs}`];
  if (!perEpoch) {
    if (step) parts.push(`batch ${step.toLocaleString()}`);
    return parts;
  }
  const inEpoch = Math.max(0, step - (ends.at(-1) ?? 0));
  parts.push(`batch ${Math.min(inEpoch, perEpoch).toLocaleString()} of ${perEpoch.toLocaleString()}`);
  const own = step - (job.fork_step ?? 0);
  if (job.status === "running" && elapsed && own > 0) {
    const left = (epochs * perEpoch - step) / (own / (elapsed / 1000));
    parts.push(`about ${duration(left * 1000)} left`);
  }
  return parts;
}

// How far an ended (cancelled, failed, diverged, interrupted) CIFAR run got, as the charts show
// it: the epochs it finished (each has its accuracy point) and the batches after the last one.
function cifarEnded(step, epochs) {
  const done = store.accEpochs.at(-1) ?? 0;
  const after = step - (store.accSteps.at(-1) ?? job.fork_step ?? 0);
  const partial = after > 0 ? ` and ${after.toLocaleString()} batch${after === 1 ? "" : "es"} of epoch ${done + 1}` : "";
  return `${done} of ${epochs} epochs done${partial}`;
}

// The verdict in words and numbers, and the best validation loss ringed on the chart.
function renderVerdict(now = false) {
  if (!now && performance.now() - verdictAt < 250) return;
  verdictAt = performance.now();
  const books = kinds?.find((k) => k.kind === job.kind)?.book_results ?? [];
  const finder = job.result?.lr_finder;
  const lines = finder ? [{ text: finderSummary(finder), tone: finder.suggested_lr === null ? "warn" : "good" }] : verdict(job, store, books);
  $("[data-verdict]").replaceChildren(...lines.map((line) => el("p", { class: line.tone, dataset: line.book ? { book: "" } : {} }, line.text)));
  const best = bestValidation(store);
  lossChart?.setSpots(best ? [{ x: best.step, y: best.loss, label: "best val", color: COLORS.val }] : []);
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
          const created = await api.createJob({
            kind: job.kind,
            params,
            device: job.device ?? "auto",
            seed: job.seed,
            name: variantName(jobLabel(job), change),
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

// How a diverged run got there: w, b and the loss at its first steps and its last finite ones
// (w 1 → −44 → 2568 → …), each step overshooting further.
function renderFirstSteps() {
  const table = $("[data-first-steps]");
  if (!store.hasW || !store.length) {
    table.hidden = true;
    return;
  }
  const n = store.length;
  const shown = n <= 8 ? [...Array(n).keys()] : [0, 1, 2, 3, 4, null, n - 2, n - 1];
  const cell = (i, values) => el("td", {}, i === null ? "…" : num(values[i]));
  table.replaceChildren(
    el("caption", {}, "The first steps, and the last while the numbers were finite"),
    el("tr", {}, el("th", { scope: "row" }, "epoch"), ...shown.map((i) => el("td", {}, i === null ? "…" : store.steps[i].toLocaleString()))),
    el("tr", {}, el("th", { scope: "row" }, "w"), ...shown.map((i) => cell(i, store.w))),
    el("tr", {}, el("th", { scope: "row" }, "b"), ...shown.map((i) => cell(i, store.b))),
    el("tr", {}, el("th", { scope: "row" }, "loss"), ...shown.map((i) => cell(i, store.train))),
  );
  table.hidden = false;
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
    // The linear fit knows the largest stable lr of plain gradient descent on its data: offer a
    // round one under it first (a tenth of a far too large lr may diverge as well).
    const stable = job.result?.stable_lr;
    const suggested = job.result?.suggested_lr;
    if (typeof suggested === "number") {
      retries.push(retryButton(`Retry with lr = ${num(suggested)} (stable below ${num(stable, 2)})`, { lr: suggested }));
    }
    if (typeof lr === "number" && !(typeof stable === "number" && lr / 10 >= stable)) {
      retries.push(retryButton(`Retry with lr ÷ 10 (lr = ${num(lr / 10)})`, { lr: Number((lr / 10).toPrecision(6)) }));
    }
    if (typeof params.input_scale === "number") {
      const scale = params.input_scale > 0.1 ? 0.1 : Number((params.input_scale / 10).toPrecision(6));
      retries.push(retryButton(`Retry with input scaling (input_scale = ${scale})`, { input_scale: scale }));
    }
    buttons.replaceChildren(...retries);
    renderFirstSteps();
    box.hidden = false;
  } else if (job.status === "failed" || job.status === "interrupted") {
    $("[data-problem-title]").textContent = job.status === "failed" ? "The run failed" : "The run was interrupted";
    $("[data-problem-message]").textContent = job.error || (job.status === "interrupted" ? "The server stopped while it ran." : "");
    $("[data-problem-advice]").textContent = job.resumable
      ? `It kept a checkpoint at step ${(job.checkpoint_step ?? 0).toLocaleString()}: "Resume from step ${(job.checkpoint_step ?? 0).toLocaleString()}" beside the chart goes on from there.`
      : "";
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
  if (parent) {
    // The run this one was forked from, up to the fork step: faint, thin, after the own curves in the legend.
    series.push({ label: "parent train", stroke: withAlpha(COLORS.train, 0.35), width: 1.5 });
    if (parent.hasVal) series.push({ label: "parent val", stroke: withAlpha(COLORS.val, 0.35), width: 1.5, dash: VAL_DASH });
  }
  if (hasVal) {
    series.push({ label: "val loss", stroke: smoothingOn ? withAlpha(COLORS.val, 0.35) : COLORS.val, width: smoothingOn ? 1 : 2, dash: VAL_DASH });
  }
  if (smoothingOn) {
    series.push({ label: "train (smoothed)", stroke: COLORS.train, width: 2.5 });
    if (hasVal) series.push({ label: "val (smoothed)", stroke: COLORS.val, width: 2.5, dash: VAL_DASH });
  }
  if (previous) {
    series.push({ label: "previous train", stroke: "rgba(87, 96, 106, 0.45)", width: 1.5 });
    if (previous.hasVal) series.push({ label: "previous val", stroke: "rgba(87, 96, 106, 0.45)", width: 1.5, dash: VAL_DASH });
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
  const own = parent ? withParentColumns(columns, parent) : columns;
  return previous ? withOverlayColumns(own, [previous.steps, previous.train, ...(previous.hasVal ? [previous.val] : [])]) : own;
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
  renderMarkers();
  fork?.update(job); // the newest step moved
  replay?.update();
  if (fitChart && job.kind === "linear" && !resultShown && !replay?.active) {
    const wb = store.latestWB();
    const scale = job.params?.input_scale ?? 1;
    if (wb) fitChart.setLine(wb.w * scale, wb.b);
  }
  renderProgress();
  renderVerdict();
}

// The largest loss over the smallest (train and validation, finite and above 0); 1 without points.
function lossRange() {
  let lo = Infinity, hi = 0;
  for (const series of [store.train, store.val]) {
    for (const v of series ?? []) {
      if (v > 0 && Number.isFinite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
  }
  return hi > 0 ? hi / lo : 1;
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

// ---- markers: live changes, where a fork began, the picked step --------------------------------

function renderMarkers() {
  if (!lossChart) return;
  const changes = mergeChanges(job.changes || [], received);
  const markers = changes.map((change) => ({ x: change.step, label: changeLabel(change.params), color: "#8a5a00" }));
  if (job.parent_id && job.fork_step != null) markers.push({ x: job.fork_step, label: "forked here", color: "#57606a", dash: [2, 3] });
  if (fork?.picked != null) markers.push({ x: fork.picked, label: `step ${fork.picked.toLocaleString()}`, color: "#009E73", dash: [] });
  lossChart.setMarkers(markers);
  if (surface) {
    // A kink on the (w, b) path where a new learning rate took over.
    const kinks = [];
    for (const change of changes) {
      if (Object.keys(change.params).every((name) => name === "epochs")) continue; // the path goes on straight
      const i = indexAtStep(store.steps, change.step);
      if (i >= 0 && store.w[i] !== null && store.b[i] !== null) kinks.push({ w: store.w[i], b: store.b[i], label: changeLabel(change.params) });
    }
    surface.setMarkers(kinks);
  }
}

// A `control` event: live parameters changed after `step`.
function onControl(change) {
  const before = Object.fromEntries(Object.keys(change.params).map((name) => [name, job.params?.[name]]));
  received.push({ ...change, before });
  job = { ...job, params: { ...job.params, ...change.params } };
  if (change.params.epochs !== undefined && job.progress) job.progress = { ...job.progress, epochs: change.params.epochs };
  controls.applied(change);
  renderSettings();
  renderMarkers();
  renderProgress();
}

// The answer to a PATCH. A paused or queued job records the change at once and the answer lists
// it; a running one records it at its next step boundary, and says so with a `control` event.
// (The server does not send the `control` event of a paused or queued job to open streams, only
// to later readers: the answer is what tells this page.)
function onPatched(reply) {
  if ((reply.changes?.length ?? 0) <= (job.changes?.length ?? 0)) return;
  const change = reply.changes.at(-1);
  job = { ...job, params: { ...job.params, ...change.params }, changes: reply.changes };
  if (change.params.epochs !== undefined && job.progress) job.progress = { ...job.progress, epochs: change.params.epochs };
  controls.applied(change);
  renderSettings();
  renderMarkers();
  renderProgress();
}

// A click on the loss chart picks the step a fork starts from.
function onPick(step) {
  if (job.parent_id && job.fork_step != null && step <= job.fork_step) {
    controls.say("That part of the curve is the parent run's: open it (the link at the top) to continue from there.");
    return;
  }
  fork.setStep(step);
  renderMarkers();
}

// ---- the previous run (edit and run again) ----------------------------------------------------

// What differs from the previous run, and its line, curve and path drawn faintly.
function showPrevious() {
  const note = $("[data-previous-note]");
  if (!previous) {
    if (previousId) {
      note.textContent = `The run this one was edited from (${previousId.slice(0, 8)}) is gone: it is not drawn.`;
      note.hidden = false;
    }
    return;
  }
  const before = previous.job.params || {};
  const now = job.params || {};
  const changed = Object.keys(now)
    .filter((name) => name !== "data" && JSON.stringify(now[name]) !== JSON.stringify(before[name]))
    .map((name) => `${name} ${before[name]} → ${now[name]}`);
  note.replaceChildren(
    "Drawn faintly underneath: ",
    el("a", { href: `/jobs/${previous.job.id}`, dataset: { previousLink: "" } }, `the previous run ${previous.job.id.slice(0, 8)}`),
    changed.length ? ` (${changed.join(", ")}).` : " (the same settings).",
  );
  note.hidden = false;
  const result = previous.job.result;
  if (job.kind === "linear") {
    if (result?.slope != null && result?.intercept != null) fitChart?.setGhost({ kind: "line", slope: result.slope, intercept: result.intercept });
    surface?.setGhost(previous.w, previous.b);
  } else if (job.kind === "mlp" && result?.curve) {
    fitChart?.setGhost({ kind: "curve", points: result.curve });
  }
}

// ---- replay ----------------------------------------------------------------------------------

// One frame of the replay: every picture as it was at that step.
function showReplayFrame(frame) {
  lossChart.setCursor(frame.step);
  histograms?.setStep(frame.step);
  if (job.params?.lr_finder) return; // a range test has only its loss to replay
  if (job.kind === "linear") {
    const scale = job.params?.input_scale ?? 1;
    if (frame.w != null && frame.b != null) fitChart.setLine(frame.w * scale, frame.b);
    surface?.setUpTo(frame.index, `epoch ${frame.step.toLocaleString()}`);
  } else if (job.kind === "mlp" && frame.snapshot?.curve) {
    fitChart.setCurve(frame.snapshot.curve, { live: true });
    root.querySelector("[data-fit-caption]").textContent =
      `Replay: the network's output at epoch ${frame.snapshot.epoch.toLocaleString()} (pictured every few hundred epochs).`;
  } else if (job.kind === "cifar") {
    const shot = frame.snapshot;
    const key = shot ? shot.epoch : null;
    if ($("[data-learned]").dataset.replayEpoch !== String(key)) {
      $("[data-learned]").dataset.replayEpoch = String(key);
      if (shot?.confusion_matrix && shot.per_class_acc) {
        const report = { classes: Object.keys(shot.per_class_acc), confusion_matrix: shot.confusion_matrix, per_class_acc: shot.per_class_acc };
        showClassifier(el("p", { dataset: { snapshotCaption: "" } }, `Replay: after epoch ${shot.epoch} of ${job.params?.epochs ?? "?"}, on the test images.`), report);
      } else {
        $("[data-learned]").replaceChildren(el("p", { class: "muted" }, "Replay: before the first epoch ended."));
      }
    }
  }
}

// Out of the replay: the pictures of the run as it is now.
function leaveReplay() {
  lossChart.setCursor(null);
  histograms?.setStep(null);
  surface?.setUpTo(null);
  delete $("[data-learned]").dataset.replayEpoch;
  resultShown = false;
  if (isTerminal(job.status) && job.result && !job.result_abridged) {
    showResult();
  } else {
    if (job.kind === "cifar") mountLearned();
    const shots = replay.snapshots ?? [];
    if (shots.length) showSnapshot(shots.at(-1));
    updateCharts();
  }
}

// ---- what the model learned -----------------------------------------------------------------

function mountLearned() {
  const box = $("[data-learned]");
  if (job.params?.lr_finder) {
    box.replaceChildren(el("p", { class: "muted" }, "The loss against the learning rate, and the suggested rate, appear when the test ends."));
    return;
  }
  if (job.kind === "linear") {
    box.replaceChildren(
      el("div", { class: "two-columns" },
        el("figure", {},
          el("div", { class: "chart", dataset: { fitChart: "" } }),
          el("p", { class: "notice info small", dataset: { fitPlaceholder: "" }, hidden: true }),
          el("figcaption", {}, ownData()
            ? "The data and the line y = w · (input_scale · x) + b with the current w and b."
            : "The data and the line t_c = w · (input_scale · t_u) + b with the current w and b.")),
        el("figure", {},
          el("div", { class: "surface", dataset: { surface: "" } }),
          el("figcaption", {}, el("span", { dataset: { surfaceReadout: "" }, "aria-live": "off" }), el("br"),
            "Loss over (w, b); bands are equal steps of log(loss − minimum). The white path is the parameters, epoch by epoch: a learning rate that is too large zig-zags across the valley or flies off.")),
      ),
    );
    fitChart = new FitChart(box.querySelector("[data-fit-chart]"), { fitLabel: "fitted line", placeholder: box.querySelector("[data-fit-placeholder]"), ownData: ownData() });
    surface = new LossSurfaceMap(box.querySelector("[data-surface]"), box.querySelector("[data-surface-readout]"));
    runPreview = new RunPreview(surface, box.querySelector("[data-surface]").closest("figure").querySelector("figcaption"));
    fitChart.setPoints([], []);
  } else if (job.kind === "mlp") {
    box.replaceChildren(
      el("figure", {},
        el("div", { class: "chart", dataset: { fitChart: "" } }),
        el("p", { class: "notice info small", dataset: { fitPlaceholder: "" }, hidden: true }),
        el("figcaption", { dataset: { fitCaption: "" } }, "The data; the network's output is drawn as it trains.")),
      el("figure", { class: "hidden-units", dataset: { hiddenUnits: "" }, hidden: true }),
    );
    fitChart = new FitChart(box.querySelector("[data-fit-chart]"), { fitLabel: "network output", placeholder: box.querySelector("[data-fit-placeholder]"), ownData: ownData() });
  } else if (job.kind === "cifar") {
    box.replaceChildren(el("p", { class: "muted" }, "The confusion matrix, the accuracy per class and sample predictions appear when training ends."));
  }
  showDataPoints();
}

// A picture of the model while it trains: for mlp, the network's output over the input range; for
// cifar, after each epoch, where its test predictions land (the result adds the images).
function showSnapshot(picture) {
  if (resultShown || replay?.active) return;
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
  renderConfusion(box.querySelector("[data-confusion]"), detail, report, { jobId: job.has_model ? jobId : null });
  renderPerClass(box.querySelector("[data-per-class]"), report);
  if ("samples" in report) { // the result's (null when no epoch finished), not an epoch's
    box.append(el("h3", {}, "Sample predictions"), el("div", { dataset: { samples: "" } }));
    renderSamples(box.querySelector("[data-samples]"), report);
  }
}

// Whether the run fits points of its own (the charts and Try it then say x and y, not t_u and t_c).
// The list's events leave params.data out and say data_points.
function ownData() {
  return Boolean(job.params?.data?.length || job.data_points);
}

// Try it's first input: the book's 80, or the middle of the run's own x range.
function exampleInput() {
  const points = job.params?.data;
  if (!points?.length) return 80;
  let lo = points[0][0], hi = lo;
  for (const [x] of points) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return Number(((lo + hi) / 2).toPrecision(3));
}

// The points being fitted, drawn from the start: the run's own data, or the book's (which
// /api/kinds gives, so this runs again when that answer comes). The result replaces them with
// the run's split into training and validation points.
function showDataPoints() {
  const points = job.params?.data ?? kinds?.find((k) => k.kind === job.kind)?.default_data;
  runPreview?.update(job, points); // all of them, as the start page previewed them, result or not
  if (!fitChart || resultShown) return;
  if (!points?.length) return;
  const split = (job.params?.val_fraction ?? 0) > 0;
  fitChart.setPoints(points, [], split ? "data points" : "training points");
  if (surface) surface.setData(points, job.params?.input_scale ?? 1);
}

function showResult() {
  const result = job.result;
  if (!result || resultShown || replay?.active) return; // leaving the replay shows it
  resultShown = true;
  if (result.lr_finder) {
    renderFinder($("[data-learned]"), job);
    return;
  }
  if (job.kind === "linear") {
    fitChart.setPoints(result.train_points, result.val_points);
    if (result.slope != null && result.intercept != null) fitChart.setLine(result.slope, result.intercept);
    surface.setData(result.train_points, result.input_scale ?? job.params.input_scale ?? 1);
    runPreview?.update(job);
  } else if (job.kind === "mlp") {
    fitChart.setPoints(result.train_points, result.val_points);
    fitChart.setCurve(result.curve);
    root.querySelector("[data-fit-caption]").textContent = "The data and the network's output over the input range.";
    const units = root.querySelector("[data-hidden-units]");
    if (result.hidden_units && units) {
      units.hidden = false;
      renderHiddenUnits(units, result.hidden_units, ownData() ? { xLabel: "x" } : {});
    }
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
  else mountNumberPredict($("[data-tryit]"), jobId, { ownData: ownData(), example: exampleInput() });
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
  // The form's defaults (the start page's presets over the server's); the new run gets a name of its own.
  const defaults = formDefaults(job.kind, kinds?.find((k) => k.kind === job.kind)?.defaults ?? {});
  const query = shareQuery(job.kind, job.params || {}, defaults, { seed: job.seed });
  // Points too many for an address (or left out of the job as an event carried it): the start
  // page reads them from this run.
  if (job.data_points && !(query.get("data")?.length <= INLINE_CHARS)) {
    query.delete("data");
    query.set("data_from", job.id);
  }
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
  // A status event sent before a change the page already knows of (from the PATCH's answer) must
  // not take it back.
  const known = job?.changes ?? [];
  if ((updated.changes?.length ?? 0) < known.length) {
    const newer = known.slice(updated.changes?.length ?? 0);
    updated = { ...updated, changes: known, params: Object.assign({ ...updated.params }, ...newer.map((c) => c.params)) };
  }
  // Events and lists carry the job without its own data points (`data_points` says how many) and
  // with an abridged result: keep what the page read from the job itself.
  if (updated.params && updated.params.data == null && job?.params?.data) {
    updated = { ...updated, params: { ...updated.params, data: job.params.data } };
  }
  if (updated.result_abridged && job?.result && !job.result_abridged) {
    updated = { ...updated, result: { ...job.result, ...updated.result }, result_abridged: false };
  }
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
  // The elapsed time and the speed change only while it runs: nothing ticks while it waits.
  if (job.status === "running" && !tick) tick = setInterval(renderProgress, 1000);
  else if (job.status !== "running" && tick) {
    clearInterval(tick);
    tick = null;
  }
  renderVerdict(statusChanged || isTerminal(job.status));
  if (isTerminal(job.status)) {
    if (job.result_abridged) {
      // The final event's result leaves out the samples the pictures need: read the whole job once.
      api.getJob(jobId).then((whole) => onJob({ ...whole, status: job.status }), () => showResult());
      return;
    }
    showResult();
    mountTryIt();
  }
}

// The server took a resume of an ended run (interrupted, or failed with its worker): its events
// go on with the next id, so the page listens again from the last one it has.
function onRevived(reply) {
  job = { ...job, ...reply };
  resultShown = false;
  renderHeader();
  renderProblem();
  openStream(stream?.lastId ?? covered);
}

function openStream(after) {
  stream?.close();
  stream = new JobStream(api.eventsUrl(jobId), {
    status: onJob,
    metric: (points) => {
      if (store.append(points)) updateCharts(); // duplicates (by step) are dropped
    },
    snapshot: (picture) => {
      showSnapshot(picture);
      histograms?.add(picture);
    },
    control: onControl,
    done: (final) => {
      onJob(final);
      updateCharts();
    },
    connection: showConnection,
  }, after);
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
  controls = new RunControls(root, { jobId, getJob: () => job, onRevived, onPatched });
  fork = new ForkPanel(root, { getJob: () => job, lastStep: () => store.steps.at(-1) ?? null });
  rerun = new RerunPanel(root, { getJob: () => job });
  new CodePanel(root, jobId);
  // Whose run it is decides which controls a student has (an open server: everyone has all).
  api.me().then((me) => me.role === "student" && controls.setViewer(me), () => {});
  api.kinds().then((list) => {
    kinds = list;
    const kindInfo = kinds.find((k) => k.kind === job.kind);
    controls.mountLiveParams(kindInfo);
    fork.mount(kindInfo);
    rerun.mount(kindInfo, pageQuery);
    renderSettings();
    showDataPoints();
    if (lossChart) renderVerdict(true); // the book's results came with the kinds
  }, () => renderSettings());
  wireLabel();
  renderHeader();
  renderProblem();
  renderSettings();
  // A diverged loss spans dozens of orders of magnitude: only a log axis shows its growth.
  const startLog = job.status === "diverged";
  $("[data-log]").checked = startLog;
  lossChart = new LineChart($("[data-loss-chart]"), { height: 320, xLabel: "step", yLabel: "loss", spec: lossSpec, log: startLog, onPick });
  wireChartControls();
  // A touch screen has no hover and no double-click: say what works there.
  if (window.matchMedia("(hover: none)").matches) {
    $("[data-pointer-help]").textContent =
      "Drag across the chart to zoom, “Reset zoom” to zoom out; tap for the values; tap a point to continue the run from there.";
  }
  mountLearned();
  replay = new Replay(root, {
    store,
    getJob: () => job,
    loadSnapshots: async () => (job.kind === "linear" ? [] : (await api.snapshots(jobId)).snapshots),
    show: showReplayFrame,
    exit: leaveReplay,
  });

  // The history first, then the live events after its last one: a long run's points come once.
  covered = await loadHistory();
  if (job.kind !== "linear" && !job.params?.lr_finder) {
    // Read after the history: the stream brings the snapshots after it (the panel drops repeats).
    histograms = new HistogramPanel($("[data-histograms-panel]"));
    api.snapshots(jobId).then((reply) => histograms.load(reply.snapshots), () => {});
  }
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
  if (job.parent_id && job.fork_step != null) {
    try {
      // The parent's line, faint under this run's own; downsampled when the two are long.
      const long = job.fork_step + (job.progress?.step ?? 0) > FULL_HISTORY_LIMIT;
      parent = await loadParentLine(jobId, job.fork_step, { maxPoints: long ? HISTORY_POINTS : undefined });
      // The line fit's path up to the fork, faint on the loss surface under the child's own.
      if (surface && parent.w.some((w) => w !== null)) surface.setGhost(parent.w, parent.b);
    } catch {
      parent = null; // the parent was deleted: its curve is not drawn
    }
  }
  if (previousId && previousId !== jobId) {
    try {
      previous = await loadPrevious(previousId, { maxPoints: HISTORY_POINTS });
    } catch {
      previous = null; // deleted meanwhile: said above the charts
    }
    showPrevious();
  }
  // A paused run keeps its stream open: resume (here or anywhere) goes on on this page.
  if (!isTerminal(job.status)) openStream(covered);
  chartHasVal = store.hasVal();
  lossChart.data = lossData();
  // Losses over more than two decades (a small net's first epochs near 200, its last near 1) show
  // their end, and a validation loss rising again, only on a log axis: the chart opens on one. The
  // box is ticked, so it says so, and unticking it goes back as ever.
  if (!$("[data-log]").checked && lossRange() > 100) {
    $("[data-log]").checked = true;
    lossChart.log = true;
  }
  lossChart.rebuild();
  updateCharts();
  if (job.status === "diverged") renderProblem(); // with the steps the history brought
  if (isTerminal(job.status)) onJob(job);
  // Back to a page the browser kept (bfcache) whose stream it closed: load it afresh.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && stream && !stream.closed) location.reload();
  });
  // Hooks for the browser tests (and the curious): the store, the stream, the charts.
  window.playgroundJob = { store, lossChart, surface, controls, fork, replay, get histograms() { return histograms; }, get previous() { return previous; }, get fit() { return fitChart?.fit ?? null; }, get ghost() { return fitChart?.ghost ?? null; }, get stream() { return stream; }, get job() { return job; }, get parent() { return parent; }, get changesReceived() { return received; } };
  root.dataset.ready = "true";
}

main();
