// Line charts on uPlot (static/vendor/uplot, loaded as the global `uPlot`): streaming appends,
// a log-scale y axis, drag-to-zoom on x (double-click or "Reset zoom" to undo) and a hover
// read-out in the legend.
//
// Colours come from the Okabe-Ito palette, which stays distinguishable for the common kinds of
// colour blindness; validation curves are also dashed, so colour is never the only cue.

export const COLORS = {
  train: "#0072B2", // blue
  val: "#D55E00", // vermillion
  fit: "#222222",
};
export const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];
export const VAL_DASH = [6, 4];

export function withAlpha(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

// The log axis plots log10(y) on a linear scale and labels it 10^k. uPlot's own log scale finds
// no ticks beyond 1e17 (it caps the digits of a tick), and a diverging loss reaches 1e38.
const DECADE_INCRS = [1, 2, 3, 5, 10, 20, 50, 100];
// Steps and epochs are whole numbers: no ticks at 2.5.
const WHOLE_INCRS = [];
for (let exp = 0; exp <= 9; exp++) for (const m of [1, 2, 5]) WHOLE_INCRS.push(m * 10 ** exp);

function decadeLabel(exponent) {
  if (!Number.isInteger(exponent)) return formatValue(Number((10 ** exponent).toPrecision(6)));
  return exponent >= -3 && exponent <= 4 ? String(Number((10 ** exponent).toPrecision(1))) : `1e${exponent}`;
}

// Ticks of the log axis (in log10 units): whole decades when the view spans more than three; 1, 2
// and 5 of each decade when it spans one to three (a loss from 90 to 2.5 gets 5, 10, 20, 50, not
// just 10); zoomed in within a decade, round values of the loss itself (2.9, 3, 3.1 ...), so the
// axis keeps its labels.
export function logSplits(min, max) {
  if (!Number.isFinite(min) || !Number.isFinite(max) || max <= min) return [];
  if (max - min >= 1 && max - min <= 3) {
    const ticks = [];
    for (let decade = Math.floor(min); decade <= Math.ceil(max); decade++) {
      for (const m of [1, 2, 5]) {
        const e = decade + Math.log10(m);
        if (e >= min && e <= max) ticks.push(e);
      }
    }
    return ticks;
  }
  if (max - min >= 1) {
    const stride = DECADE_INCRS.find((s) => (max - min) / s <= 8) ?? DECADE_INCRS.at(-1);
    const ticks = [];
    for (let e = Math.ceil(min / stride) * stride; e <= max; e += stride) ticks.push(e);
    return ticks;
  }
  const lo = 10 ** min, hi = 10 ** max;
  const raw = (hi - lo) / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi * (1 + 1e-12); v += step) ticks.push(Math.log10(Number(v.toPrecision(12))));
  return ticks;
}

function formatValue(value) {
  if (value === null || value === undefined) return "–";
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-4)) return value.toExponential(3);
  return String(Number(value.toPrecision(5)));
}

// A chart whose options can change (log scale, which series exist) by rebuilding the uPlot.
//   spec(): {series: [{label, stroke, dash, width, points}], xLabel, yLabel, yRange}
//   onPick(x): called with the x of the data point nearest a click or tap (not a drag-to-zoom).
// setMarkers([{x, label, color, dash}]) draws labelled vertical lines (a change of a live
// parameter, a fork, a picked step) over the plot; setSpots([{x, y, label, color}]) rings single
// points (the best validation loss); setCursor(x) draws the replay's position.
export class LineChart {
  constructor(container, { height = 300, spec, log = false, xLabel = "step", yLabel = "", wholeX = true, onPick = null, legend = true }) {
    this.container = container;
    this.legend = legend;
    this.bands = []; // [{x0, x1, label}]: shaded stretches of x
    this.wholeX = wholeX;
    this.height = height;
    this.spec = spec;
    this.log = log;
    this.xLabel = xLabel;
    this.yLabel = yLabel;
    this.data = null;
    this.zoomed = false;
    this.pending = null;
    this.plot = null;
    this.markers = [];
    this.spots = [];
    this.cursorX = null;
    this.markerFrame = null;
    this.onPick = onPick;
    this.resizeObserver = new ResizeObserver(() => this.fitWidth());
    this.resizeObserver.observe(container);
  }

  width() {
    return Math.max(240, Math.floor(this.container.clientWidth || 600));
  }

  chartHeight() {
    return window.matchMedia("(max-width: 600px)").matches ? Math.round(this.height * 0.75) : this.height;
  }

  fitWidth() {
    if (this.plot && Math.abs(this.plot.width - this.width()) > 1) {
      this.plot.setSize({ width: this.width(), height: this.chartHeight() });
    }
  }

