// Weights and gradients over time (mlp and cifar runs): per layer with weights, a heatmap of the
// histograms of its weights and one of its gradients, time (one column per snapshot) across and the
// value up, darker where more of the layer's values lie; and the gradient norm of every layer over
// the steps, on a log axis, where vanishing gradients (a deep sigmoid net) show as lines far apart.
//
// The data are the `histograms` of the run's snapshots (app/experiments/histograms.py): each
// histogram has its own bins over that tensor's own min..max. The value axis is either the whole
// run's (every column re-binned onto the layer's lowest..highest value of all snapshots, each bin's
// count spread evenly over its width: the drift of the values shows) or each snapshot's own range
// (a column is its own histogram: its shape shows, however small the values got). The gradients
// default to their own range: the first steps' gradients are often orders of magnitude larger than
// the later ones, which on one axis all fall into one row. The text above each heatmap says which
// axis it is and, per snapshot, the range of the snapshot under the mouse or at the replay's step.
// The replay moves a cursor over the heatmaps and the norm chart, and the readout says that
// snapshot's numbers.

import { LineChart, PALETTE } from "./charts.js";
import { el, num } from "./format.js";

export const ROWS = 40; // rows of a heatmap: the value axis, lo at the bottom
const ROW_PX = 3; // canvas pixels per row; a column is COLUMN_PX wide (both scaled up by CSS)
const MAX_COLUMN_PX = 12;
const HEAT_WIDTH = 360; // canvas pixels a heatmap aims at, whatever the number of snapshots
const INK = { weights: [0, 114, 178], grads: [213, 94, 0] }; // Okabe-Ito blue and vermillion
const KINDS = { weights: "weights", grads: "gradients" };
// The value axis of each kind of heatmap: "run" (one for the whole run) or "snapshot" (each
// snapshot's own min..max). Weights drift slowly (one axis shows where they go); gradients shrink
// by orders of magnitude (only their own range shows their shape).
export const DEFAULT_AXIS = { weights: "run", grads: "snapshot" };

// A histogram ({edges, counts}) re-binned onto `rows` equal rows over [lo, hi]: each bin's count
// spread evenly over its width, so the rows hold the same total as the counts.
export function rebin(histogram, lo, hi, rows = ROWS) {
  const mass = new Array(rows).fill(0);
  const span = hi - lo || 1;
  const { edges, counts } = histogram;
  for (let b = 0; b < counts.length; b++) {
    if (!counts[b]) continue;
    const a = (edges[b] - lo) / span * rows, z = (edges[b + 1] - lo) / span * rows;
    if (z <= a) { // a bin of no width (cannot be made by the run; safe anyway)
      mass[Math.min(rows - 1, Math.max(0, Math.floor(a)))] += counts[b];
      continue;
    }
    for (let r = Math.max(0, Math.floor(a)); r < Math.min(rows, Math.ceil(z)); r++) {
      const overlap = Math.min(z, r + 1) - Math.max(a, r);
      if (overlap > 0) mass[r] += counts[b] * overlap / (z - a);
    }
  }
  return mass;
}

