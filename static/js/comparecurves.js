// The curves of Compare's charts: each run's loss and accuracy on the chosen x axis (step, epoch or
// time), smoothed when asked, with diverged runs clipped out of the y range, and runs that differ
// only in their seed drawn as one mean curve in a min–max band (bands.js).

import { PALETTE, VAL_DASH, withAlpha } from "./charts.js";
import { elapsedMs, jobLabel } from "./format.js";
import { band, seedGroups } from "./bands.js";

// The families of curves a chart draws: key, the point's field, label, dash.
export const LOSS_CURVES = [
  { key: "train", field: "train_loss", label: "train", dash: undefined },
  { key: "val", field: "val_loss", label: "val", dash: VAL_DASH },
];
export const ACCURACY_CURVES = [
  { key: "trainAcc", field: "train_acc", label: "train acc", dash: undefined },
  { key: "valAcc", field: "val_acc", label: "val acc", dash: VAL_DASH },
];
const CLIP_HEADROOM = 2; // a diverged run is drawn up to twice the highest loss of the runs that did not diverge

// cifar's epoch-end points carry the epoch's accuracies (and its mean loss and val_loss); its
// batch points are the loss curve.
function isEpochEnd(p) {
  return p.train_acc != null || p.val_acc != null;
}

// Exponential moving average over a curve whose points may be steps apart (a thinned-out history):
// a point stands for the steps since the one before, so the smoothing spans as many steps as over
// the full history. Debiased at the start; with one step between points it is smoothing.js's Ema.
export function smoothBySteps(steps, ys, alpha) {
  if (!alpha) return ys.slice();
  let sum = 0, weight = 0, previous = null;
  return ys.map((y, i) => {
    if (y === null || y === undefined || !Number.isFinite(y)) return null;
    const keep = alpha ** (previous === null ? 1 : Math.max(1, steps[i] - previous));
    sum = keep * sum + (1 - keep) * y;
    weight = keep * weight + (1 - keep);
    previous = steps[i];
    return sum / weight;
  });
}

// x of a run's step on the axis: the step; the (fractional) epoch, so runs of different batch
// counts line up; or its seconds of training, read off an even pace between its start and its
// newest point (the points carry no clock; time paused is not counted, as `elapsedMs` does not).
export function stepToX(run, axis) {
  const { points, job } = run;
  if (axis === "step") return (step) => step;
  if (axis === "epoch") {
    const ends = points.filter((p) => p.epoch === 1);
    const complete = points.some((p) => (p.epoch ?? 0) > 1);
    const perEpoch = complete && ends.length ? Math.max(...ends.map((p) => p.step)) : null;
    return (step, epoch) => (perEpoch ? step / perEpoch : epoch ?? null);
  }
  const last = Math.max(0, job.progress?.step ?? 0, ...points.map((p) => p.step ?? 0));
  const seconds = (elapsedMs(job) ?? 0) / 1000;
  return (step) => (last ? (step / last) * seconds : null);
}

// x ascending and once each (uPlot.join needs that), keeping the later y of a repeated x.
export function dedupeSorted(xs, ys) {
  const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  const outX = [], outY = [];
  for (const i of order) {
    if (xs[i] === null || xs[i] === undefined || !Number.isFinite(xs[i])) continue;
    if (outX.length && outX[outX.length - 1] === xs[i]) {
      outY[outY.length - 1] = ys[i] ?? outY[outY.length - 1];
      continue;
    }
    outX.push(xs[i]);
    outY.push(ys[i]);
  }
  return [outX, outY];
}

// One run's curves: {train, val, trainAcc, valAcc}, each {xs, ys} (null when it has no such points).
export function runCurves(run, axis, alpha) {
  const toX = stepToX(run, axis);
  const curve = (points, field, smoothed) => {
    const kept = points.filter((p) => p[field] != null && p.step != null);
    if (!kept.length) return null;
    const steps = kept.map((p) => p.step);
    const raw = kept.map((p) => p[field]);
    const [xs, ys] = dedupeSorted(kept.map((p) => toX(p.step, p.epoch)), smoothed ? smoothBySteps(steps, raw, alpha) : raw);
    return xs.length ? { xs, ys } : null;
  };
  const batches = run.points.filter((p) => !isEpochEnd(p));
  return {
    train: curve(batches, "train_loss", true),
    val: curve(run.points, "val_loss", true),
    trainAcc: curve(run.points, "train_acc", false),
    valAcc: curve(run.points, "val_acc", false),
  };
}

