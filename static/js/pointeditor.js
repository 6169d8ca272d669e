// The start page's chart of the points a linear or mlp run fits, where the learner draws their own.
//
//   mouse:    click an empty spot to add a point there; drag a point to move it; click a point to
//             pick it, then Delete or "Remove point"; a right-click on a point removes it.
//   touch:    tap to add; drag a point to move it (elsewhere a drag scrolls the page as usual);
//             tap a point to pick it, then "Remove point".
//   keyboard: Tab to the chart; ] and [ (or Page Down / Page Up) pick the next point to the right
//             or left; the arrow keys move it (with Shift ten times as far); Delete removes it;
//             + (or Insert) adds one in the middle; "Add a point" does too.
//
// The chart edits the data box (a textarea named `data`, which the form reads); typing or pasting
// into the box redraws the chart. While the box is empty the chart shows the book's readings; the
// first edit starts from a copy of them. uPlot (static/vendor) draws; the rest is here.

import { COLORS, dotSeries } from "./charts.js";
import { axisTitles, parsePoints, pointsToText } from "./datapoints.js";
import { el, num } from "./format.js";

const HIT_PX = { mouse: 10, pen: 14, touch: 22 }; // how near a pointer must be to take a point
const CLICK_SLOP_PX = 6; // a press that moves less than this is a click (adds a point), not a drag
const KEY_STEPS = 100; // an arrow key moves a point by 1/100 of the axis range (Shift: 1/10)

export class PointEditor {
  // textarea: the data box; errorNode: the field's error message; bookPoints: the book's readings;
  // max: the server's limit; onSubmit: "Fit these points".
  constructor(box, { textarea, errorNode, bookPoints, max, onSubmit }) {
    this.box = box;
    this.textarea = textarea;
    this.errorNode = errorNode;
    this.bookPoints = bookPoints ?? [];
    this.max = max ?? Infinity;
    this.points = null; // the learner's [x, y] points; null: the book's
    this.selected = null; // index into points of the picked one
    this.drag = null; // {pointerId, index, x0, y0, moved} while a point is pressed
    this.press = null; // {pointerId, x0, y0} while an empty spot is pressed
    this.plot = null;
    this.ownAxes = null; // the titles the plot was built with

    const helpId = `${textarea.id}-gestures`;
    this.status = el("p", { class: "point-status", "aria-live": "polite", dataset: { pointStatus: "" } });
    this.chartBox = el("div", {
      class: "point-chart",
      tabindex: "0",
      role: "application",
      "aria-roledescription": "editable scatter plot",
      "aria-label": "The points to fit",
      "aria-describedby": helpId,
      dataset: { pointChart: "" },
    });
    const button = (label, attrs, onclick) => el("button", { type: "button", class: "small", ...attrs, onclick }, label);
    this.addButton = button("Add a point", { dataset: { addPoint: "" } }, () => this.addAtCentre());
    this.removeButton = button("Remove point", { dataset: { removePoint: "" }, disabled: true }, () => this.removeSelected());
    this.clearButton = button("Remove all", { dataset: { clearPoints: "" } }, () => this.edit(() => (this.points = [])));
    this.bookButton = button("Use the book's data", { dataset: { bookPoints: "" } }, () => this.useBook());
    this.fitButton = el("button", { type: "button", class: "primary small", dataset: { fitPoints: "" }, onclick: onSubmit }, "Fit these points");
    box.replaceChildren(
      this.status,
      this.chartBox,
      el("div", { class: "button-row point-buttons", role: "group", "aria-label": "Edit the points" },
        this.addButton, this.removeButton, this.clearButton, this.bookButton, this.fitButton),
      el("p", { class: "help point-gestures", id: helpId },
        "Click or tap the chart to add a point, drag a point to move it; click or tap a point to pick it, then ",
        el("kbd", {}, "Delete"), " or Remove point (a right-click removes it at once). Keys: ",
        el("kbd", {}, "]"), " ", el("kbd", {}, "["), " pick the next or previous point, arrows move it (",
        el("kbd", {}, "Shift"), ": further), ", el("kbd", {}, "+"), " adds one."),
    );

    this.chartBox.addEventListener("keydown", (event) => this.onKey(event));
    textarea.addEventListener("input", () => {
      if (!this.writing) this.readBox();
    });
    this.resizeObserver = new ResizeObserver(() => this.fitWidth());
    this.resizeObserver.observe(this.chartBox);
    this.readBox({ quiet: true });
  }

