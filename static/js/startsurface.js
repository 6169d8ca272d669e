// The start page's loss surface for the line fit: the start (init_w, init_b) as a handle to drag
// (mouse, touch, or the arrow keys), and the path the form's settings take from it, computed in the
// browser with the server's update rules (linearpreview.js) and redrawn within the frame.
//
// The handle writes init_w and init_b into the form's own inputs (rounded to what a pixel means
// at this zoom), so the preview always starts from exactly what Train sends.

import { LossSurfaceMap } from "./contour.js";
import { el, num } from "./format.js";
import { previewOfParams, previewPath } from "./linearpreview.js";

const KEY_STEP = 0.02; // an arrow key moves the start by this share of the window (Shift: 10 times)

class StartSurfaceMap extends LossSurfaceMap {
  constructor(container, readout, onMove) {
    super(container, readout);
    this.onMove = onMove;
    this.start = null; // {w, b}
    this.focused = false;
    this.dragging = false;
    const canvas = this.canvas;
    canvas.tabIndex = 0;
    canvas.setAttribute("aria-label", "Loss surface over w and b. The start point of gradient descent: drag it, or move it with the arrow keys");
    canvas.setAttribute("aria-describedby", container.dataset.describedBy ?? "");
    // The surface takes the finger (no page scroll or zoom while dragging on it).
    canvas.style.touchAction = "none";
    canvas.style.cursor = "crosshair";
    canvas.addEventListener("pointerdown", (event) => {
      if (!this.view || event.button > 0) return;
      canvas.setPointerCapture(event.pointerId);
      this.dragging = true;
      canvas.focus({ preventScroll: true });
      this.moveToEvent(event);
      event.preventDefault();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (this.dragging) this.moveToEvent(event);
    });
    const end = (event) => {
      if (!this.dragging) return;
      this.dragging = false;
      if (canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("keydown", (event) => this.key(event));
    canvas.addEventListener("focus", () => { this.focused = true; this.schedule(); });
    canvas.addEventListener("blur", () => { this.focused = false; this.schedule(); });
  }

  // The value a pixel spans here, as a round number of decimals: a dragged start reads 3.25, not 3.2471862.
  rounded(value, span) {
    const pixel = span / Math.max(100, this.cssSize?.width ?? 500);
    const decimals = Math.max(0, Math.min(8, Math.ceil(-Math.log10(pixel))));
    return Number(value.toFixed(decimals));
  }

  moveToEvent(event) {
    const rect = this.canvas.getBoundingClientRect();
    const { w, b } = this.fromPx(event.clientX - rect.left, event.clientY - rect.top);
    const v = this.view;
    // Inside the window: the handle cannot be dragged off the map.
    const cw = Math.min(v.w1, Math.max(v.w0, w)), cb = Math.min(v.b1, Math.max(v.b0, b));
    this.onMove(this.rounded(cw, v.w1 - v.w0), this.rounded(cb, v.b1 - v.b0));
  }

  key(event) {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowDown: [0, -1], ArrowUp: [0, 1] };
    const move = moves[event.key];
    if (!move || !this.view || !this.start) return;
    event.preventDefault();
    const v = this.view;
    const factor = (event.shiftKey ? 10 : 1) * KEY_STEP;
    const w = this.start.w + move[0] * factor * (v.w1 - v.w0);
    const b = this.start.b + move[1] * factor * (v.b1 - v.b0);
    this.onMove(this.rounded(w, v.w1 - v.w0), this.rounded(b, v.b1 - v.b0));
  }

  // The start and the previewed path from it (ws, bs: the states each epoch starts from, then the
  // final one). A start the keyboard moved out of the window frames the window again.
  setPreview(start, ws, bs) {
    this.start = start;
    const v = this.view;
    if (v && !(start.w >= v.w0 && start.w <= v.w1 && start.b >= v.b0 && start.b <= v.b1)) {
      this.view = null;
      this.background = null;
    }
    this.setPath(ws, bs);
    this.setUpTo(ws.length - 1, "end"); // the last point is where the run ends, not "now"
  }

  drawPath(ctx) {
    super.drawPath(ctx);
    if (!this.start || !this.view) return;
    // The handle: a ring round the path's start marker, orange while it has the keyboard's focus.
    const [x, y] = this.toPx(this.start.w, this.start.b);
    ctx.save();
    ctx.lineWidth = this.focused ? 3 : 1.5;
    ctx.strokeStyle = this.focused ? "#E69F00" : "rgba(255,255,255,0.9)";
    ctx.beginPath();
    ctx.arc(x, y, 11, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.restore();
  }

  defaultReadout() {
    return this.start ? `start: w = ${num(this.start.w)}, b = ${num(this.start.b)}` : "";
  }
}

// Mounts the surface in `box`. getState() gives {params, points} of the form now (params null when
// a field does not parse); setStart(w, b) writes the start into the form.
export class StartSurface {
  constructor({ getState, setStart }) {
    const box = el("div", { class: "field field-wide start-surface", dataset: { field: "start" }, hidden: true });
    this.box = box;
    this.getState = getState;
    this.setStart = setStart;
    this.dataKey = null;
    const readout = el("span", { dataset: { startReadout: "" } });
    this.note = el("p", { class: "help", id: "start-surface-note", dataset: { previewNote: "" }, "aria-live": "polite" });
    const surface = el("div", { class: "surface", dataset: { startSurface: "", describedBy: "start-surface-note" } });
    box.replaceChildren(
      el("figure", {},
        surface,
        el("figcaption", {}, readout, el("br"),
          "Where gradient descent starts (the circle) and the path these settings take from it, worked out in your browser " +
          "with the server's update rules; the cross is the minimum. Drag the start, tap a spot, or focus the map and use the arrow keys (Shift: bigger steps).")),
      this.note,
    );
    this.map = new StartSurfaceMap(surface, readout, (w, b) => this.setStart(w, b)); // the form's input event updates
    this.preview = null;
    window.playgroundStart = this; // for the tests: the preview as computed
  }

  // Under the init_b field of a freshly rendered form (linear), or hidden when there is none.
  place(fieldsBox) {
    const after = fieldsBox.querySelector('[data-field="init_b"]');
    this.box.hidden = !after;
    if (!after) return;
    after.after(this.box);
    this.dataKey = null;
    this.update();
  }

  update() {
    if (this.box.hidden) return;
    const { params, points } = this.getState();
    const problem = whyNoPreview(params, points);
    if (problem) {
      this.preview = null;
      this.note.textContent = problem;
      this.box.dataset.preview = "none";
      return;
    }
    // A new surface (other points or input scale) is framed anew; a new start or lr keeps the window.
    const key = JSON.stringify([params.input_scale, points.length, points[0], points.at(-1)]);
    if (key !== this.dataKey) {
      this.dataKey = key;
      this.map.setData(points, params.input_scale);
    }
    const run = previewOfParams(params, points);
    this.preview = run;
    const { ws, bs } = previewPath(run);
    this.map.setPreview({ w: params.init_w, b: params.init_b }, ws, bs);
    const parts = [];
    if (run.diverged) parts.push(`The preview blows up at epoch ${run.steps + 1}: the steps overshoot (try a smaller lr).`);
    else if (run.truncated) parts.push(`The preview shows the first ${run.steps.toLocaleString("en")} of ${params.epochs.toLocaleString("en")} epochs.`);
    else parts.push(`After ${run.steps.toLocaleString("en")} epochs: w = ${num(run.final.w)}, b = ${num(run.final.b)}, loss = ${num(run.losses.at(-1))}.`);
    if (params.val_fraction > 0) parts.push("The run holds out validation points drawn with its seed; the preview trains on all of them, so its path differs a little.");
    this.note.textContent = parts.join(" ");
    this.box.dataset.preview = run.diverged ? "diverged" : "ok";
    this.box.dataset.previewW = String(run.final.w); // for the tests
    this.box.dataset.previewB = String(run.final.b);
  }
}

function whyNoPreview(params, points) {
  if (!params) return "The preview waits for the form's values to parse.";
  if (!points || points.length < 2) return "The preview needs at least two data points.";
  for (const name of ["lr", "epochs", "input_scale", "init_w", "init_b"]) {
    if (typeof params[name] !== "number" || !Number.isFinite(params[name])) return `The preview needs a number in ${name}.`;
  }
  if (!(params.lr > 0) || !(params.input_scale > 0) || params.epochs < 1) return "The preview needs lr, input_scale and epochs above 0.";
  if (params.lr_finder) return "A learning-rate range test has no path to preview.";
  return null;
}