  build() {
    const spec = this.spec();
    this.plot?.destroy();
    this.container.replaceChildren();
    const opts = {
      width: this.width(),
      height: this.chartHeight(),
      scales: {
        x: { time: false },
        y: spec.yRange && !this.log ? { range: spec.yRange } : {},
      },
      axes: [
        { label: this.xLabel, labelSize: 20, size: 40, incrs: this.wholeX ? WHOLE_INCRS : undefined },
        this.log
          ? { label: `${this.yLabel} (log scale)`, labelSize: 20, size: 64, splits: (u, axis, min, max) => logSplits(min, max), values: (u, splits) => splits.map(decadeLabel) }
          : { label: this.yLabel, labelSize: 20, size: 64, values: (u, splits) => splits.map(formatValue) },
      ],
      series: [
        { label: this.xLabel, value: (u, v) => formatValue(v) },
        ...spec.series.map((s) => ({
          label: s.label,
          stroke: s.stroke,
          width: s.width ?? 2,
          dash: s.dash,
          fill: s.fill,
          spanGaps: true,
          points: s.points ?? { show: false },
          paths: s.paths,
          show: s.show ?? true,
          value: (u, v) => formatValue(this.log && v !== null ? 10 ** v : v),
        })),
      ],
      cursor: { drag: { x: true, y: false, setScale: true } },
      legend: { show: this.legend, live: true },
      hooks: {
        setScale: [
          (u, key) => {
            if (key !== "x") return;
            const xs = u.data[0];
            if (!xs.length) return;
            const sc = u.scales.x;
            this.zoomed = sc.min > xs[0] || sc.max < xs[xs.length - 1];
            this.container.dispatchEvent(new CustomEvent("zoomchange", { detail: this.zoomed }));
          },
        ],
        draw: [
          (u) => {
            drawBands(u, this.bands);
            drawMarkers(u, this.markers);
            drawSpots(u, this.spots, this.log);
            drawCursor(u, this.cursorX);
          },
        ],
      },
    };
    this.plot = new uPlot(opts, this.prepare(this.data ?? [[], ...spec.series.map(() => [])]), this.container);
    if (this.onPick) this.wirePick(this.plot);
    this.container.dataset.points = String(this.data ? this.data[0].length : 0);
  }

  // On the log axis a value is drawn at log10(value); 0 and negative values become gaps.
  prepare(data) {
    if (!this.log) return data;
    return [data[0], ...data.slice(1).map((ys) => ys.map((y) => (y !== null && y > 0 ? Math.log10(y) : null)))];
  }

  // New data; drawn on the next animation frame, so a burst of events costs one redraw.
  setData(data) {
    this.data = data;
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = null;
      if (!this.plot) this.build();
      else this.plot.setData(this.prepare(this.data), !this.zoomed);
      this.container.dataset.points = String(this.data[0].length);
    });
  }

  setLog(log) {
    this.log = log;
    this.zoomed = false;
    this.build();
  }

  rebuild() {
    this.build();
  }

  setMarkers(markers) {
    const key = JSON.stringify(markers.map(({ x, label }) => ({ x, label })));
    if (key === this.container.dataset.markers) return;
    this.markers = markers;
    this.container.dataset.markers = key; // for the tests
    this.redrawSoon();
  }

  setSpots(spots) {
    const key = JSON.stringify(spots.map(({ x, y, label }) => ({ x, y, label })));
    if (key === this.container.dataset.spots) return;
    this.spots = spots;
    this.container.dataset.spots = key; // for the tests
    this.redrawSoon();
  }

  setBands(bands) {
    this.bands = bands;
    this.container.dataset.bands = JSON.stringify(bands.map(({ x0, x1 }) => [x0, x1])); // for the tests
    this.redrawSoon();
  }

  setCursor(x) {
    if (x === this.cursorX) return;
    this.cursorX = x;
    this.container.dataset.cursor = x === null ? "" : String(x);
    this.redrawSoon();
  }

  redrawSoon() {
    // Redrawn on the next frame, by which a plot just built has drawn once (a redraw before its
    // first draw finds its axes unmeasured); a plot without points draws them with its points.
    if (this.markerFrame) return;
    this.markerFrame = requestAnimationFrame(() => {
      this.markerFrame = null;
      if (this.plot?.data?.[0]?.length) this.plot.redraw(false);
    });
  }

  // A click (or a tap) that is not the end of a drag picks the nearest data point's x.
  wirePick(plot) {
    let down = null;
    plot.over.addEventListener("pointerdown", (event) => (down = [event.clientX, event.clientY]));
    plot.over.addEventListener("click", (event) => {
      if (down && Math.hypot(event.clientX - down[0], event.clientY - down[1]) > 4) return;
      const xs = plot.data[0];
      if (!xs.length) return;
      const left = event.clientX - plot.over.getBoundingClientRect().left;
      const index = plot.posToIdx(left);
      if (xs[index] !== undefined) this.onPick(xs[index]);
    });
  }

  resetZoom() {
    this.zoomed = false;
    if (this.plot && this.data) this.plot.setData(this.prepare(this.data), true);
  }
}