  destroy() {
    this.resizeObserver.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }

  shown() {
    return this.points ?? this.bookPoints;
  }

  // ---- the data box ------------------------------------------------------------------------------

  // The box's points, drawn; a box that does not parse is said by the field and the chart keeps
  // the last points that did.
  readBox({ quiet = false } = {}) {
    try {
      const own = this.textarea.value.trim() !== "";
      const points = parsePoints(this.textarea.value, { min: 0, max: this.max, own });
      this.points = points;
      if (own) this.textarea.dataset.own = "true";
      else delete this.textarea.dataset.own;
      this.selected = null;
      this.showError("");
      this.fitRanges();
      this.draw();
    } catch (error) {
      if (!quiet || this.textarea.value.trim()) this.showError(error.message);
      this.draw();
    }
  }

  showError(message) {
    this.errorNode.textContent = message;
    this.errorNode.hidden = !message;
    if (message) this.textarea.setAttribute("aria-invalid", "true");
    else this.textarea.removeAttribute("aria-invalid");
    this.box.dataset.boxError = message ? "true" : "false";
  }

  // After an edit on the chart: the box says the points, and the form hears of it (the address).
  commit({ grow = true } = {}) {
    this.writing = true;
    if (this.points === null) {
      this.textarea.value = "";
      delete this.textarea.dataset.own;
    } else {
      this.textarea.value = pointsToText(this.points);
      this.textarea.dataset.own = "true";
    }
    this.textarea.dispatchEvent(new Event("input", { bubbles: true }));
    this.writing = false;
    this.showError("");
    this.fitRanges({ grow });
    this.draw();
  }

  // An edit of the learner's points: the first one starts from the book's.
  edit(change) {
    if (this.points === null) this.points = this.bookPoints.map(([x, y]) => [x, y]);
    change();
    this.commit();
  }

  useBook() {
    this.points = null;
    this.selected = null;
    this.commit({ grow: false });
    this.chartBox.focus();
  }

  addAtCentre() {
    const x = this.round((this.xRange[0] + this.xRange[1]) / 2, "x");
    const y = this.round((this.yRange[0] + this.yRange[1]) / 2, "y");
    this.edit(() => {
      this.points.push([x, y]);
      this.selected = this.points.length - 1;
    });
    this.chartBox.focus();
  }

  removeSelected() {
    if (this.selected === null) return;
    const order = this.order();
    const at = order.indexOf(this.selected);
    const removed = this.selected;
    this.edit(() => {
      this.points.splice(removed, 1);
      // The next point to the right is picked, or the one before it: Delete again goes on.
      const next = order[at + 1] ?? order[at - 1];
      this.selected = next === undefined ? null : next > removed ? next - 1 : next;
    });
    this.chartBox.focus();
  }

  // ---- axes ----------------------------------------------------------------------------------------

  // The ranges the chart shows: the points' with a margin. grow: an edit on the chart only widens
  // them to take in a point near or past an edge, so the points stay where the learner put them
  // (a drag waits for the release); new points in the box are fitted anew.
  fitRanges({ grow = false } = {}) {
    const points = this.shown();
    const range = (values, current) => {
      if (!values.length) return current ?? [0, 100];
      let lo = values[0], hi = lo;
      for (const v of values) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (current && (grow || values.length < 2)) {
        const span = current[1] - current[0];
        const edge = span * 0.03;
        return [lo < current[0] + edge ? lo - span * 0.12 : current[0], hi > current[1] - edge ? hi + span * 0.12 : current[1]];
      }
      const span = hi - lo || Math.abs(lo) || 1;
      return [lo - span * 0.12, hi + span * 0.12];
    };
    this.xRange = range(points.map((p) => p[0]), this.xRange);
    this.yRange = range(points.map((p) => p[1]), this.yRange);
    this.chartBox.dataset.xRange = JSON.stringify(this.xRange); // for the tests
    this.chartBox.dataset.yRange = JSON.stringify(this.yRange);
  }

  // A value from the pointer, to a 500th of the axis range (a tidy data box, not 17 digits).
  round(value, axis) {
    const [lo, hi] = axis === "x" ? this.xRange : this.yRange;
    const exponent = Math.floor(Math.log10((hi - lo) / 500));
    const decimals = Math.max(0, -exponent);
    const step = 10 ** exponent;
    return Number((Math.round(value / step) * step).toFixed(Math.min(decimals, 20)));
  }

