// The data and what the model makes of it, for the temperature experiments: the [x, y] points
// (training dots filled, validation dots hollow) and the fitted line (linear, redrawn from each
// epoch's w and b) or the network's curve (mlp, from the result).

import { COLORS, dotSeries, LineChart } from "./charts.js";
import { axisTitles } from "./datapoints.js";
import { num } from "./format.js";

export class FitChart {
  // placeholder: shown instead of the chart while the data points are unknown (the book's data
  // arrive with the result; a run on the user's own data has them from the start).
  // ownData: the axes say x and y, not the book's t_u and t_c.
  constructor(container, { fitLabel, placeholder, ownData = false }) {
    const titles = axisTitles(ownData);
    container.dataset.axes = JSON.stringify([titles.x, titles.y]); // uPlot draws them on its canvas
    this.container = container;
    this.fitLabel = fitLabel;
    this.placeholder = placeholder;
    this.train = [];
    this.val = [];
    this.trainLabel = "training points";
    this.fit = null; // {kind: "line", slope, intercept} or {kind: "curve", points}
    this.ghost = null; // the same for a previous run, drawn faintly under this one's
    this.chart = new LineChart(container, {
      height: 300,
      wholeX: false,
      xLabel: titles.x,
      yLabel: titles.y,
      spec: () => this.spec(),
    });
  }

  spec() {
    const series = [dotSeries(this.trainLabel, COLORS.train)];
    if (this.val.length) series.push(dotSeries("validation points", COLORS.val, { hollow: true }));
    series.push({ label: this.fitLabel, stroke: COLORS.fit, width: 2 });
    if (this.ghost) series.push({ label: "previous run", stroke: "rgba(87, 96, 106, 0.45)", width: 2, dash: [6, 4] });
    return { series, yRange: this.yRange() };
  }

  // The y range of the data, so a line that has not converged (or blew up) is clipped instead of
  // squashing the points flat.
  yRange() {
    const ys = [...this.train, ...this.val].map((p) => p[1]);
    if (this.fit?.kind === "curve" && !this.fit.live) ys.push(...this.fit.points.map((p) => p[1]).filter(Number.isFinite));
    if (!ys.length) return null;
    const lo = Math.min(...ys), hi = Math.max(...ys);
    const pad = (hi - lo || 1) * 0.15;
    return [lo - pad, hi + pad];
  }

  // trainLabel: "data points" while a run's split into training and validation is not known yet.
  setPoints(train, val, trainLabel = "training points") {
    this.train = train || [];
    this.val = val || [];
    this.trainLabel = trainLabel;
    this.chart.data = null; // the old columns may not match the new series (a validation split)
    this.chart.rebuild(); // the series and the y range depend on the points
    this.redraw();
  }

  setLine(slope, intercept) {
    this.fit = Number.isFinite(slope) && Number.isFinite(intercept) ? { kind: "line", slope, intercept } : null;
    this.redraw();
  }

  // live: a curve of a network still training is clipped to the data's range, like the line (early
  // on it can be far off); the final one widens the range to show all of it.
  setCurve(points, { live = false } = {}) {
    this.fit = points?.length ? { kind: "curve", points, live } : null;
    if (!live) this.chart.rebuild(); // the y range includes the curve
    this.redraw();
  }

  // A previous run's line or curve, faint under this one's (null: none).
  setGhost(fit) {
    this.ghost = fit;
    this.chart.data = null;
    this.chart.rebuild(); // one more series
    this.redraw();
  }

  redraw() {
    const empty = !this.train.length && !this.val.length;
    this.container.hidden = empty;
    if (this.placeholder) {
      this.placeholder.hidden = !empty;
      const line = this.fit?.kind === "line" ? ` The line so far: y = ${num(this.fit.slope)} · x ${this.fit.intercept < 0 ? "−" : "+"} ${num(Math.abs(this.fit.intercept))}.` : "";
      this.placeholder.textContent = `The data points arrive with the result.${line}`;
    }
    if (empty) return;
    const rows = []; // [x, trainY, valY, fitY, ghostY]
    const nVal = this.val.length;
    for (const [x, y] of this.train) rows.push([x, y, null, null, null]);
    for (const [x, y] of this.val) rows.push([x, null, y, null, null]);
    if (this.fit?.kind === "curve") for (const [x, y] of this.fit.points) rows.push([x, null, null, y, null]);
    if (this.ghost?.kind === "curve") for (const [x, y] of this.ghost.points) rows.push([x, null, null, null, y]);
    const points = rows.length;
    for (const [column, fit] of [[3, this.fit], [4, this.ghost]]) {
      if (fit?.kind === "line" && points) for (const row of rows) row[column] = fit.slope * row[0] + fit.intercept;
    }
    rows.sort((a, b) => a[0] - b[0]);
    const columns = [rows.map((r) => r[0]), rows.map((r) => r[1])];
    if (nVal) columns.push(rows.map((r) => r[2]));
    columns.push(rows.map((r) => r[3]));
    if (this.ghost) columns.push(rows.map((r) => r[4]));
    this.chart.setData(columns);
  }
}
