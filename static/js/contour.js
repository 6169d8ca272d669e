// The loss surface of the chapter-5 line fit over (w, b), as a filled contour map, with the path
// the parameters took across it.
//
// The loss of y ≈ w * u + b (u = input_scale * x, what the model sees) is a quadratic in (w, b):
//   L(w, b) = (w² Σu² + 2wb Σu + n b² − 2w Σuy − 2b Σy + Σy²) / n
// so six sums over the data points give the whole surface and its minimum exactly, at any
// resolution. Bands are spaced evenly in log10(L − L_min), which turns the long, narrow valley of
// unscaled inputs into visible nested rings; the palette is viridis (readable with colour
// blindness, and in greyscale).

import { num } from "./format.js";

const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];
const BANDS = 16;
// The browser's preview of a run (linearpreview.js) under the run's own white path: a wide band in
// Okabe-Ito's reddish purple, so that where the two agree the white line runs inside it, and where
// they part the band shows on its own.
export const PREVIEW_BAND = "rgba(204, 121, 167, 0.7)";
export const PREVIEW_BAND_WIDTH = 12;
export const MARGIN = { left: 58, right: 12, top: 12, bottom: 42 };

function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}
const RAMP = VIRIDIS.map(hexToRgb);

function rampColor(t) {
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  return RAMP[i].map((c, k) => Math.round(c + f * (RAMP[i + 1][k] - c)));
}

// The sums that define the quadratic, from [x, y] pairs in data units.
export function lossSurface(points, inputScale) {
  let n = 0, su = 0, suu = 0, sy = 0, suy = 0, syy = 0;
  for (const [x, y] of points) {
    const u = inputScale * x;
    n += 1;
    su += u;
    suu += u * u;
    sy += y;
    suy += u * y;
    syy += y * y;
  }
  if (n === 0) return null;
  const loss = (w, b) => (w * w * suu + 2 * w * b * su + n * b * b - 2 * w * suy - 2 * b * sy + syy) / n;
  const det = suu * n - su * su;
  const minimum = Math.abs(det) > 1e-12 * Math.max(1, suu * n)
    ? { w: (suy * n - su * sy) / det, b: (suu * sy - su * suy) / det }
    : { w: 0, b: sy / n };
  return { loss, minimum, minLoss: Math.max(0, loss(minimum.w, minimum.b)) };
}

