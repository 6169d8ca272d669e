// Compare's race: line-fit runs over the same points, each run's (w, b) path on one loss surface
// (its colour is its colour in the rest of Compare, named in the legend), replayed together in
// step with a slider and Play. The surface is exact (the loss of a line is a quadratic in w and b,
// contour.js), so this is the true landscape the optimizers race on, not a projection.
//
// Runs share a surface when they fit the same training points with the same input_scale (the
// surface is over the w the model sees). The largest such group races; the page names the others.

import { api } from "./api.js";
import { PALETTE } from "./charts.js";
import { LossSurfaceMap, MARGIN, marker, pathToPixels, strokePixels, viewAround } from "./contour.js";
import { el, isTerminal, jobLabel, num } from "./format.js";
import { indexAtStep } from "./lineage.js";

const REPLAY_SECONDS = 5; // Play runs the whole race in this long

// A run's path: its metric points' (w, b) (the state each step starts from), then the result's
// final (w, b) one step after the last, as the run page's surface ends too.
export function racePath({ job, points }) {
  const steps = [], ws = [], bs = [];
  for (const p of points) {
    if (p.step == null || p.w == null || p.b == null) continue;
    steps.push(p.step);
    ws.push(p.w);
    bs.push(p.b);
  }
  const result = job.result;
  if (isTerminal(job.status) && result?.w != null && result?.b != null && steps.length && result.epochs_run >= steps.at(-1)) {
    steps.push(result.epochs_run + 1);
    ws.push(result.w);
    bs.push(result.b);
  }
  return { steps, ws, bs };
}

// What fixes a linear run's surface: its points, its input scale, and (with a validation split) the
// seed that drew the split.
function surfaceKey(job) {
  const p = job.params ?? {};
  const split = (p.val_fraction ?? 0) > 0 ? [p.val_fraction, job.seed] : 0;
  return JSON.stringify([p.data ?? null, p.input_scale ?? 1, split]);
}

// A light colour (yellow, sky blue) gets a dark halo on the map, a dark one a white halo.
function halo(hex) {
  const n = parseInt(hex.slice(1), 16);
  const luma = 0.299 * ((n >> 16) & 255) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
  return luma > 150 ? "rgba(0,0,0,0.8)" : "rgba(255,255,255,0.9)";
}

class RaceMap extends LossSurfaceMap {
  constructor(container, readout) {
    super(container, readout);
    this.canvas.setAttribute("aria-label", "Loss surface over w and b with each compared run's path; the legend below names the colours");
    this.runs = []; // [{steps, ws, bs, color, label}]
    this.at = null; // the replay's step, or null for the whole race
  }

  setRuns(runs) {
    this.runs = runs;
    this.runPixels = null;
    this.view = null;
    this.background = null;
    this.schedule();
  }

  setStep(step) {
    this.at = step;
    this.schedule();
  }

  computeView() {
    return viewAround(this.surface?.minimum ?? null, this.runs);
  }

  pixelsOf(run) {
    return pathToPixels(run.ws, run.bs, (w, b) => this.toPx(w, b));
  }