  // ---- the plot --------------------------------------------------------------------------------

  width() {
    return Math.max(240, Math.floor(this.chartBox.clientWidth || 600));
  }

  height() {
    return window.matchMedia("(max-width: 600px)").matches ? 230 : 290;
  }

  fitWidth() {
    if (this.plot && Math.abs(this.plot.width - this.width()) > 1) this.plot.setSize({ width: this.width(), height: this.height() });
  }

  // Indices of the shown points sorted by x (uPlot draws x in order; ] and [ walk it).
  order() {
    const points = this.shown();
    return points.map((_, i) => i).sort((a, b) => points[a][0] - points[b][0] || a - b);
  }

  build() {
    const titles = axisTitles(this.points !== null);
    this.plot?.destroy();
    this.ownAxes = this.points !== null;
    // uPlot draws the axis titles on its canvas: a screen reader (and a test) reads them here.
    this.chartBox.setAttribute("aria-label", `The points to fit: ${titles.x} across, ${titles.y} up`);
    this.chartBox.dataset.axes = JSON.stringify([titles.x, titles.y]);
    this.plot = new uPlot(
      {
        width: this.width(),
        height: this.height(),
        scales: { x: { time: false, range: () => this.xRange }, y: { range: () => this.yRange } },
        axes: [
          { label: titles.x, labelSize: 20, size: 40 },
          { label: titles.y, labelSize: 20, size: 56 },
        ],
        series: [{}, dotSeries(this.points === null ? "the book's readings" : "your points", COLORS.train, { size: 9 })],
        cursor: { drag: { x: false, y: false, setScale: false }, points: { show: false }, x: false, y: false },
        legend: { show: false },
        hooks: { draw: [(u) => this.drawSelection(u)] },
      },
      this.columns(),
      this.chartBox,
    );
    this.wirePointer(this.plot.over);
  }

  columns() {
    const points = this.shown();
    const order = this.order();
    return [order.map((i) => points[i][0]), order.map((i) => points[i][1])];
  }

  draw() {
    if (!this.plot || this.ownAxes !== (this.points !== null)) this.build();
    else this.plot.setData(this.columns(), true);
    const points = this.shown();
    this.chartBox.dataset.points = String(points.length); // for the tests
    this.chartBox.dataset.own = String(this.points !== null);
    this.chartBox.dataset.selected = this.selected === null ? "" : String(this.selected);
    this.showStatus();
  }