// Diverged runs clipped out of the loss chart's y range: their values above CLIP_HEADROOM times the
// highest loss of the other runs are left out (a diverging loss reaches 1e38 and would flatten
// every other curve). Returns the runs clipped, each with the x it diverged at.
export function clipDiverged(runs, curves, axis) {
  const diverged = runs.map((run, i) => (run.job.status === "diverged" ? i : -1)).filter((i) => i >= 0);
  const healthy = runs.map((_, i) => i).filter((i) => !diverged.includes(i));
  const clipped = diverged.map((i) => {
    const { points } = runs[i];
    const step = (points.length ? Math.max(...points.map((p) => p.step ?? 0)) : 0) + 1;
    return { index: i, step, x: stepToX(runs[i], axis)(step, null), ceiling: null };
  });
  if (!diverged.length || !healthy.length) return clipped;
  const highest = Math.max(
    ...healthy.flatMap((i) => LOSS_CURVES.flatMap(({ key }) => curves[i][key]?.ys ?? [])).filter((v) => v !== null && Number.isFinite(v)),
  );
  if (!Number.isFinite(highest)) return clipped;
  const ceiling = highest * CLIP_HEADROOM;
  for (const entry of clipped) {
    entry.ceiling = ceiling;
    for (const { key } of LOSS_CURVES) {
      const c = curves[entry.index][key];
      if (c) c.ys = c.ys.map((v) => (v !== null && v > ceiling ? null : v));
    }
  }
  return clipped;
}

// The label of a group: its first run's name without the seed it was repeated with.
export function groupLabel(group) {
  const base = jobLabel(group.runs[0].job).replace(/( · seed \d+)+$/, "");
  return `${base} (${group.runs.length} seeds)`;
}

// The series of one chart: {tables: [[xs, ys]], series, bands, groups}. Grouped runs (seedGroups)
// are a mean line between its min and max lines, filled; the other runs a line each.
export function chartSeries(runs, curves, families, { grouped = true } = {}) {
  const groups = grouped ? seedGroups(runs) : [];
  const inGroup = new Map();
  groups.forEach((group, g) => group.runs.forEach((run) => inGroup.set(run, g)));
  const tables = [], series = [], bands = [];
  const add = (table, spec) => {
    tables.push(table);
    series.push(spec);
    return series.length; // uPlot's index of the series (0 is x)
  };
  runs.forEach((run, i) => {
    const color = PALETTE[i % PALETTE.length];
    const g = inGroup.get(run);
    if (g !== undefined) {
      if (groups[g].runs[0] !== run) return; // a group is drawn once, in its first run's colour
      const label = groupLabel(groups[g]);
      for (const family of families) {
        const members = groups[g].runs.map((member) => curves[runs.indexOf(member)][family.key]).filter(Boolean);
        if (!members.length) continue;
        const b = band(members);
        const edge = { stroke: withAlpha(color, 0.5), width: 1, dash: family.dash };
        const upper = add([b.xs, b.max], { label: `${label} ${family.label} max`, ...edge });
        const lower = add([b.xs, b.min], { label: `${label} ${family.label} min`, ...edge });
        add([b.xs, b.mean], { label: `${label} ${family.label} mean`, stroke: color, width: 2, dash: family.dash });
        bands.push({ series: [upper, lower], fill: withAlpha(color, family.dash ? 0.08 : 0.16) });
      }
      return;
    }
    for (const family of families) {
      const c = curves[i][family.key];
      if (c) add([c.xs, c.ys], { label: `${jobLabel(run.job)} ${family.label}`, stroke: color, width: 2, dash: family.dash });
    }
  });
  return { tables, series, bands, groups };
}
