// Where a run's curve changes hands: the live changes of its parameters (markers on the charts)
// and, for a fork, its parent's line up to the fork step (drawn faintly underneath its own).

import { api } from "./api.js";
import { num } from "./format.js";
import { MetricStore, rowsToPoints } from "./metrics.js";

// {lr: 0.003, epochs: 200} -> "lr 0.003, epochs 200"
export function changeLabel(params) {
  return Object.entries(params).map(([name, value]) => `${name} ${typeof value === "number" ? num(value) : value}`).join(", ");
}

// The job's list of changes, then those received since that it does not list yet.
export function mergeChanges(listed, received) {
  const key = (change) => `${change.step} ${JSON.stringify(change.params)}`;
  const known = new Set(listed.map(key));
  return [...listed, ...received.filter((change) => !known.has(key(change)))];
}

// The index of the newest step at or before `step` in ascending `steps` (-1: none).
export function indexAtStep(steps, step) {
  let lo = 0, hi = steps.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (steps[mid] <= step) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

// A fork's parent line up to the fork step (and theirs, up the line): {steps, train, val, hasVal, w, b}.
export async function loadParentLine(jobId, forkStep, { maxPoints } = {}) {
  const history = await api.metrics(jobId, { withParent: true, maxPoints });
  const line = new MetricStore();
  line.loadHistory(rowsToPoints(history).filter((point) => point.step <= forkStep));
  return { steps: line.steps, train: line.train, val: line.val, hasVal: line.hasVal(), w: line.w, b: line.b };
}

// uPlot columns [x, first, ...rest] of a fork's own points with its parent's line put in after
// `first`: one x axis for both (the parent's steps, all at or before the fork, come first), each
// series null where the other's points are.
export function withParentColumns([xs, first, ...rest], parent) {
  const before = parent.steps.length;
  const after = xs.length;
  const pad = (values, head, tail) => [...new Array(head).fill(null), ...values, ...new Array(tail).fill(null)];
  const parentSeries = [parent.train, ...(parent.hasVal ? [parent.val] : [])];
  return [
    [...parent.steps, ...xs],
    pad(first, before, 0),
    ...parentSeries.map((values) => pad(values, 0, after)),
    ...rest.map((values) => pad(values, before, 0)),
  ];
}
