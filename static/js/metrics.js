// A job's metric history as the charts need it: loss per step, accuracy per epoch, the (w, b) path.
//
// Points come from the metrics endpoint (the history, possibly min/max-downsampled for a long run)
// and then from the SSE stream (live, full resolution). A point already held is skipped, so a
// replayed or overlapping event adds nothing twice.
//
// Smoothing runs on full-resolution points only: over a downsampled history it starts where the
// full-resolution points begin (`fullFrom`), and the page says so.

import { Ema } from "./smoothing.js";

// cifar's epoch-end point carries the epoch's accuracies (and val_loss); batch points do not.
function isEpochEnd(point) {
  return point.train_acc != null || point.val_acc != null;
}

export function rowsToPoints({ columns, rows }) {
  return rows.map((row) => Object.fromEntries(columns.map((name, i) => [name, row[i]])));
}

export class MetricStore {
  constructor() {
    this.steps = [];
    this.train = [];
    this.val = [];
    this.w = [];
    this.b = [];
    this.accEpochs = [];
    this.accSteps = []; // the step at each of those epoch ends
    this.trainAcc = [];
    this.valAcc = [];
    this.lastStep = -Infinity;
    this.lastAccEpoch = -Infinity;
    this.fullFrom = 0; // index of the first full-resolution point
    this.downsampled = null; // {shown, total} when the history was downsampled
    this.alpha = 0;
    this.smoothTrain = [];
    this.smoothVal = [];
    this.emaTrain = new Ema(0);
    this.emaVal = new Ema(0);
    this.hasW = false;
  }

  get length() {
    return this.steps.length;
  }

  // Batches in an epoch, from the steps at the epoch ends held (null before one has ended; a run
  // that starts at `startStep`, a fork, needs two ends to tell).
  stepsPerEpoch(startStep = 0) {
    const ends = this.accSteps;
    if (ends.length >= 2) return ends.at(-1) - ends.at(-2);
    if (ends.length === 1 && !startStep) return ends[0];
    return null;
  }

  // The history from GET /metrics; `downsampled` = {shown, total} when it was thinned out.
  loadHistory(points, downsampled = null) {
    points.sort((p, q) => (p.step ?? 0) - (q.step ?? 0));
    this.append(points);
    if (downsampled) {
      this.downsampled = downsampled;
      this.fullFrom = this.steps.length;
      this.setAlpha(this.alpha);
    }
  }

  // Returns the number of points taken (0 when all were already held).
  append(points) {
    let taken = 0;
    for (const p of points) {
      if (p.step == null) continue;
      if (isEpochEnd(p)) {
        if (p.epoch == null || p.epoch <= this.lastAccEpoch) continue;
        this.lastAccEpoch = p.epoch;
        this.accEpochs.push(p.epoch);
        this.accSteps.push(p.step);
        this.trainAcc.push(p.train_acc ?? null);
        this.valAcc.push(p.val_acc ?? null);
        // Its val_loss belongs on the loss chart, at the step of the epoch's last batch.
        if (p.val_loss != null) {
          if (this.steps.length && this.steps[this.steps.length - 1] === p.step) {
            this.val[this.val.length - 1] = p.val_loss;
            this.smoothVal[this.smoothVal.length - 1] = this.smoothOne(this.emaVal, p.val_loss, this.steps.length - 1);
          } else if (p.step > this.lastStep) {
            this.pushStep(p.step, null, p.val_loss, p);
          }
        }
        taken += 1;
        continue;
      }
      if (p.step <= this.lastStep) continue;
      this.pushStep(p.step, p.train_loss ?? null, p.val_loss ?? null, p);
      taken += 1;
    }
    return taken;
  }

  pushStep(step, train, val, p) {
    this.lastStep = step;
    const index = this.steps.length;
    this.steps.push(step);
    this.train.push(train);
    this.val.push(val);
    if (p.w != null) this.hasW = true;
    this.w.push(p.w ?? null);
    this.b.push(p.b ?? null);
    this.smoothTrain.push(this.smoothOne(this.emaTrain, train, index));
    this.smoothVal.push(this.smoothOne(this.emaVal, val, index));
  }

  smoothOne(ema, value, index) {
    if (index < this.fullFrom) return null;
    return ema.push(value);
  }

  // Recomputes the smoothed curves (the slider moved).
  setAlpha(alpha) {
    this.alpha = alpha;
    this.emaTrain = new Ema(alpha);
    this.emaVal = new Ema(alpha);
    this.smoothTrain = this.train.map((v, i) => this.smoothOne(this.emaTrain, v, i));
    this.smoothVal = this.val.map((v, i) => this.smoothOne(this.emaVal, v, i));
  }

  // The points held after a step (and accuracy points after an epoch), as metric points again.
  pointsAfter(step, epoch) {
    const points = [];
    this.steps.forEach((s, i) => {
      if (s > step) points.push({ step: s, train_loss: this.train[i], val_loss: this.val[i], w: this.w[i], b: this.b[i] });
    });
    this.accEpochs.forEach((e, i) => {
      if (e > epoch) points.push({ step: this.lastStep, epoch: e, train_acc: this.trainAcc[i], val_acc: this.valAcc[i] });
    });
    return points;
  }

  hasVal() {
    return this.val.some((v) => v !== null);
  }

  latest() {
    const i = this.steps.length - 1;
    return i < 0 ? null : { step: this.steps[i], train: this.train[i], val: this.val[i], w: this.w[i], b: this.b[i] };
  }

  // The last known (w, b): the newest point that carries them.
  latestWB() {
    for (let i = this.w.length - 1; i >= 0; i--) {
      if (this.w[i] !== null && this.b[i] !== null) return { w: this.w[i], b: this.b[i] };
    }
    return null;
  }
}
