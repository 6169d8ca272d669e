// The start page's preview of a line fit, drawn again on its run's page (issue 13, "Race on one
// surface"): the path the browser worked out before Train, faint under the path the server's run
// took, with a legend and how far apart the two end.
//
// Nothing travels from the start page: the preview is computed again here from the run's own
// params and data with the start page's call (linearpreview.js's previewOfParams), which gives the
// same numbers for the same inputs.

import { PREVIEW_BAND } from "./contour.js";
import { el, num } from "./format.js";
import { previewAfter, previewOfParams, previewPath } from "./linearpreview.js";

// Whether the preview stands for this run; else why not (said under the surface).
function whyNotPreviewed(job, points) {
  const params = job.params ?? {};
  if (job.parent_id) return "A continued run starts where its parent was: the start page's preview is not drawn.";
  if (params.lr_finder) return "A learning-rate range test has no path to preview.";
  const changed = (job.changes ?? []).flatMap((change) => Object.keys(change.params)).filter((name) => name !== "epochs");
  if (changed.length) {
    return `This run's ${[...new Set(changed)].join(", ")} changed while it ran; the preview follows one set of settings, so it is not drawn.`;
  }
  if (!points || points.length < 2) return null; // the book's points come with /api/kinds: shown then
  return "";
}

// The largest relative difference of w and b: how far apart two ends are, whatever the scale.
export function relativeApart(a, b) {
  const rel = (x, y) => (x === y ? 0 : Math.abs(x - y) / Math.max(Math.abs(x), Math.abs(y)));
  return Math.max(rel(a.w, b.w), rel(a.b, b.b));
}

export class RunPreview {
  // surface: the run page's LossSurfaceMap; caption: its figure's figcaption (the legend and the note go at its end).
  constructor(surface, caption) {
    this.surface = surface;
    this.run = null; // previewRun's answer for this run
    this.key = null; // what it was computed from
    this.points = null;
    this.legend = el("ul", { class: "surface-legend", style: "list-style: none; padding-left: 0; margin: 0.3rem 0; display: flex; flex-wrap: wrap; gap: 0.3rem 1rem", dataset: { surfaceLegend: "" }, hidden: true },
      el("li", {}, el("span", { class: "swatch", style: "background:#fff; box-shadow: 0 0 0 1px #000", "aria-hidden": "true" }), "this run (server)"),
      el("li", {}, el("span", { class: "swatch", style: `background: ${PREVIEW_BAND}`, "aria-hidden": "true" }), "preview (browser)"));
    this.note = el("span", { class: "help", style: "display: block", dataset: { runPreviewNote: "" }, "aria-live": "polite", hidden: true });
    caption.append(this.legend, this.note);
    window.playgroundRunPreview = this; // for the tests
  }

  // The run as the page knows it now; `points` (the data it fits, as the start page had them) when
  // they are known, else the ones given before.
  update(job, points = this.points) {
    this.points = points;
    const why = whyNotPreviewed(job, points);
    if (why === null) return;
    if (why) {
      this.clear(why);
      return;
    }
    const params = job.params;
    const key = JSON.stringify([params.input_scale, params.optimizer, params.lr, params.epochs, params.init_w, params.init_b, points.length, points[0], points.at(-1)]);
    if (key !== this.key) {
      this.key = key;
      this.run = previewOfParams(params, points);
      const { ws, bs } = previewPath(this.run);
      this.surface.setPreviewPath(ws, bs);
    }
    this.legend.hidden = false;
    this.say(job);
  }

  clear(why) {
    this.run = null;
    this.key = null;
    this.surface.setPreviewPath(null, null);
    this.legend.hidden = true;
    this.note.textContent = why;
    this.note.hidden = false;
    delete this.note.dataset.apart;
  }

  // Where the preview ends, and once the run has ended, how far from the run's own end.
  say(job) {
    const run = this.run;
    const params = job.params;
    const parts = [];
    const result = job.result;
    const epochsRun = result?.epochs_run;
    if (run.diverged) parts.push(`The preview blows up at epoch ${run.steps + 1}.`);
    else if (run.truncated) parts.push(`The preview covers the first ${run.steps.toLocaleString("en")} of ${params.epochs.toLocaleString("en")} epochs.`);
    const there = Number.isInteger(epochsRun) ? previewAfter(run, epochsRun) : null;
    const ended = there && Number.isFinite(result.w) && Number.isFinite(result.b);
    if (ended) {
      const apart = relativeApart(there, { w: result.w, b: result.b });
      const where = epochsRun < params.epochs ? ` where the run stopped (epoch ${epochsRun.toLocaleString("en")})` : "";
      parts.push(
        `The preview and the run end ${apart === 0 ? "exactly together" : `${apart.toExponential(1)} apart (relative)`}${where}: ` +
        `w = ${num(there.w, 7)} and ${num(result.w, 7)}, b = ${num(there.b, 7)} and ${num(result.b, 7)}.`,
      );
      Object.assign(this.note.dataset, { apart: String(apart), previewW: String(there.w), previewB: String(there.b) });
    } else {
      delete this.note.dataset.apart;
      if (!run.diverged && !result) parts.push(`The preview ends at w = ${num(run.final.w)}, b = ${num(run.final.b)}; the run's end is compared when it gets there.`);
    }
    if ((params.val_fraction ?? 0) > 0) {
      parts.push("The run holds out validation points drawn with its seed; the preview, as on the start page, trains on all of them, so its path differs a little.");
    }
    this.note.textContent = parts.join(" ");
    this.note.hidden = parts.length === 0;
  }
}