// The snapshots that have histograms, one per step, by step.
function merged(old, more) {
  const byStep = new Map(old.map((s) => [s.step, s]));
  for (const s of more) if (s?.histograms?.length) byStep.set(s.step, s);
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

export class HistogramPanel {
  // section: the page's [data-histograms-panel], hidden until a snapshot with histograms comes.
  constructor(section) {
    this.section = section;
    this.snapshots = [];
    this.step = null; // the replay's step; null: the newest snapshot
    this.normChart = null;
    this.layerNames = null;
    this.frame = null;
    this.heat = {}; // layer -> {weights, grads}: {axis, lo, hi, ranges, columns: [[row mass]]}, as drawn (for the tests)
    this.axis = { ...DEFAULT_AXIS };
    this.hovered = null; // {layer, what, column}: the heatmap column under the mouse, whose range the text says
  }

  // The value axis of `what` ("weights" or "grads"): "run" or "snapshot".
  setAxis(what, axis) {
    if (!(what in KINDS) || !["run", "snapshot"].includes(axis)) throw new Error(`no value axis ${what}=${axis}`);
    this.axis[what] = axis;
    this.section.dataset[`${what}Axis`] = axis; // for the tests
    this.drawSoon();
  }

  // The run's snapshots so far (GET /api/jobs/{id}/snapshots), merged with any that streamed meanwhile.
  load(snapshots) {
    this.snapshots = merged(this.snapshots, snapshots);
    this.drawSoon();
  }

  // A snapshot from the live stream.
  add(snapshot) {
    if (!snapshot?.histograms?.length) return;
    this.load([snapshot]);
  }

  // Follow the replay to `step` (null: back to the newest).
  setStep(step) {
    if (step === this.step) return;
    this.step = step;
    this.drawSoon();
  }

  // The index of the snapshot shown: the newest at or before the replay's step.
  current() {
    if (this.step === null) return this.snapshots.length - 1;
    let found = -1;
    this.snapshots.forEach((s, i) => { if (s.step <= this.step) found = i; });
    return found;
  }

  drawSoon() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      this.draw();
    });
  }

  draw() {
    const shots = this.snapshots;
    if (!shots.length) return;
    const layers = shots.at(-1).histograms.map((l) => l.layer);
    if (JSON.stringify(layers) !== JSON.stringify(this.layerNames)) this.mount(layers, shots.at(-1).histograms);
    this.section.hidden = false;
    const index = this.current();
    this.section.dataset.snapshots = String(shots.length); // for the tests
    this.section.dataset.step = index >= 0 ? String(shots[index].step) : "";
    for (const name of layers) {
      const figure = this.figures.get(name);
      this.heat[name] = {};
      for (const what of Object.keys(KINDS)) {
        const canvas = figure.querySelector(`canvas[data-${what}]`);
        const heat = heatOf(shots, name, what, this.axis[what]);
        this.heat[name][what] = heat;
        paint(canvas, heat, index, INK[what]);
        canvas.setAttribute("aria-label", `${KINDS[what]} of ${name} over time: a heatmap, time across, value up, ` +
          (this.axis[what] === "run" ? "on one value axis for the whole run" : "each snapshot on its own value axis"));
        this.sayRange(name, what, index);
      }
      const shown = index >= 0 ? shots[index].histograms.find((l) => l.layer === name) : null;
      figure.querySelector("[data-norm]").textContent = shown?.grad_norm == null ? "–" : num(shown.grad_norm, 3);
      figure.querySelector("[data-norm]").dataset.value = shown?.grad_norm == null ? "" : String(shown.grad_norm);
    }
    const steps = shots.map((s) => s.step);
    this.section.querySelector("[data-hist-steps]").textContent =
      `${shots.length} snapshot${shots.length === 1 ? "" : "s"}, step ${steps[0].toLocaleString()} to ${steps.at(-1).toLocaleString()}` +
      (index >= 0 ? `; the readouts are at step ${steps[index].toLocaleString()}` : "; the replay is before the first one");
    this.normChart.setData([steps, ...layers.map((name) => shots.map((s) => s.histograms.find((l) => l.layer === name)?.grad_norm ?? null))]);
    this.normChart.setCursor(this.step === null ? null : this.step);
  }

  // The text above a heatmap: its value axis, for a column per snapshot that of the column under
  // the mouse, else of the replay's snapshot.
  sayRange(name, what, index) {
    const heat = this.heat[name]?.[what];
    const node = this.figures.get(name).querySelector(`[data-${what}-range]`);
    if (!heat) {
      node.textContent = "none yet";
      return;
    }
    if (heat.axis === "run") {
      node.textContent = `${num(heat.lo, 3)} … ${num(heat.hi, 3)} (whole run)`;
      return;
    }
    const hovered = this.hovered?.layer === name && this.hovered.what === what ? this.hovered.column : null;
    const i = hovered ?? index;
    const range = i >= 0 ? heat.ranges[i] : null;
    node.textContent = range
      ? `each snapshot its own range; step ${this.snapshots[i].step.toLocaleString()}: ${num(range.lo, 3)} … ${num(range.hi, 3)}`
      : "each snapshot its own range";
    node.dataset.column = i >= 0 ? String(i) : ""; // for the tests
  }

  // The mouse over a heatmap: its column's range in the text (a column per snapshot only).
  hover(name, what, event) {
    const canvas = event.currentTarget;
    const columns = this.heat[name]?.[what]?.columns.length ?? 0;
    const column = event.type === "mouseleave" || !columns ? null
      : Math.min(columns - 1, Math.max(0, Math.floor(event.offsetX / canvas.clientWidth * columns)));
    this.hovered = column === null ? null : { layer: name, what, column };
    this.sayRange(name, what, this.current());
  }

  axisControls() {
    return el("p", { class: "hist-axis small" }, "Value axis (up) of the heatmaps:",
      ...Object.entries(KINDS).map(([what, words]) => {
        const id = `hist-axis-${what}`;
        return el("span", { class: "hist-axis-choice" },
          el("label", { for: id }, words),
          el("select", { id, dataset: { axis: what }, onchange: (event) => this.setAxis(what, event.target.value) },
            el("option", { value: "run", selected: this.axis[what] === "run" }, "one for the whole run"),
            el("option", { value: "snapshot", selected: this.axis[what] === "snapshot" }, "each snapshot its own range")));
      }));
  }

  mount(layers, entries) {
    this.layerNames = layers;
    this.figures = new Map();
    this.section.dataset.weightsAxis = this.axis.weights;
    this.section.dataset.gradsAxis = this.axis.grads;
    const grid = el("div", { class: "hist-grid" });
    for (const entry of entries) {
      const figure = el("figure", { class: "hist-layer", dataset: { layer: entry.layer } },
        el("figcaption", {}, el("strong", {}, entry.layer), ` [${entry.shape.join(" × ")}]`, el("br"),
          el("span", { class: "small" }, "gradient norm ", el("output", { dataset: { norm: "" } }, "–"))),
        el("div", { class: "hist-pair" },
          ...Object.entries(KINDS).map(([what, words]) => el("div", { class: "hist-cell" },
            el("span", { class: "small" }, words, " ",
              el("span", { class: "muted", dataset: { [`${what}Range`]: "" } })),
            el("canvas", { dataset: { [what]: "" }, role: "img",
              onmousemove: (event) => this.hover(entry.layer, what, event),
              onmouseleave: (event) => this.hover(entry.layer, what, event) })))),
      );
      this.figures.set(entry.layer, figure);
      grid.append(figure);
    }
    const chartNode = el("div", { class: "chart", dataset: { gradNormChart: "" } });
    this.section.querySelector("[data-hist-body]").replaceChildren(
      this.axisControls(),
      grid,
      el("h3", {}, "Gradient norm per layer"),
      chartNode,
      el("p", { class: "help" }, "The L2 norm of each layer's weight gradient at each snapshot (log scale). Lines far apart, the first layer's lowest, are vanishing gradients: the signal shrinks on its way back through the layers (a deep net with sigmoid shows it)."),
    );
    this.normChart = new LineChart(chartNode, {
      height: 240,
      log: true,
      xLabel: "step",
      yLabel: "gradient norm",
      spec: () => ({ series: layers.map((name, i) => ({ label: name, stroke: PALETTE[i % PALETTE.length], width: 2, points: { show: true, size: 4 } })) }),
    });
  }
}

