// Sweeps: when the compared runs differ in exactly one numeric parameter ("also try" on the start
// page makes exactly this), a chart of each run's final and best metric against that parameter,
// with diverged runs marked at their value, and a table of the same numbers.
//
// The metric is the one that says how a run went: validation accuracy for a classifier, else the
// validation loss when the runs hold points out, else the training loss. Best is the highest
// accuracy or the lowest loss the run reached; final is its last.

import { PALETTE } from "./charts.js";
import { el, jobLabel, num, percent } from "./format.js";

const LOG_PARAMS = /(^|_)(lr|learning_rate|weight_decay)$/; // spread over decades: a log axis

// The one numeric parameter in which the runs differ, or null (they differ in another setting
// too, in none, or in more than one). The seed may differ as well (a sweep of repeated runs).
export function sweepParam(runs) {
  if (runs.length < 2) return null;
  const jobs = runs.map((run) => run.job);
  if (new Set(jobs.map((job) => job.kind)).size > 1) return null;
  const names = [...new Set(jobs.flatMap((job) => Object.keys(job.params ?? {})))].filter((name) => name !== "data");
  const differing = names.filter((name) => new Set(jobs.map((job) => JSON.stringify(job.params?.[name] ?? null))).size > 1);
  if (differing.length !== 1) return null;
  const [name] = differing;
  return jobs.every((job) => typeof job.params?.[name] === "number") ? name : null;
}

// Which metric a sweep (and the spread table) reads: {key, label, higherIsBetter, format}.
export function sweepMetric(runs) {
  const has = (key) => runs.some(({ points, job }) => job.result?.[key] != null || points.some((p) => p[key] != null));
  if (has("val_acc")) return { key: "val_acc", label: "validation accuracy", higherIsBetter: true, format: percent };
  if (has("val_loss")) return { key: "val_loss", label: "validation loss", higherIsBetter: false, format: num };
  return { key: "train_loss", label: "training loss", higherIsBetter: false, format: num };
}

// A run's final and best value of the metric, and the step it diverged at (null if it did not):
// the step after its last point, whose loss was not finite and so was never sent.
export function runOutcome({ job, points }, metric) {
  const values = points.map((p) => p[metric.key]).filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  const last = [...points].reverse().find((p) => p[metric.key] != null);
  const diverged = job.status === "diverged";
  const fromResult = job.result?.[metric.key];
  const final = diverged ? null : fromResult ?? last?.[metric.key] ?? null;
  const best = values.length ? (metric.higherIsBetter ? Math.max(...values) : Math.min(...values)) : null;
  const lastStep = points.length ? Math.max(...points.map((p) => p.step ?? 0)) : 0;
  return { final, best, divergedAt: diverged ? lastStep + 1 : null };
}

// The chart and the table for the runs, in `section` (its [data-sweep-chart] and [data-sweep-table]).
export class SweepView {
  constructor(section) {
    this.section = section;
    this.plot = null;
  }

  hide() {
    this.section.hidden = true;
    this.plot?.destroy();
    this.plot = null;
  }

  show(runs, name, { logY = true } = {}) {
    const metric = sweepMetric(runs);
    const rows = runs
      .map((run, i) => ({ run, color: PALETTE[i % PALETTE.length], value: run.job.params[name], ...runOutcome(run, metric) }))
      .sort((a, b) => a.value - b.value);
    const logX = LOG_PARAMS.test(name) && rows.every((row) => row.value > 0);
    this.section.hidden = false;
    this.section.querySelector("[data-sweep-title]").textContent = `${metric.label} against ${name}`;
    this.renderTable(rows, name, metric);
    this.renderChart(rows, name, metric, { logX, logY: logY && !metric.higherIsBetter });
  }