// Round tick values covering [min, max].
export function niceTicks(min, max, count = 5) {
  const span = max - min;
  if (!(span > 0)) return [min];
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

// The part of segment p0-p1 inside the box (Liang-Barsky), or null. Keeps the direction of a
// segment towards a point at 1e30 (a diverging run) instead of squashing it.
export function clipSegment(x0, y0, x1, y1, box) {
  let t0 = 0, t1 = 1;
  const dx = x1 - x0, dy = y1 - y0;
  const checks = [[-dx, x0 - box.x0], [dx, box.x1 - x0], [-dy, y0 - box.y0], [dy, box.y1 - y0]];
  for (const [p, q] of checks) {
    if (p === 0) {
      if (q < 0) return null;
    } else {
      const r = q / p;
      if (p < 0) { if (r > t1) return null; if (r > t0) t0 = r; }
      else { if (r < t0) return null; if (r < t1) t1 = r; }
    }
  }
  return [x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy];
}

// The (w, b) window around `anchor` (the minimum) and each path's start, taking in the points of
// the paths near them, padded: {w0, w1, b0, b1}, or null with nothing to frame. Points far out (a
// path that flies off) are left outside, which is the point: it overshoots.
export function viewAround(anchor, paths) {
  const starts = paths.filter(({ ws, bs }) => Number.isFinite(ws[0]) && Number.isFinite(bs[0])).map(({ ws, bs }) => ({ w: ws[0], b: bs[0] }));
  const a = anchor ?? starts[0];
  if (!a) return null;
  let w0 = a.w, w1 = a.w, b0 = a.b, b1 = a.b;
  for (const s of starts) {
    w0 = Math.min(w0, s.w); w1 = Math.max(w1, s.w);
    b0 = Math.min(b0, s.b); b1 = Math.max(b1, s.b);
  }
  const spanW = Math.max(w1 - w0, 1e-3 * Math.abs(a.w) || 1e-3, 0.5);
  const spanB = Math.max(b1 - b0, 1e-3 * Math.abs(a.b) || 1e-3, 0.5);
  for (const { ws, bs } of paths) {
    const step = Math.max(1, Math.floor(ws.length / 5000));
    for (let i = 0; i < ws.length; i += step) {
      const w = ws[i], b = bs[i];
      if (w === null || b === null || !Number.isFinite(w) || !Number.isFinite(b)) continue;
      if (Math.abs(w - a.w) > 3 * spanW || Math.abs(b - a.b) > 3 * spanB) continue;
      w0 = Math.min(w0, w); w1 = Math.max(w1, w);
      b0 = Math.min(b0, b); b1 = Math.max(b1, b);
    }
  }
  const padW = Math.max((w1 - w0) * 0.15, spanW * 0.1);
  const padB = Math.max((b1 - b0) * 0.15, spanB * 0.1);
  return { w0: w0 - padW, w1: w1 + padW, b0: b0 - padB, b1: b1 + padB };
}

export class LossSurfaceMap {
  constructor(container, readout) {
    this.container = container;
    this.readout = readout;
    this.canvas = document.createElement("canvas");
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", "Loss surface over w and b with the path of the parameters");
    container.replaceChildren(this.canvas);
    this.surface = null;
    this.ws = [];
    this.bs = [];
    this.kinks = []; // [{w, b, label}]: where a live parameter changed on the path
    this.ghost = null; // a previous run's path {ws, bs}, drawn faintly
    this.previewPath = null; // the browser's preview of this run's path {ws, bs}, faint under it
    this.upTo = null; // the replay's index: the path is drawn bold up to it, faint after
    this.pixels = null; // the path in pixels, thinned, cached per path length and window
    this.view = null;
    this.viewHasPath = false;
    this.background = null;
    this.pending = null;
    this.canvas.addEventListener("mousemove", (event) => this.hover(event));
    this.canvas.addEventListener("mouseleave", () => (this.readout.textContent = this.defaultReadout()));
    new ResizeObserver(() => {
      this.background = null;
      this.schedule();
    }).observe(container);
  }

  setData(points, inputScale) {
    this.surface = points && points.length ? lossSurface(points, inputScale) : null;
    this.view = null;
    this.background = null;
    this.schedule();
  }

  setPath(ws, bs) {
    this.ws = ws;
    this.bs = bs;
    this.pixels = null; // a new path of the same length (the start page's preview) is not the cached one
    // Without the surface there is no minimum to frame: the window follows the path instead. A
    // window framed before the path began (the data came first) is framed again to take in its start.
    if (!this.surface || (!this.viewHasPath && ws.length)) this.view = null;
    if (!this.view) this.background = null;
    this.schedule();
  }

  // A previous run's (w, b) path, faint under this one's.
  setGhost(ws, bs) {
    this.ghost = ws?.length ? { ws, bs } : null;
    this.container.dataset.ghostPoints = String(ws?.length ?? 0); // for the tests
    this.schedule();
  }

  // The path the browser previewed for this run (the start page's, computed again), under its own.
  setPreviewPath(ws, bs) {
    this.previewPath = ws?.length ? { ws, bs } : null;
    this.container.dataset.previewPoints = String(ws?.length ?? 0); // for the tests
    this.schedule();
  }

  // The replay's position (an index into the path), or null for the whole path.
  setUpTo(index, label = null) {
    if (index === this.upTo) return;
    this.upTo = index;
    this.upToLabel = label;
    this.container.dataset.upTo = index === null ? "" : String(index); // for the tests
    this.schedule();
  }

  // Kink markers on the path: the (w, b) where a live change (a new lr) took effect.
  setMarkers(kinks) {
    const same = kinks.length === this.kinks.length && kinks.every((k, i) => k.w === this.kinks[i].w && k.b === this.kinks[i].b && k.label === this.kinks[i].label);
    if (same) return;
    this.kinks = kinks;
    this.container.dataset.kinks = String(kinks.length); // for the tests
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = null;
      this.draw();
    });
  }

  // The (w, b) window: the start, the minimum, and the path near them, padded. A path that runs
  // off to infinity leaves the window, which is the point: it overshoots.
  computeView() {
    const anchor = this.surface?.minimum ?? (this.ws.length ? { w: this.ws.at(-1), b: this.bs.at(-1) } : null);
    return viewAround(anchor, [{ ws: this.ws, bs: this.bs }, ...(this.previewPath ? [this.previewPath] : [])]);
  }

  size() {
    const width = Math.max(260, Math.floor(this.container.clientWidth || 500));
    const height = Math.round(Math.min(420, Math.max(240, width * 0.62)));
    return { width, height };
  }

  toPx(w, b) {
    const { width, height } = this.cssSize;
    const v = this.view;
    const x = MARGIN.left + ((w - v.w0) / (v.w1 - v.w0)) * (width - MARGIN.left - MARGIN.right);
    const y = height - MARGIN.bottom - ((b - v.b0) / (v.b1 - v.b0)) * (height - MARGIN.top - MARGIN.bottom);
    return [x, y];
  }

  fromPx(x, y) {
    const { width, height } = this.cssSize;
    const v = this.view;
    return {
      w: v.w0 + ((x - MARGIN.left) / (width - MARGIN.left - MARGIN.right)) * (v.w1 - v.w0),
      b: v.b0 + ((height - MARGIN.bottom - y) / (height - MARGIN.top - MARGIN.bottom)) * (v.b1 - v.b0),
    };
  }

  drawBackground(ctx) {
    const { width, height } = this.cssSize;
    const plotW = width - MARGIN.left - MARGIN.right;
    const plotH = height - MARGIN.top - MARGIN.bottom;
    const off = document.createElement("canvas");
    off.width = plotW;
    off.height = plotH;
    const octx = off.getContext("2d");
    if (!this.surface) {
      octx.fillStyle = "#eef0f3";
      octx.fillRect(0, 0, plotW, plotH);
      return off;
    }
    const { loss, minLoss } = this.surface;
    const q = new Float64Array(plotW * plotH);
    let qMin = Infinity, qMax = -Infinity;
    const eps = Math.max(minLoss * 1e-9, 1e-12);
    for (let j = 0; j < plotH; j++) {
      for (let i = 0; i < plotW; i++) {
        const { w, b } = this.fromPx(MARGIN.left + i + 0.5, MARGIN.top + j + 0.5);
        const v = Math.log10(Math.max(loss(w, b) - minLoss, 0) + eps);
        q[j * plotW + i] = v;
        if (v < qMin) qMin = v;
        if (v > qMax) qMax = v;
      }
    }
    // Bands over the visible range, but not finer than the neighbourhood of the minimum needs.
    qMin = Math.max(qMin, qMax - 8);
    const band = new Int16Array(q.length);
    for (let k = 0; k < q.length; k++) band[k] = Math.min(BANDS - 1, Math.max(0, Math.floor(((q[k] - qMin) / (qMax - qMin || 1)) * BANDS)));
    const image = octx.createImageData(plotW, plotH);
    for (let j = 0; j < plotH; j++) {
      for (let i = 0; i < plotW; i++) {
        const k = j * plotW + i;
        let [r, g, bl] = rampColor(band[k] / (BANDS - 1));
        // A contour line where the band changes: lighten the pixel.
        const edge = (i + 1 < plotW && band[k + 1] !== band[k]) || (j + 1 < plotH && band[k + plotW] !== band[k]);
        if (edge) [r, g, bl] = [r, g, bl].map((c) => Math.round(c + (255 - c) * 0.55));
        image.data.set([r, g, bl, 255], k * 4);
      }
    }
    octx.putImageData(image, 0, 0);
    this.levels = { qMin, qMax };
    return off;
  }

  draw() {
    const { width, height } = this.size();
    this.cssSize = { width, height };
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = width * dpr;
    this.canvas.height = height * dpr;
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    if (!this.view) {
      this.view = this.computeView();
      this.viewHasPath = this.ws.length > 0;
      this.background = null;
    }
    if (!this.view) {
      this.readout.textContent = "Waiting for the first parameters…";
      return;
    }
    if (!this.background || this.background.width !== width - MARGIN.left - MARGIN.right) {
      this.background = this.drawBackground(ctx);
    }
    ctx.drawImage(this.background, MARGIN.left, MARGIN.top);
    this.drawAxes(ctx);
    this.drawPath(ctx);
    this.container.dataset.pathPoints = String(this.ws.length);
    const v = this.view;
    this.container.dataset.view = [v.w0, v.w1, v.b0, v.b1].map((x) => x.toPrecision(4)).join(" "); // for the tests
    this.readout.textContent = this.defaultReadout();
  }

  drawAxes(ctx) {
    const { width, height } = this.cssSize;
    const v = this.view;
    ctx.strokeStyle = "#555";
    ctx.fillStyle = "#222";
    ctx.font = "12px system-ui, sans-serif";
    ctx.lineWidth = 1;
    ctx.strokeRect(MARGIN.left + 0.5, MARGIN.top + 0.5, width - MARGIN.left - MARGIN.right - 1, height - MARGIN.top - MARGIN.bottom - 1);
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const t of niceTicks(v.w0, v.w1, Math.max(3, Math.floor(width / 90)))) {
      const [x] = this.toPx(t, v.b0);
      ctx.beginPath();
      ctx.moveTo(x, height - MARGIN.bottom);
      ctx.lineTo(x, height - MARGIN.bottom + 4);
      ctx.stroke();
      ctx.fillText(num(t, 3), x, height - MARGIN.bottom + 6);
    }
    ctx.fillText("w", MARGIN.left + (width - MARGIN.left - MARGIN.right) / 2, height - 16);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const t of niceTicks(v.b0, v.b1, 5)) {
      const [, y] = this.toPx(v.w0, t);
      ctx.beginPath();
      ctx.moveTo(MARGIN.left - 4, y);
      ctx.lineTo(MARGIN.left, y);
      ctx.stroke();
      ctx.fillText(num(t, 3), MARGIN.left - 6, y);
    }
    ctx.save();
    ctx.translate(14, MARGIN.top + (height - MARGIN.top - MARGIN.bottom) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.fillText("b", 0, 0);
    ctx.restore();
  }

  pathPixels() {
    const { width, height } = this.cssSize;
    const key = `${this.ws.length} ${width} ${height} ${Object.values(this.view).join(" ")}`;
    if (this.pixels?.key !== key) this.pixels = { key, points: pathToPixels(this.ws, this.bs, (w, b) => this.toPx(w, b)) };
    return this.pixels.points;
  }

  drawPath(ctx) {
    const { width, height } = this.cssSize;
    const box = { x0: MARGIN.left, x1: width - MARGIN.right, y0: MARGIN.top, y1: height - MARGIN.bottom };
    const all = this.pathPixels();
    // While replaying: bold up to the replay's index, faint after it.
    const cut = this.upTo === null ? all.length : all.findIndex((p) => p[2] > this.upTo);
    const shown = cut < 0 ? all : all.slice(0, cut);
    const line = (pts, styles) => strokePixels(ctx, pts, box, styles);
    ctx.save();
    ctx.lineJoin = "round";
    if (this.ghost) this.faintPath(ctx, this.ghost, box, [["rgba(40, 40, 40, 0.5)", 1.5]], [5, 4]);
    if (this.previewPath) this.faintPath(ctx, this.previewPath, box, [[PREVIEW_BAND, PREVIEW_BAND_WIDTH]], []);
    if (shown.length < all.length) line(all.slice(Math.max(0, shown.length - 1)), [["rgba(255,255,255,0.45)", 1.5]]);
    line(shown, [["rgba(0,0,0,0.75)", 4], ["#ffffff", 2]]);
    const inside = ([x, y]) => x >= box.x0 && x <= box.x1 && y >= box.y0 && y <= box.y1;
    // Where a diverging path leaves the window: an arrow at its edge, pointing the way it went.
    const exit = shown.findIndex((p, i) => i > 0 && inside(shown[i - 1]) && !inside(p));
    if (exit > 0) {
      const [a, b] = [shown[exit - 1], shown[exit]];
      const seg = clipSegment(a[0], a[1], b[0], b[1], box);
      if (seg) arrow(ctx, [seg[0], seg[1]], [seg[2], seg[3]], "off the map");
    }
    if (shown.length && inside(shown[0])) marker(ctx, shown[0], "circle", "start");
    const now = this.upTo === null ? shown.at(-1) : this.toPx(this.ws[this.upTo], this.bs[this.upTo]);
    if (shown.length > 1 && now && inside(now)) marker(ctx, now, "square", this.upTo === null ? "now" : this.upToLabel ?? "");
    if (this.surface) {
      const m = this.toPx(this.surface.minimum.w, this.surface.minimum.b);
      if (inside(m)) marker(ctx, m, "cross", "minimum");
    }
    for (const kink of this.kinks) {
      if (!Number.isFinite(kink.w) || !Number.isFinite(kink.b)) continue;
      const p = this.toPx(kink.w, kink.b);
      if (inside(p)) marker(ctx, p, "diamond", kink.label);
    }
    ctx.restore();
  }

  // A path other than this run's own ({ws, bs}), thinned to what a window of pixels shows, dashed;
  // styles: [stroke, lineWidth] drawn in turn (an edge, then the line).
  faintPath(ctx, path, box, styles, dash) {
    const segments = [];
    let previous = null;
    const step = Math.max(1, Math.floor(path.ws.length / 4000)); // enough for a window of pixels
    for (let i = 0; i < path.ws.length; i += step) {
      // The last point too: where the path ends is what the eye compares.
      const k = i + step >= path.ws.length ? path.ws.length - 1 : i;
      const w = path.ws[k], b = path.bs[k];
      if (w === null || b === null || !Number.isFinite(w) || !Number.isFinite(b)) continue;
      const p = this.toPx(w, b);
      const seg = previous && clipSegment(previous[0], previous[1], p[0], p[1], box);
      if (seg) segments.push(seg);
      previous = p;
    }
    ctx.save();
    ctx.setLineDash(dash);
    ctx.lineCap = "round";
    for (const [stroke, lineWidth] of styles) {
      ctx.strokeStyle = stroke;
      ctx.lineWidth = lineWidth;
      ctx.beginPath();
      for (const seg of segments) {
        ctx.moveTo(seg[0], seg[1]);
        ctx.lineTo(seg[2], seg[3]);
      }
      ctx.stroke();
    }
    ctx.restore();
  }

  defaultReadout() {
    const parts = [];
    if (this.surface) {
      const m = this.surface.minimum;
      parts.push(`minimum: w = ${num(m.w)}, b = ${num(m.b)}, loss = ${num(this.surface.minLoss)}`);
    } else parts.push("The surface is drawn once the data points are known (with the result).");
    const last = this.upTo ?? this.ws.length - 1;
    const at = this.upTo === null ? "now" : this.upToLabel ?? "then";
    if (last >= 0) parts.push(`${at}: w = ${num(this.ws[last])}, b = ${num(this.bs[last])}`);
    return parts.join(" · ");
  }

  hover(event) {
    if (!this.view || !this.surface) return;
    const rect = this.canvas.getBoundingClientRect();
    const { w, b } = this.fromPx(event.clientX - rect.left, event.clientY - rect.top);
    this.readout.textContent = `w = ${num(w)}, b = ${num(b)}: loss = ${num(this.surface.loss(w, b))}`;
  }
}