// The layer's `what` ("weights" or "grads") of every snapshot: each snapshot's column of row masses
// (null: no gradients) and its value range `ranges[i]` ({lo, hi}: row 0's bottom, the top row's
// top). axis "run": every column on one axis, the lowest to the highest edge of them all (lo, hi);
// "snapshot": each column over its own histogram's edges (lo, hi: the lowest and highest of those).
export function heatOf(shots, name, what, axis = "run") {
  const pictures = shots.map((s) => s.histograms.find((l) => l.layer === name)?.[what] ?? null);
  const some = pictures.filter(Boolean);
  if (!some.length) return null;
  let lo = Math.min(...some.map((h) => h.edges[0]));
  let hi = Math.max(...some.map((h) => h.edges.at(-1)));
  if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
  const rangeOf = (h) => (axis === "run" ? { lo, hi } : { lo: h.edges[0], hi: h.edges.at(-1) });
  const ranges = pictures.map((h) => (h ? rangeOf(h) : null));
  const columns = pictures.map((h, i) => (h ? rebin(h, ranges[i].lo, ranges[i].hi) : null));
  return { axis, lo, hi, ranges, columns };
}

// Geometry of a heatmap's canvas: a column per snapshot, ROWS rows (for the tests too).
export function cellSize(columns) {
  return { width: Math.max(1, Math.min(MAX_COLUMN_PX, Math.floor(HEAT_WIDTH / Math.max(1, columns)))), height: ROW_PX };
}

// One column per snapshot, its rows shaded by their share of the column's fullest row (each
// snapshot's own shape shows, whatever the layer's size); the columns after the replay's position
// faint.
function paint(canvas, heat, index, ink) {
  const columns = heat ? heat.columns.length : 1;
  const cell = cellSize(columns);
  canvas.width = columns * cell.width;
  canvas.height = ROWS * cell.height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!heat) return;
  heat.columns.forEach((column, i) => {
    if (!column) return;
    const top = Math.max(...column) || 1;
    const faint = index >= 0 && i > index ? 0.25 : 1;
    column.forEach((mass, r) => {
      if (mass <= 0) return;
      const a = faint * (0.12 + 0.88 * Math.sqrt(mass / top)); // sqrt: the thin tails stay visible
      ctx.fillStyle = `rgba(${ink[0]}, ${ink[1]}, ${ink[2]}, ${a})`;
      ctx.fillRect(i * cell.width, (ROWS - 1 - r) * cell.height, cell.width, cell.height);
    });
  });
}