  renderTable(rows, name, metric) {
    const table = this.section.querySelector("[data-sweep-table]");
    const head = el("tr", {}, el("th", { scope: "col" }, name), el("th", { scope: "col" }, "run"),
      el("th", { scope: "col" }, `final ${metric.label}`), el("th", { scope: "col" }, `best ${metric.label}`));
    const body = rows.map(({ run, color, value, final, best, divergedAt }) =>
      el("tr", { dataset: { jobId: run.job.id, value: String(value), final: final ?? "", best: best ?? "", diverged: divergedAt ?? "" } },
        el("td", {}, el("code", {}, String(value))),
        el("td", {}, el("span", { class: "swatch", style: `background:${color}`, "aria-hidden": "true" }),
          el("a", { href: `/jobs/${run.job.id}` }, jobLabel(run.job))),
        el("td", {}, divergedAt !== null ? `diverged at step ${divergedAt}` : final === null ? "–" : metric.format(final)),
        el("td", {}, best === null ? "–" : metric.format(best))));
    table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...body));
  }

  renderChart(rows, name, metric, { logX, logY }) {
    const container = this.section.querySelector("[data-sweep-chart]");
    // One point per value: the mean over the runs that share it (a sweep of repeated runs).
    const values = [...new Set(rows.map((row) => row.value))];
    const meanOf = (key, value) => {
      const found = rows.filter((row) => row.value === value && row[key] !== null).map((row) => row[key]);
      return found.length ? found.reduce((a, b) => a + b, 0) / found.length : null;
    };
    const finals = values.map((value) => meanOf("final", value));
    const bests = values.map((value) => meanOf("best", value));
    const diverged = rows.filter((row) => row.divergedAt !== null);
    const finite = [...finals, ...bests].filter((v) => v !== null);
    const useLogY = logY && finite.length > 0 && finite.every((v) => v > 0);
    const format = (v) => (v === null ? "–" : metric.format(v));
    this.plot?.destroy();
    container.replaceChildren();
    this.plot = new uPlot(
      {
        width: Math.max(240, Math.floor(container.clientWidth || 600)),
        height: 260,
        scales: { x: { time: false, distr: logX ? 3 : 1 }, y: { distr: useLogY ? 3 : 1 } },
        axes: [
          { label: logX ? `${name} (log scale)` : name, labelSize: 20, size: 40 },
          { label: metric.label + (useLogY ? " (log scale)" : ""), labelSize: 20, size: 64, values: (u, splits) => splits.map(format) },
        ],
        // Best first, as a wide ring: the final value's dot, drawn over it, stays visible where they are equal.
        series: [
          { label: name },
          { label: `best ${metric.label}`, stroke: PALETTE[1], width: 1, dash: [4, 4], spanGaps: false, value: (u, v) => format(v),
            points: { show: true, size: 13, width: 2, stroke: PALETTE[1], fill: "rgba(255, 255, 255, 0)" } },
          { label: `final ${metric.label}`, stroke: PALETTE[0], width: 1.5, spanGaps: false, value: (u, v) => format(v),
            points: { show: true, size: 7, stroke: PALETTE[0], fill: PALETTE[0] } },
        ],
        hooks: { draw: [(u) => drawDiverged(u, diverged)] },
      },
      [values, bests, finals],
      container,
    );
    container.uplot = this.plot; // what is drawn, for the tests
    container.dataset.points = String(values.length);
    container.dataset.logX = String(logX);
  }
}

// A diverged run has no final value: an × at its value on the top edge, labelled.
function drawDiverged(u, diverged) {
  if (!diverged.length) return;
  const ctx = u.ctx;
  const ratio = uPlot.pxRatio || 1;
  const { top } = u.bbox;
  ctx.save();
  ctx.font = `${11 * ratio}px system-ui, sans-serif`;
  ctx.strokeStyle = ctx.fillStyle = "#b42318";
  ctx.lineWidth = 2 * ratio;
  for (const row of diverged) {
    const x = u.valToPos(row.value, "x", true);
    if (!Number.isFinite(x)) continue;
    const y = top + 8 * ratio, r = 5 * ratio;
    ctx.beginPath();
    ctx.moveTo(x - r, y - r), ctx.lineTo(x + r, y + r), ctx.moveTo(x + r, y - r), ctx.lineTo(x - r, y + r);
    ctx.stroke();
    const text = `diverged (step ${row.divergedAt})`;
    const width = ctx.measureText(text).width;
    const right = u.bbox.left + u.bbox.width;
    ctx.fillText(text, x + 8 * ratio + width > right ? x - 8 * ratio - width : x + 8 * ratio, y + 4 * ratio);
  }
  ctx.restore();
}
