"""Frames of the run page's replay, and Pause to the status shown, measured in a real Chromium.

    .venv/bin/python -m bench.replay_frames                # about 2 minutes on 2 cores
    .venv/bin/python -m bench.replay_frames --rounds 5

Against a real ``playground serve`` (tests/service/server_process.py, the tiny generated CIFAR of
tests/fixtures/tiny_cifar.py) and Debian's Chromium (headless, through Playwright):

replay  the scrubber dragged across a finished run, 200 positions spread over it: for each, the
        work the page does (the ``input`` handler, and the drawing it schedules for the next
        animation frame; not the wait for the display's refresh), median and p95 ms. Runs: the book's fit for
        100,000 epochs (a path of 100,000 (w, b) points), a 30-epoch cifar run (the confusion
        matrix redrawn per epoch), and, as the baseline in the same run, the book's 5000-epoch fit.
        The ratio to that baseline is what compares across machines; a frame at 60 Hz is 16.7 ms.
pause   an mlp job created paused, then stepped on (it trains for a long while): Pause clicked on
        its page, to the page showing ``paused``; median and p90 over ``--rounds`` rounds.

Prints the figures as JSON and writes them to bench/results/replay.json, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import tiny_cifar_env
from tests.service.server_process import REPO_ROOT, Server

RESULTS = REPO_ROOT / "bench" / "results" / "replay.json"
CHROMIUM = os.environ.get("PLAYGROUND_CHROMIUM", "/usr/bin/chromium")
POSITIONS = 200

# One frame per position: the work the page does for it -- the scrubber's input handler (run at
# once) plus the drawing it schedules for the next animation frame (the callbacks registered
# before this script's own run first in that frame: from the frame's start to this script's
# callback). Then a frame to paint before the next position. The wait for the display's refresh is
# not counted: at 60 Hz a frame has 16.7 ms, and the work must fit in them.
DRAG = """async (positions) => {
  const replay = window.playgroundJob.replay;
  const scrubber = document.querySelector("[data-replay-scrubber]");
  const n = Number(scrubber.max) + 1;
  const frame = () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  await frame();
  const times = [];
  for (let k = 0; k < positions; k++) {
    const index = Math.round((k * (n - 1)) / (positions - 1));
    const start = performance.now();
    scrubber.value = String(index);
    scrubber.dispatchEvent(new Event("input", { bubbles: true }));
    const handler = performance.now() - start;
    const drawing = await new Promise((resolve) => requestAnimationFrame((frameStart) => resolve(performance.now() - frameStart)));
    times.push(handler + drawing);
    await frame();
  }
  replay.stop();
  return times;
}"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def finished(api: httpx.Client, kind: str, params: dict[str, Any], seed: int = 1) -> str:
    job = api.post("/api/jobs", json={"kind": kind, "params": params, "seed": seed}).json()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = api.get(f"/api/jobs/{job['id']}").json()["status"]
        if status not in ("queued", "running"):
            assert status == "succeeded", f"{kind} {params}: {status}"
            return job["id"]
        time.sleep(0.2)
    raise TimeoutError(f"{kind} {params} did not finish")


def drag(page: Any, url: str, job_id: str) -> dict[str, float]:
    page.goto(f"{url}/jobs/{job_id}")
    page.wait_for_selector("#job-view[data-ready=true]")
    page.wait_for_selector("[data-replay]:not([hidden])")
    times = page.evaluate(DRAG, POSITIONS)
    return {"median_ms": round(statistics.median(times), 2), "p95_ms": round(percentile(times, 0.95), 2)}


def pause_latency(page: Any, api: httpx.Client, url: str, rounds: int) -> dict[str, float]:
    job = api.post("/api/jobs", json={"kind": "mlp", "params": {"epochs": 100_000}, "seed": 1, "paused": True}).json()
    page.goto(f"{url}/jobs/{job['id']}")
    page.wait_for_selector("#job-view[data-ready=true]")
    times = []
    for _ in range(rounds):
        assert api.post(f"/api/jobs/{job['id']}/step", json={"steps": 90_000}).status_code == 202
        page.wait_for_selector("#job-view[data-status=running]", timeout=60_000)
        page.wait_for_function("window.playgroundJob.store.steps.length > 0")
        time.sleep(0.3)
        pause = page.get_by_role("button", name="Pause", exact=True)
        pause.wait_for(state="visible")
        page.wait_for_selector("[data-pause]:not([disabled])")
        ms = page.evaluate(
            """() => new Promise((resolve) => {
              const root = document.getElementById("job-view");
              const start = performance.now();
              const seen = new MutationObserver(() => {
                if (root.dataset.status === "paused") { seen.disconnect(); resolve(performance.now() - start); }
              });
              seen.observe(root, { attributes: true, attributeFilter: ["data-status"] });
              document.querySelector("[data-pause]").click();
            })"""
        )
        times.append(ms)
    api.post(f"/api/jobs/{job['id']}/cancel")
    return {"median_ms": round(statistics.median(times), 1), "p90_ms": round(percentile(times, 0.9), 1), "rounds": rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10, help="pause rounds")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        env = tiny_cifar_env(Path(tmp) / "tiny-cifar")
        server = Server(Path(tmp) / "home", env=env, workers=2).start()
        try:
            with httpx.Client(base_url=server.url, timeout=60) as api, sync_playwright() as playwright:
                jobs = {
                    "linear_5000_baseline": finished(api, "linear", {}),
                    "linear_100000": finished(api, "linear", {"epochs": 100_000}),
                    "cifar_30_epochs": finished(
                        api, "cifar", {"dataset": "cifar10", "model": "conv", "epochs": 30, "batch_size": 16}
                    ),
                }
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                replay = {name: drag(page, server.url, job_id) for name, job_id in jobs.items()}
                base = replay["linear_5000_baseline"]["median_ms"]
                for figures in replay.values():
                    figures["ratio_to_baseline"] = round(figures["median_ms"] / base, 2) if base else None
                pause = pause_latency(page, api, server.url, args.rounds)
                browser.close()
        finally:
            server.stop()
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "positions": POSITIONS,
        "replay": replay,
        "pause_to_status_shown": pause,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