// A path's finite points in pixels, without those less than half a pixel from the one kept before
// (a converging run sits on the same pixel for thousands of epochs), the last always: [x, y, index].
export function pathToPixels(ws, bs, toPx) {
  const points = [];
  let last = null;
  for (let i = 0; i < ws.length; i++) {
    const w = ws[i], b = bs[i];
    if (w === null || b === null || !Number.isFinite(w) || !Number.isFinite(b)) continue;
    const [x, y] = toPx(w, b);
    const isLast = i === ws.length - 1;
    if (last && !isLast && Math.abs(x - last[0]) < 0.5 && Math.abs(y - last[1]) < 0.5) continue;
    last = [x, y, i];
    points.push(last);
  }
  return points;
}

// Pixels ([x, y, ...]) joined by lines clipped to `box`, once per style: [stroke, lineWidth] in turn
// (an edge, then the line).
export function strokePixels(ctx, pts, box, styles) {
  for (const [stroke, lineWidth] of styles) {
    ctx.strokeStyle = stroke;
    ctx.lineWidth = lineWidth;
    ctx.beginPath();
    for (let i = 1; i < pts.length; i++) {
      const seg = clipSegment(pts[i - 1][0], pts[i - 1][1], pts[i][0], pts[i][1], box);
      if (!seg) continue;
      ctx.moveTo(seg[0], seg[1]);
      ctx.lineTo(seg[2], seg[3]);
    }
    ctx.stroke();
  }
}

