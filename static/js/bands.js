// Seeds as bands: runs that differ only in their seed (a run and its repeats) drawn as one mean
// curve with a min–max band, and the spread of their final metrics as mean ± standard deviation.
//
// A run's seed draws its validation split and its initial weights; what the band covers is how much
// of a curve is luck. Runs are on each x (a step, an epoch, a time) where they have a point; where a
// run's history was thinned out (Compare reads at most MAX_POINTS a run) its value between two kept
// points is read off the straight line between them, as the chart draws it.

import { LineChart } from "./charts.js";

// What must be equal for runs to be one group: everything that decides a run but its seed.
export function settingKey(job) {
  const params = Object.fromEntries(Object.entries(job.params ?? {}).filter(([name]) => name !== "data").sort());
  return JSON.stringify([job.kind, params, job.data_points ?? null, job.parent_id ?? null, job.fork_step ?? null]);
}

// [{key, runs}] for each setting that two or more of the runs share with different seeds, in the
// order of their first run; a run of no group is in none.
export function seedGroups(runs) {
  const byKey = new Map();
  for (const run of runs) {
    const key = settingKey(run.job);
    if (!byKey.has(key)) byKey.set(key, []);
    byKey.get(key).push(run);
  }
  return [...byKey.entries()]
    .filter(([, members]) => members.length >= 2 && new Set(members.map((run) => run.job.seed)).size === members.length)
    .map(([key, members]) => ({ key, runs: members }));
}

// The value of a curve (xs ascending, ys with nulls for gaps) at x: the point's own, or the line
// between its neighbours; null outside the curve or across a gap.
export function valueAt(xs, ys, x) {
  let lo = 0, hi = xs.length - 1;
  if (hi < 0 || x < xs[0] || x > xs[hi]) return null;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] <= x) lo = mid;
    else hi = mid;
  }
  if (xs[lo] === x) return ys[lo] ?? null;
  if (xs[hi] === x) return ys[hi] ?? null;
  if (ys[lo] == null || ys[hi] == null) return null;
  return ys[lo] + ((ys[hi] - ys[lo]) * (x - xs[lo])) / (xs[hi] - xs[lo]);
}

// The band of some curves ([{xs, ys}]): on the union of their xs, the mean, lowest and highest of
// the curves that have a value there, and how many do.
export function band(curves) {
  const xs = [...new Set(curves.flatMap((curve) => curve.xs))].sort((a, b) => a - b);
  const mean = [], min = [], max = [], n = [];
  for (const x of xs) {
    const values = curves.map((curve) => valueAt(curve.xs, curve.ys, x)).filter((v) => v !== null && Number.isFinite(v));
    n.push(values.length);
    if (!values.length) {
      mean.push(null), min.push(null), max.push(null);
      continue;
    }
    mean.push(values.reduce((a, b) => a + b, 0) / values.length);
    min.push(Math.min(...values));
    max.push(Math.max(...values));
  }
  return { xs, mean, min, max, n };
}

// Mean and sample standard deviation (n − 1) of the finite values; null when there are none.
export function meanSd(values) {
  const finite = values.filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  if (!finite.length) return null;
  const mean = finite.reduce((a, b) => a + b, 0) / finite.length;
  const sd = finite.length > 1 ? Math.sqrt(finite.reduce((a, v) => a + (v - mean) ** 2, 0) / (finite.length - 1)) : 0;
  return { mean, sd, n: finite.length };
}

// A LineChart that also fills between pairs of its series: spec().bands = [{series: [upper, lower],
// fill}], with series counted from 1 as uPlot counts them (0 is x). The plot is on its container as
// `uplot`, so a test reads what is drawn.
export class BandChart extends LineChart {
  build() {
    super.build();
    const bands = this.spec().bands ?? [];
    // uPlot reads its bands when it draws, from the options' array it keeps as plot.bands; a plot
    // just made draws first on the next microtask, so bands added now are in its first picture.
    for (const { series, fill } of bands) this.plot.bands.push({ series, fill: () => fill, dir: -1 });
    this.container.uplot = this.plot;
    this.container.dataset.bandCount = String(bands.length);
  }
}