  drawPath(ctx) {
    const { width, height } = this.cssSize;
    const box = { x0: MARGIN.left, x1: width - MARGIN.right, y0: MARGIN.top, y1: height - MARGIN.bottom };
    const inside = ([x, y]) => x >= box.x0 && x <= box.x1 && y >= box.y0 && y <= box.y1;
    const key = `${width} ${height} ${Object.values(this.view).join(" ")}`;
    if (this.runPixels?.key !== key) this.runPixels = { key, all: this.runs.map((run) => this.pixelsOf(run)) };
    const stroke = (pts, color, lineWidth) => strokePixels(ctx, pts, box, [[color, lineWidth]]);
    ctx.save();
    ctx.lineJoin = "round";
    ctx.lineCap = "round";
    this.runs.forEach((run, k) => {
      const all = this.runPixels.all[k];
      const upTo = this.at === null ? run.ws.length - 1 : indexAtStep(run.steps, this.at);
      const cut = all.findIndex((p) => p[2] > upTo);
      const shown = cut < 0 ? all : all.slice(0, cut);
      if (shown.length < all.length) stroke(all.slice(Math.max(0, shown.length - 1)), "rgba(255,255,255,0.35)", 1.5);
      stroke(shown, halo(run.color), 5);
      stroke(shown, run.color, 2.5);
      if (upTo >= 0 && Number.isFinite(run.ws[upTo]) && Number.isFinite(run.bs[upTo])) {
        const p = this.toPx(run.ws[upTo], run.bs[upTo]);
        if (inside(p)) {
          ctx.fillStyle = run.color;
          ctx.strokeStyle = halo(run.color);
          ctx.lineWidth = 2;
          ctx.beginPath();
          ctx.arc(p[0], p[1], 5.5, 0, 2 * Math.PI);
          ctx.fill();
          ctx.stroke();
        }
      }
    });
    if (this.surface) {
      const m = this.toPx(this.surface.minimum.w, this.surface.minimum.b);
      if (inside(m)) marker(ctx, m, "cross", "minimum");
    }
    ctx.restore();
  }

  defaultReadout() {
    if (!this.surface) return "";
    const m = this.surface.minimum;
    return `minimum: w = ${num(m.w)}, b = ${num(m.b)}, loss = ${num(this.surface.minLoss)}`;
  }
}

export class RaceView {
  constructor(section) {
    this.section = section;
    this.paths = []; // [{job, color, steps, ws, bs}] racing now
    this.playing = false;
    this.frame = null;
    this.kindsData = null; // the book's points, read once from /api/kinds when no run has its own
    const readout = el("span", { "aria-live": "off" });
    this.surfaceBox = el("div", { class: "surface", dataset: { raceSurface: "" } });
    this.legend = el("ul", { class: "race-legend", style: "list-style: none; padding-left: 0", dataset: { raceLegend: "" } });
    this.note = el("p", { class: "muted small", dataset: { raceNote: "" }, hidden: true });
    this.play = el("button", { type: "button", class: "small", dataset: { racePlay: "" }, "aria-pressed": "false" }, "▶ Play");
    this.slider = el("input", { type: "range", min: "0", max: "0", step: "1", value: "0", dataset: { raceStep: "" }, "aria-label": "Step of the race" });
    this.stepOut = el("output", { dataset: { raceReadout: "" } });
    section.replaceChildren(
      el("h2", { id: "compare-race-title" }, "Race on the loss surface"),
      el("p", { class: "help" },
        "Each line-fit run's (w, b), step by step, on the loss surface of their shared data (bands: equal steps of log(loss − minimum); ×: the minimum). " +
        "Play or drag the slider to replay them together: the dot is where each run was at that step."),
      this.note,
      el("figure", {}, this.surfaceBox, el("figcaption", {}, readout)),
      el("div", { class: "chart-controls" }, this.play, this.slider, this.stepOut),
      this.legend,
    );
    section.setAttribute("aria-labelledby", "compare-race-title");
    this.map = new RaceMap(this.surfaceBox, readout);
    this.slider.addEventListener("input", () => {
      this.pause();
      this.seek(Number(this.slider.value));
    });
    this.play.addEventListener("click", () => (this.playing ? this.pause() : this.start()));
    window.playgroundRace = this; // for the tests
  }