  drawSelection(u) {
    if (this.selected === null) return;
    const point = this.shown()[this.selected];
    if (!point) return;
    const ratio = uPlot.pxRatio || 1;
    const x = u.valToPos(point[0], "x", true);
    const y = u.valToPos(point[1], "y", true);
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = COLORS.val;
    ctx.lineWidth = 2.5 * ratio;
    ctx.beginPath();
    ctx.arc(x, y, 9 * ratio, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.restore();
  }

  showStatus() {
    const points = this.shown();
    const own = this.points !== null;
    let text = own
      ? `Your ${points.length} point${points.length === 1 ? "" : "s"}${points.length < 2 ? ": a fit needs at least 2" : ""}.`
      : `The book's ${points.length} readings (t_u, t_c). Click to add a point or drag one to use your own; or paste yours into the data box.`;
    if (this.selected !== null && points[this.selected]) {
      const [x, y] = points[this.selected];
      text += ` Picked: point ${this.selected + 1}, x = ${num(x, 6)}, y = ${num(y, 6)}.`;
    }
    this.status.textContent = text;
    this.removeButton.disabled = this.selected === null;
    this.clearButton.hidden = own && points.length === 0;
    this.bookButton.hidden = !own;
    this.fitButton.hidden = !own;
  }

  select(index) {
    this.selected = index;
    this.draw();
  }

  // ---- pointer ---------------------------------------------------------------------------------

  local(event) {
    const rect = this.plot.over.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  // The index of the shown point nearest [left, top] (CSS pixels in the plot), within reach.
  hit([left, top], pointerType = "mouse") {
    const reach = HIT_PX[pointerType] ?? HIT_PX.mouse;
    let best = null, bestDistance = reach;
    this.shown().forEach(([x, y], i) => {
      const distance = Math.hypot(this.plot.valToPos(x, "x") - left, this.plot.valToPos(y, "y") - top);
      if (distance <= bestDistance) {
        best = i;
        bestDistance = distance;
      }
    });
    return best;
  }

  valueAt([left, top]) {
    return [this.round(this.plot.posToVal(left, "x"), "x"), this.round(this.plot.posToVal(top, "y"), "y")];
  }

  wirePointer(over) {
    over.style.touchAction = "pan-y pinch-zoom";
    // A touch on a point drags it; anywhere else the page scrolls as it would.
    over.addEventListener("touchstart", (event) => {
      const touch = event.touches[0];
      if (touch && this.hit(this.local(touch), "touch") !== null) event.preventDefault();
    }, { passive: false });
    over.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      event.preventDefault(); // no text selection; focus is given below
      this.chartBox.focus({ preventScroll: true });
      const at = this.local(event);
      const index = this.hit(at, event.pointerType);
      if (index === null) {
        this.press = { pointerId: event.pointerId, x0: at[0], y0: at[1] };
        return;
      }
      this.drag = { pointerId: event.pointerId, index, x0: at[0], y0: at[1], moved: false };
      over.setPointerCapture(event.pointerId);
      this.select(index);
    });
    over.addEventListener("pointermove", (event) => {
      const drag = this.drag;
      if (!drag || drag.pointerId !== event.pointerId) return;
      const at = this.local(event);
      if (!drag.moved && Math.hypot(at[0] - drag.x0, at[1] - drag.y0) < 3) return;
      if (this.points === null) this.points = this.bookPoints.map(([x, y]) => [x, y]);
      drag.moved = true;
      this.points[drag.index] = this.valueAt(at);
      this.plot.setData(this.columns(), true); // the axes stay: fitRanges waits for the release
      this.showStatus();
    });
    const release = (event) => {
      if (this.drag?.pointerId === event.pointerId) {
        const moved = this.drag.moved;
        this.drag = null;
        if (moved) this.commit();
      } else if (this.press?.pointerId === event.pointerId) {
        const at = this.local(event);
        const still = Math.hypot(at[0] - this.press.x0, at[1] - this.press.y0) < CLICK_SLOP_PX;
        this.press = null;
        if (event.type === "pointerup" && still) this.addAt(at);
      }
    };
    over.addEventListener("pointerup", release);
    over.addEventListener("pointercancel", release);
    over.addEventListener("contextmenu", (event) => {
      const index = this.hit(this.local(event), "mouse");
      if (index === null) return;
      event.preventDefault();
      this.selected = index;
      this.removeSelected();
    });
  }

  addAt(at) {
    const point = this.valueAt(at);
    this.edit(() => {
      this.points.push(point);
      this.selected = this.points.length - 1;
    });
  }

  // ---- keyboard --------------------------------------------------------------------------------

  onKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const order = this.order();
    const at = this.selected === null ? -1 : order.indexOf(this.selected);
    const pick = (i) => this.select(order[Math.max(0, Math.min(order.length - 1, i))] ?? null);
    const key = event.key;
    if (key === "]" || key === "PageDown") pick(at + 1);
    else if (key === "[" || key === "PageUp") pick(at < 0 ? order.length - 1 : at - 1);
    else if (key === "Home") pick(0);
    else if (key === "End") pick(order.length - 1);
    else if (key === "Escape" && this.selected !== null) this.select(null);
    else if (key === "+" || key === "=" || key === "Insert") this.addAtCentre();
    else if ((key === "Delete" || key === "Backspace") && this.selected !== null) this.removeSelected();
    else if (key.startsWith("Arrow")) {
      if (this.selected === null) pick(0);
      else this.nudge(key, event.shiftKey ? 10 : 1);
    } else return;
    event.preventDefault();
  }

  nudge(key, times) {
    const index = this.selected;
    const horizontal = key === "ArrowLeft" || key === "ArrowRight";
    const [lo, hi] = horizontal ? this.xRange : this.yRange;
    const sign = key === "ArrowRight" || key === "ArrowUp" ? 1 : -1;
    const step = ((hi - lo) / KEY_STEPS) * times * sign;
    this.edit(() => {
      const point = this.points[index];
      if (horizontal) point[0] = this.round(point[0] + step, "x");
      else point[1] = this.round(point[1] + step, "y");
    });
  }
}