// An arrow head at `to`, along the segment from `from`, labelled beside it.
export function arrow(ctx, from, to, label) {
  const angle = Math.atan2(to[1] - from[1], to[0] - from[0]);
  const size = 10;
  ctx.save();
  ctx.fillStyle = "#b3261e";
  ctx.strokeStyle = "#ffffff";
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(to[0], to[1]);
  ctx.lineTo(to[0] - size * Math.cos(angle - 0.45), to[1] - size * Math.sin(angle - 0.45));
  ctx.lineTo(to[0] - size * Math.cos(angle + 0.45), to[1] - size * Math.sin(angle + 0.45));
  ctx.closePath();
  ctx.fill();
  ctx.stroke();
  ctx.font = "bold 11px system-ui, sans-serif";
  ctx.fillStyle = "#b3261e";
  ctx.textAlign = to[0] > from[0] ? "right" : "left";
  ctx.textBaseline = to[1] > from[1] ? "bottom" : "top";
  ctx.fillText(label, to[0] - 14 * Math.cos(angle), to[1] - 14 * Math.sin(angle));
  ctx.restore();
}

export function marker(ctx, [x, y], shape, label) {
  ctx.fillStyle = "#ffffff";
  ctx.strokeStyle = "#000000";
  ctx.lineWidth = 2;
  ctx.beginPath();
  if (shape === "circle") ctx.arc(x, y, 5, 0, 2 * Math.PI);
  else if (shape === "square") ctx.rect(x - 5, y - 5, 10, 10);
  else if (shape === "diamond") {
    ctx.moveTo(x, y - 6);
    ctx.lineTo(x + 6, y);
    ctx.lineTo(x, y + 6);
    ctx.lineTo(x - 6, y);
    ctx.closePath();
    ctx.fillStyle = "#E69F00"; // Okabe-Ito orange: a change, not the start or the end
  }
  if (shape === "cross") {
    ctx.moveTo(x - 6, y - 6);
    ctx.lineTo(x + 6, y + 6);
    ctx.moveTo(x + 6, y - 6);
    ctx.lineTo(x - 6, y + 6);
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = 4;
    ctx.stroke();
    ctx.strokeStyle = "#000000";
    ctx.lineWidth = 2;
    ctx.stroke();
  } else {
    ctx.fill();
    ctx.stroke();
  }
  ctx.font = "bold 12px system-ui, sans-serif";
  ctx.textBaseline = "bottom";
  // Right of the marker, unless that would run off the canvas.
  const room = ctx.canvas.width / (window.devicePixelRatio || 1) - x;
  const onLeft = ctx.measureText(label).width + 12 > room;
  ctx.textAlign = onLeft ? "right" : "left";
  const tx = onLeft ? x - 8 : x + 8;
  ctx.lineWidth = 3;
  ctx.strokeStyle = "rgba(255,255,255,0.9)";
  ctx.strokeText(label, tx, y - 4);
  ctx.fillStyle = "#000";
  ctx.fillText(label, tx, y - 4);
}
