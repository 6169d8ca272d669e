"""How the job page's loss chart copes with long runs, in headless Chromium, against a small baseline.

    .venv/bin/python bench/chart_points.py [--points 100000] [--baseline 1000] [--repeats 5]

The page's own chart module (static/js/charts.js, on the vendored uPlot) draws a synthetic loss
curve (train and validation, 2 series) in a blank page served from static/:

1. First draw: building the chart with N points and drawing it, median over ``--repeats``; ratio to
   the baseline.
2. Live append: 200 batches of 5 points appended to an N-point chart, one redraw per batch (what a
   running job's SSE events do, at most about 20 a second); median milliseconds of the redraw
   itself (uPlot draws in a microtask after setData); ratio to the baseline. A redraw under 16 ms
   fits in one frame at 60 Hz.
3. Smoothing: the debiased EMA (static/js/smoothing.js) over N points, per series.
4. Downsampled: the same first draw with 4,000 points, which is what the page loads for a history of
   more than 20,000 steps, so the ratio of (1) for N points says what that saves.

Prints one JSON object. Not a test: timings depend on the machine and its load; it asserts nothing.
Needs /usr/bin/chromium (Debian's package) and Playwright for Python.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import statistics
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

STATIC = Path(__file__).resolve().parents[1] / "static"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="/vendor/uplot/uPlot.min.css">
<script src="/vendor/uplot/uPlot.iife.min.js"></script></head>
<body style="width:1200px"><div id="chart"></div>
<script type="module">
import { LineChart } from "/js/charts.js";
import { smooth } from "/js/smoothing.js";
const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
function curve(n, from = 0) {
  const xs = [], train = [], val = [];
  for (let i = from; i < from + n; i++) {
    xs.push(i + 1);
    train.push(3 + 80 * Math.exp(-i / 300) + 0.3 * Math.sin(i));
    val.push(i % 10 === 0 ? 4 + 70 * Math.exp(-i / 300) : null);
  }
  return [xs, train, val];
}
window.firstDraw = async (n) => {
  const box = document.getElementById("chart");
  box.replaceChildren();
  const chart = new LineChart(box, { spec: () => ({ series: [{ label: "train", stroke: "#0072B2" }, { label: "val", stroke: "#D55E00", dash: [6, 4] }] }) });
  const data = curve(n);
  const t0 = performance.now();
  chart.data = data;
  chart.rebuild();
  await Promise.resolve();
  const ms = performance.now() - t0;
  await frame();
  window.chart = chart;
  return ms;
};
window.appendBatches = async (n, batches, perBatch) => {
  await window.firstDraw(n);
  const data = window.chart.data;
  const times = [];
  for (let b = 0; b < batches; b++) {
    const [xs, tr, va] = curve(perBatch, n + b * perBatch);
    data[0].push(...xs); data[1].push(...tr); data[2].push(...va);
    const t0 = performance.now();
    window.chart.plot.setData(data, true);
    await Promise.resolve(); // uPlot redraws in a microtask: this waits for the drawing itself
    times.push(performance.now() - t0);
    await frame();
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
};
window.smoothMs = (n) => {
  const [, train] = curve(n);
  const t0 = performance.now();
  smooth(train, 0.99);
  return performance.now() - t0;
};
window.ready = true;
</script></body></html>"""


def serve_static() -> http.server.ThreadingHTTPServer:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            if self.path == "/":
                body = PAGE.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(STATIC)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    server = serve_static()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        page.wait_for_function("window.ready === true")

        def median(expression: str) -> float:
            return statistics.median(page.evaluate(expression) for _ in range(args.repeats))

        first_base = median(f"firstDraw({args.baseline})")
        first_big = median(f"firstDraw({args.points})")
        first_down = median("firstDraw(4000)")
        append_base = median(f"appendBatches({args.baseline}, 200, 5)")
        append_big = median(f"appendBatches({args.points}, 200, 5)")
        smooth_big = median(f"smoothMs({args.points})")
        browser.close()
    server.shutdown()

    print(
        json.dumps(
            {
                "points": args.points,
                "baseline_points": args.baseline,
                "first_draw_ms": {"baseline": round(first_base, 2), "points": round(first_big, 2), "downsampled_4000": round(first_down, 2)},
                "first_draw_ratio": round(first_big / first_base, 2),
                "append_redraw_ms": {"baseline": round(append_base, 2), "points": round(append_big, 2)},
                "append_redraw_ratio": round(append_big / append_base, 2),
                "ema_ms": round(smooth_big, 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
