// The verdict beside a run's status, in words and numbers: the final and best losses (and
// accuracies), the step of the best validation loss, whether the loss has stopped falling (with
// what to try when it has not), and, on the book's settings, the book's printed result beside
// this run's. Pure functions of the job, its metric store and the kind's `book_results`.

import { num, percent } from "./format.js";

// The loss counts as levelled off when it falls by less than this share per 100 steps.
const LEVEL = 0.001;
// A final validation loss this many times its best (with the training loss lower) is overfitting.
const OVERFIT = 1.2;

function indexAtStepOf(store, step) {
  const i = store.steps.indexOf(step);
  return i < 0 ? 0 : i;
}

function lastFinite(values) {
  for (let i = values.length - 1; i >= 0; i -= 1) if (values[i] != null && Number.isFinite(values[i])) return i;
  return -1;
}

function bestIndex(values) {
  let best = -1;
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    if (v != null && Number.isFinite(v) && (best < 0 || v < values[best])) best = i;
  }
  return best;
}

// The step (and value) of the lowest validation loss, or null without a validation split.
export function bestValidation(store) {
  const i = bestIndex(store.val);
  return i < 0 ? null : { step: store.steps[i], loss: store.val[i] };
}

// How fast the training loss still falls at the end: its relative drop per 100 steps over the
// last stretch (100 steps, or a tenth of a shorter run). Null with too few points.
export function trend(store) {
  const end = lastFinite(store.train);
  if (end < 10) return null;
  const endStep = store.steps[end];
  const window = Math.min(100, Math.max(1, Math.floor(endStep / 10)));
  let start = end;
  while (start > 0 && store.steps[start] > endStep - window) start -= 1;
  const before = store.train[start];
  if (before == null || !Number.isFinite(before) || before === 0 || store.steps[start] === endStep) return null;
  const drop = (before - store.train[end]) / Math.abs(before);
  return { per100: (drop * 100) / (endStep - store.steps[start]), step: endStep, loss: store.train[end] };
}

// Does the job have the book's settings? Returns the matching book result (or null).
export function booksRun(job, books) {
  const params = job.params || {};
  return (books || []).find((book) =>
    Object.entries(book.settings).every(([name, values]) => values.some((v) => v === (params[name] ?? null) || (typeof v === "number" && Number(params[name]) === v))),
  ) ?? null;
}

const RESULT_LABELS = { w: "w", b: "b", train_loss: "loss", val_loss: "validation loss", train_acc: "training accuracy", val_acc: "validation accuracy" };

// This run's values beside the book's printed ones, and whether each is within the book result's
// tolerance (so many units of the last printed digit).
export function compareWithBook(result, book) {
  const rows = Object.entries(book.printed).map(([name, printed]) => {
    const digits = (printed.split(".")[1] ?? "").length;
    const value = result?.[name];
    const tolerance = (book.tolerance_units + 0.01) * 10 ** -digits;
    const matched = typeof value === "number" && Math.abs(value - Number(printed)) <= tolerance;
    return { name, label: RESULT_LABELS[name] ?? name, printed, value: typeof value === "number" ? value.toFixed(digits) : "–", matched };
  });
  return { rows, matched: rows.every((row) => row.matched) };
}

function advice(job, slope) {
  const params = job.params || {};
  const tips = ["more epochs"];
  if (job.kind !== "cifar" && typeof params.input_scale === "number" && params.input_scale >= 0.5) tips.push("input_scale 0.1");
  const stable = job.result?.stable_lr;
  if (typeof stable === "number" && typeof params.lr === "number" && params.lr < stable / 10) {
    tips.push(`a larger lr (it is stable up to ${num(stable, 2)})`);
  }
  return slope > 0 ? `try ${tips.join(" or ")}` : "";
}

