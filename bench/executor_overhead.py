"""What running a job through the local executor costs, against the same training loop run directly.

    .venv/bin/python bench/executor_overhead.py [--repeats 5] [--latency-runs 30]

1. Overhead ratio: the book's 5000-epoch linear fit, from ``submit`` to its ``JobFinished`` on the event
   loop (a warm, idle worker: spawn and import are paid before), over ``app.experiments.linear.run``
   called here with a no-op emit, same seed, same torch thread count as a worker. The two alternate,
   and the ratio is of the medians. Target: at most 1.3.
2. Latency: ``submit`` to the first ``JobMetrics`` on the event loop, median over ``--latency-runs``
   short jobs, each on a warm idle worker. Target: a median of at most 50 ms.

Prints one JSON object with the figures at the end. Not a test: timings depend on the machine and its
load, so it measures and reports; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import Settings  # noqa: E402
from app.jobs.executor import JobFinished, JobMetrics, JobSpec  # noqa: E402
from app.jobs.local import LocalExecutor  # noqa: E402

SEED = 7
PARAMS = {"epochs": 5000}  # the book's run: lr 1e-2, t_un = 0.1 * t_u, the hand-written gradient


def run_in_process(threads: int) -> float:
    import torch

    from app.experiments import linear
    from app.experiments.base import RunContext
    from app.experiments.params import LinearParams

    torch.set_num_threads(threads)
    params = LinearParams(**PARAMS)
    started = time.perf_counter()
    linear.run(params, RunContext(seed=SEED, emit=lambda point: None))
    return time.perf_counter() - started


class Timer:
    """on_event: when each job's first JobMetrics and its JobFinished reached the event loop."""

    def __init__(self) -> None:
        self.first_metrics: dict[str, float] = {}
        self.finished: dict[str, float] = {}
        self.statuses: dict[str, str] = {}
        self.done = asyncio.Event()

    def __call__(self, event: object) -> None:
        now = time.perf_counter()
        if isinstance(event, JobMetrics):
            self.first_metrics.setdefault(event.job_id, now)
        elif isinstance(event, JobFinished):
            self.finished[event.job_id] = now
            self.statuses[event.job_id] = event.status
            self.done.set()


async def run_job(executor: LocalExecutor, timer: Timer, job_id: str, params: dict) -> tuple[float, float]:
    """(submit → first JobMetrics, submit → JobFinished) in seconds."""
    started = time.perf_counter()
    executor.submit(JobSpec(job_id, "linear", params, seed=SEED, device="cpu"))
    while job_id not in timer.finished:  # an idle loop woken by the executor, as in the server
        timer.done.clear()
        await timer.done.wait()
    if timer.statuses[job_id] != "succeeded":
        raise SystemExit(f"job {job_id} ended {timer.statuses[job_id]}")
    return timer.first_metrics[job_id] - started, timer.finished[job_id] - started


async def main(repeats: int, latency_runs: int, workers: int | None) -> dict:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), workers=workers)
        executor = LocalExecutor(settings)
        timer = Timer()
        started = time.perf_counter()
        await executor.start(timer)
        start_s = time.perf_counter() - started
        info = executor.info()
        threads = info.resources["threads_per_worker"]
        try:
            await run_job(executor, timer, "warm-up", PARAMS)  # the predictor starts after it: let it
            await asyncio.sleep(5)  # import torch before timing, or it competes for the cores
            run_in_process(threads)  # warm up here too (torch import, first-call costs)

            direct, pooled = [], []
            for i in range(repeats):
                direct.append(run_in_process(threads))
                pooled.append((await run_job(executor, timer, f"overhead-{i}", PARAMS))[1])

            latencies = []
            for i in range(latency_runs):
                await asyncio.sleep(0.05)  # idle between runs, like a user pressing Train
                latencies.append((await run_job(executor, timer, f"latency-{i}", {"epochs": 20}))[0])
        finally:
            await executor.stop()

    return {
        "machine": f"{os.cpu_count()} CPUs, {info.workers} workers x {threads} threads, devices {info.devices}",
        "start_s": round(start_s, 2),
        "direct_s": [round(x, 3) for x in direct],
        "executor_s": [round(x, 3) for x in pooled],
        "overhead_ratio": round(statistics.median(pooled) / statistics.median(direct), 3),
        "first_metric_ms_median": round(1000 * statistics.median(latencies), 2),
        "first_metric_ms_p90": round(1000 * statistics.quantiles(latencies, n=10)[-1], 2),
        "first_metric_ms_max": round(1000 * max(latencies), 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="5000-epoch runs each way (default 5)")
    parser.add_argument("--latency-runs", type=int, default=30, help="short jobs timed to their first point")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: the executor's)")
    args = parser.parse_args()
    figures = asyncio.run(main(args.repeats, args.latency_runs, args.workers))
    for key, value in figures.items():
        print(f"{key:>24}: {value}")
    print(json.dumps(figures))