  // Compare's runs ([{job, points}], in its order and colours); hides itself without two line fits
  // over the same data.
  async show(runs) {
    const linear = runs.map((run, i) => ({ ...run, color: PALETTE[i % PALETTE.length] })).filter(({ job }) => job.kind === "linear" && !job.result?.lr_finder);
    const groups = new Map();
    for (const run of linear) {
      const key = surfaceKey(run.job);
      groups.set(key, [...(groups.get(key) ?? []), run]);
    }
    const group = [...groups.values()].sort((a, b) => b.length - a.length)[0] ?? [];
    if (group.length < 2) {
      this.section.hidden = true;
      this.paths = [];
      return;
    }
    const left = linear.filter((run) => !group.includes(run));
    this.note.hidden = !left.length;
    this.note.textContent = left.length
      ? `Not in the race: ${left.map(({ job }) => jobLabel(job)).join(", ")} (other points, input_scale or validation split, so another surface).`
      : "";
    const points = await this.trainingPoints(group);
    this.paths = group.map((run) => ({ job: run.job, color: run.color, label: jobLabel(run.job), ...racePath(run) }));
    this.section.hidden = false;
    const first = Math.min(...this.paths.map((p) => p.steps[0] ?? Infinity));
    const last = Math.max(...this.paths.map((p) => p.steps.at(-1) ?? -Infinity));
    const wasAt = this.map.at;
    this.slider.min = String(Number.isFinite(first) ? first : 0);
    this.slider.max = String(Number.isFinite(last) ? last : 0);
    if (points) this.map.setData(points, group[0].job.params?.input_scale ?? 1);
    this.map.setRuns(this.paths);
    this.seek(wasAt === null ? Number(this.slider.max) : Math.min(wasAt, Number(this.slider.max)), wasAt === null);
    this.section.dataset.runs = String(this.paths.length);
    this.section.dataset.ready = "true";
  }

  // The group's training points: a finished run's (the split it trained on), else its own data, else the book's.
  async trainingPoints(group) {
    const done = group.find(({ job }) => job.result?.train_points?.length);
    if (done) return done.job.result.train_points;
    const params = group[0].job.params ?? {};
    if ((params.val_fraction ?? 0) > 0) return null; // the split is known once a run has a result
    if (params.data) return params.data;
    this.kindsData ??= api.kinds().then((kinds) => kinds.find((k) => k.kind === "linear")?.default_data ?? null, () => null);
    return this.kindsData;
  }

  // The race at `step` (whole: the slider at its end shows whole paths).
  seek(step, whole = false) {
    this.slider.value = String(step);
    this.map.setStep(whole ? null : step);
    this.stepOut.value = `step ${step.toLocaleString("en")}`;
    this.section.dataset.step = String(step); // for the tests
    this.legend.replaceChildren(
      ...this.paths.map((path) => {
        const i = indexAtStep(path.steps, step);
        const where = i >= 0 ? `w = ${num(path.ws[i])}, b = ${num(path.bs[i])}` : "not started";
        const p = path.job.params ?? {};
        return el("li", { dataset: { jobId: path.job.id } },
          el("span", { class: "swatch", style: `background:${path.color}`, "aria-hidden": "true" }),
          el("a", { href: `/jobs/${path.job.id}` }, path.label),
          el("span", { class: "muted" }, ` ${p.optimizer}, lr ${p.lr}: `),
          where);
      }),
    );
  }

  start() {
    const min = Number(this.slider.min), max = Number(this.slider.max);
    if (Number(this.slider.value) >= max) this.seek(min);
    this.playing = true;
    this.play.textContent = "Pause";
    this.play.setAttribute("aria-pressed", "true");
    let position = Number(this.slider.value);
    let lastTime = null;
    const rate = Math.max(1, (max - min) / REPLAY_SECONDS); // steps per second
    const tick = (now) => {
      if (!this.playing) return;
      if (lastTime !== null) position = Math.min(max, position + ((now - lastTime) / 1000) * rate);
      lastTime = now;
      this.seek(Math.floor(position));
      if (position >= max) return this.pause();
      this.frame = requestAnimationFrame(tick);
    };
    this.frame = requestAnimationFrame(tick);
  }

  pause() {
    this.playing = false;
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = null;
    this.play.textContent = "▶ Play";
    this.play.setAttribute("aria-pressed", "false");
  }
}