// The sentences of the verdict: [{text, tone}] where tone is "good", "warn" or "".
export function verdict(job, store, books) {
  const lines = [];
  const over = ["succeeded", "cancelled", "diverged", "failed", "interrupted"].includes(job.status);
  const sofar = over ? "" : "so far ";
  const lead = over ? "Training loss" : "So far: training loss";
  const end = lastFinite(store.train);
  if (end < 0) return lines;
  const at = store.steps[end];
  const unit = job.kind === "cifar" ? "steps" : "epochs";
  const finalVal = lastFinite(store.val);
  let text = `${lead} ${num(store.train[end])} after ${at.toLocaleString()} ${unit}`;
  if (finalVal >= 0) text += `, validation loss ${num(store.val[finalVal])}`;
  const best = bestValidation(store);
  if (best && finalVal >= 0 && best.step !== store.steps[finalVal]) {
    text += `; the best validation loss was ${num(best.loss)} at step ${best.step.toLocaleString()} (marked on the chart)`;
  }
  lines.push({ text: `${text}.`, tone: "" });
  // Validation loss well above its best while the training loss went on down: overfitting.
  if (best && finalVal >= 0 && store.val[finalVal] > OVERFIT * best.loss && store.train[end] < store.train[indexAtStepOf(store, best.step)]) {
    lines.push({
      text: `The validation loss has risen since step ${best.step.toLocaleString()} (${num(best.loss)} → ${num(store.val[finalVal])}) while the training loss went on falling: it is overfitting the training points. Fewer epochs (stop near step ${best.step.toLocaleString()}), ${job.kind === "mlp" ? "fewer hidden units" : "more regularisation"} or more data would generalise better.`,
      tone: "warn",
    });
  }

  if (store.valAcc.length) {
    const last = store.valAcc.length - 1;
    let bestAcc = 0;
    for (let i = 1; i < store.valAcc.length; i += 1) if ((store.valAcc[i] ?? -1) > (store.valAcc[bestAcc] ?? -1)) bestAcc = i;
    let acc = `Validation accuracy ${sofar}${percent(store.valAcc[last])} (training ${percent(store.trainAcc[last])}) after epoch ${store.accEpochs[last]}`;
    if (bestAcc !== last) acc += `; best ${percent(store.valAcc[bestAcc])} after epoch ${store.accEpochs[bestAcc]}`;
    lines.push({ text: `${acc}.`, tone: "" });
  }

  if (job.kind !== "cifar" && job.status !== "diverged") {
    const t = trend(store);
    if (t) {
      const pct = Math.abs(t.per100 * 100);
      if (Math.abs(t.per100) < LEVEL) {
        lines.push({ text: `Converged: the loss changed by less than ${LEVEL * 100}% over the last 100 epochs.`, tone: "good" });
      } else if (t.per100 > 0) {
        const rate = pct >= 0.1 ? pct.toFixed(1) : pct.toPrecision(1);
        const tip = over ? `: not converged; ${advice(job, t.per100)}` : "";
        lines.push({ text: `Still falling ${rate}% per 100 epochs${tip}.`, tone: over ? "warn" : "" });
      } else {
        lines.push({ text: `The loss rose ${pct.toFixed(1)}% per 100 epochs at the end: the steps overshoot; try a smaller lr.`, tone: "warn" });
      }
    }
  }

  const book = booksRun(job, books);
  if (book && job.status === "succeeded") {
    const { rows, matched } = compareWithBook(job.result, book);
    const theirs = rows.map((row) => `${row.label} = ${row.printed.replace("-", "−")}`).join(", ");
    const ours = rows.map((row) => `${row.label} = ${row.value.replace("-", "−")}`).join(", ");
    const draws = book.exact ? "" : "; the book's run had other random draws";
    const how = matched ? `matched (within ${book.tolerance_units} in the last printed digit${draws})` : `not matched${draws ? ` (${draws.slice(2)})` : ""}`;
    lines.push({ text: `These are the book's settings (${book.where}). The book: ${theirs}; this run: ${ours}: ${how}.`, tone: matched ? "good" : "warn", book: true });
  }
  return lines;
}