// Shaded stretches of x (e.g. beyond the data), labelled at the top.
function drawBands(u, bands) {
  if (!bands.length) return;
  const ctx = u.ctx;
  const ratio = uPlot.pxRatio || 1;
  const { left, top, width, height } = u.bbox;
  ctx.save();
  ctx.font = `${11 * ratio}px system-ui, sans-serif`;
  for (const band of bands) {
    const x0 = Math.max(left, u.valToPos(band.x0, "x", true));
    const x1 = Math.min(left + width, u.valToPos(band.x1, "x", true));
    if (!(x1 > x0)) continue;
    ctx.fillStyle = "rgba(87, 96, 106, 0.12)";
    ctx.fillRect(x0, top, x1 - x0, height);
    if (band.label) {
      ctx.fillStyle = "#57606a";
      ctx.textAlign = "center";
      ctx.fillText(band.label, (x0 + x1) / 2, top + 12 * ratio);
    }
  }
  ctx.restore();
}

// A ring around each spot's point, labelled beside it.
function drawSpots(u, spots, log) {
  if (!spots.length) return;
  const ctx = u.ctx;
  const ratio = uPlot.pxRatio || 1;
  ctx.save();
  ctx.font = `${11 * ratio}px system-ui, sans-serif`;
  ctx.setLineDash([]);
  for (const spot of spots) {
    if (spot.y === null || (log && spot.y <= 0)) continue;
    const x = u.valToPos(spot.x, "x", true);
    const y = u.valToPos(log ? Math.log10(spot.y) : spot.y, "y", true);
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    ctx.strokeStyle = spot.color ?? "#444";
    ctx.lineWidth = 2 * ratio;
    ctx.beginPath();
    ctx.arc(x, y, 6 * ratio, 0, 2 * Math.PI);
    ctx.stroke();
    if (spot.label) {
      ctx.fillStyle = spot.color ?? "#444";
      ctx.fillText(spot.label, x + 9 * ratio, y - 8 * ratio);
    }
  }
  ctx.restore();
}

// The replay's position: a solid vertical line.
function drawCursor(u, x) {
  if (x === null) return;
  const px = Math.round(u.valToPos(x, "x", true));
  const { top, height } = u.bbox;
  const ctx = u.ctx;
  ctx.save();
  ctx.setLineDash([]);
  ctx.strokeStyle = "#111";
  ctx.lineWidth = 1.5 * (uPlot.pxRatio || 1);
  ctx.beginPath();
  ctx.moveTo(px, top);
  ctx.lineTo(px, top + height);
  ctx.stroke();
  ctx.restore();
}

// Vertical lines at marker.x across the plot, labelled at the top (staggered when they crowd).
function drawMarkers(u, markers) {
  if (!markers.length) return;
  const ctx = u.ctx;
  const ratio = uPlot.pxRatio || 1;
  const { left, top, width, height } = u.bbox;
  ctx.save();
  ctx.font = `${Math.round(11 * ratio)}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  let lastRight = -Infinity;
  let row = 0;
  for (const marker of [...markers].sort((a, b) => a.x - b.x)) {
    const x = Math.round(u.valToPos(marker.x, "x", true));
    if (!(x >= left && x <= left + width)) continue;
    const color = marker.color ?? "#444";
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5 * ratio;
    ctx.setLineDash((marker.dash ?? [4, 3]).map((d) => d * ratio));
    ctx.beginPath();
    ctx.moveTo(x + 0.5, top);
    ctx.lineTo(x + 0.5, top + height);
    ctx.stroke();
    if (!marker.label) continue;
    const textWidth = ctx.measureText(marker.label).width;
    const onLeft = x + 4 * ratio + textWidth > left + width;
    const tx = onLeft ? x - 4 * ratio - textWidth : x + 4 * ratio;
    row = tx < lastRight + 4 * ratio ? (row + 1) % 4 : 0;
    lastRight = Math.max(lastRight, tx + textWidth);
    const ty = top + (2 + row * 14) * ratio;
    ctx.setLineDash([]);
    ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
    ctx.fillRect(tx - 2 * ratio, ty - 1 * ratio, textWidth + 4 * ratio, 13 * ratio);
    ctx.fillStyle = color;
    ctx.fillText(marker.label, tx, ty);
  }
  ctx.restore();
}

// x sorted ascending with its y arrays permuted the same way (uPlot wants sorted x).
export function sortByX(xs, ...columns) {
  const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  return [order.map((i) => xs[i]), ...columns.map((col) => order.map((i) => col[i]))];
}

// Dots without connecting lines, for data points.
export function dotSeries(label, color, { hollow = false, size = 7 } = {}) {
  return {
    label,
    stroke: color,
    width: 1.5,
    paths: () => null,
    points: { show: true, size, stroke: color, fill: hollow ? "#ffffff" : color, width: 1.5 },
  };
}
