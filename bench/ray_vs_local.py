"""The Ray executor against the local executor, on the same machine, in the same run.

    .venv/bin/python bench/ray_vs_local.py [--repeats 5] [--latency-runs 10] [--cifar-data DIR]

Both executors are started in this process (the local pool with 2 workers; Ray as a local cluster
that ``ray.init`` starts, the same as a server without ``RAY_ADDRESS``), then driven alternately so
both see the same background load:

1. Ready: ``start()`` to ready (local: spawn workers that import torch; Ray: start a cluster, warm
   its workers).
2. Start latency: ``submit`` to ``JobStarted`` and to the first ``JobMetrics`` of a 100-epoch linear
   job on an idle executor, median over ``--latency-runs``; the extra latency is Ray's minus local's.
3. Throughput: the book's 5000-epoch linear job, ``submit`` to ``JobFinished``, median over
   ``--repeats``; and two of them at once (both executors have 2 slots). Ratio = local time / Ray time
   (above 1: Ray is faster).
4. A short CIFAR job (the book's conv net, one epoch) when the cifar experiment exists: on the tiny
   synthetic data set (``tests/fixtures/tiny_cifar.py``, ``--tiny-per-class`` 200: 2000 training
   images) or on real data (``--cifar-data``) with ``limit_train``. Median of ``--cifar-repeats``.

Prints one JSON object at the end. Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import Settings
from app.jobs.executor import Executor, JobFinished, JobMetrics, JobSpec, JobStarted

BOOK = {"epochs": 5000}  # the book's run: lr 1e-2, t_un = 0.1 * t_u, the hand-written gradient
SHORT = {"epochs": 100}


class Driver:
    """One executor and the times its events arrived at, per job."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.times: dict[str, dict[str, float]] = {}
        self.finished: dict[str, JobFinished] = {}
        self._waiters: dict[str, asyncio.Future[JobFinished]] = {}
        self._ids = 0

    def on_event(self, event: Any) -> None:
        now = time.perf_counter()
        times = self.times.setdefault(event.job_id, {})
        if isinstance(event, JobStarted):
            times["started"] = now
        elif isinstance(event, JobMetrics):
            times.setdefault("first_metrics", now)
        elif isinstance(event, JobFinished):
            times["finished"] = now
            self.finished[event.job_id] = event
            waiter = self._waiters.get(event.job_id)
            if waiter is not None and not waiter.done():
                waiter.set_result(event)

    async def run(self, kind: str, params: dict[str, Any], seed: int = 7) -> dict[str, float]:
        return (await self.run_many([(kind, params, seed)]))[0]

    async def run_many(self, jobs: list[tuple[str, dict[str, Any], int]]) -> list[dict[str, float]]:
        loop = asyncio.get_running_loop()
        ids = []
        for kind, params, seed in jobs:
            self._ids += 1
            job_id = f"{self.executor.name}-{self._ids}"
            self._waiters[job_id] = loop.create_future()
            self.times[job_id] = {"submitted": time.perf_counter()}
            self.executor.submit(JobSpec(job_id, kind, params, seed, "cpu"))
            ids.append(job_id)
        for job_id in ids:
            finished = await asyncio.wait_for(self._waiters[job_id], 600)
            if finished.status != "succeeded":
                raise RuntimeError(f"{job_id} ({self.executor.name}) ended {finished.status}: {finished.error}")
        return [self.times[job_id] for job_id in ids]


def median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    # A local ray.init() of Ray 2.60 turns token authentication on and writes ~/.ray/auth_token; after
    # that every `ray start` on the machine requires the token. The bench's private cluster does not
    # need one (Ray reads this variable itself).
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if args.ray_worker_niceness is not None:
        # Ray starts its workers at nice 15 (so its own daemons stay responsive); on a machine shared
        # with other work that costs Ray's jobs CPU the local workers (nice 0) get.
        os.environ["RAY_worker_niceness"] = str(args.ray_worker_niceness)
    from app.jobs.local import LocalExecutor
    from app.jobs.ray_executor import RayExecutor

    home = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    data: dict[str, str] = {}
    cifar_params: dict[str, Any] | None = None
    if importlib.util.find_spec("app.experiments.cifar") is not None:
        if args.cifar_data:
            data = {"data_dir": args.cifar_data, "allow_download": "false"}
            cifar_params = {"model": "conv", "epochs": 1, "limit_train": args.limit_train}
        else:
            try:
                from tests.fixtures.tiny_cifar import write_tiny_cifar_image_folder
            except ImportError:
                pass
            else:
                write_tiny_cifar_image_folder(home / "data", per_class_train=args.tiny_per_class)
                data = {"data_dir": str(home / "data"), "allow_download": "false"}
                cifar_params = {"model": "conv", "epochs": 1, "augment": False}

    local = Driver(LocalExecutor(Settings(home=home / "local", workers=2, **data)))
    # No RAY_ADDRESS: ray.init starts a local Ray with this machine's CPUs, as the server would.
    ray = Driver(RayExecutor(Settings(home=home / "ray", executor="ray", ray_num_cpus=1, ray_address=None, **data)))
    drivers = (local, ray)

    ready = {}
    for driver in drivers:
        started = time.perf_counter()
        await driver.executor.start(driver.on_event)
        ready[driver.executor.name] = round(time.perf_counter() - started, 2)
        print(f"{driver.executor.name}: ready in {ready[driver.executor.name]} s "
              f"({driver.executor.info().resources})", file=sys.stderr)

    try:
        # Warm-up: one job each, not counted (the first job of a kind imports its module).
        for driver in drivers:
            await driver.run("linear", SHORT)

        latency: dict[str, dict[str, list[float]]] = {d.executor.name: {"started": [], "metrics": []} for d in drivers}
        for _ in range(args.latency_runs):
            for driver in drivers:
                t = await driver.run("linear", SHORT)
                latency[driver.executor.name]["started"].append(t["started"] - t["submitted"])
                latency[driver.executor.name]["metrics"].append(t["first_metrics"] - t["submitted"])

        book: dict[str, list[float]] = {d.executor.name: [] for d in drivers}
        pair: dict[str, list[float]] = {d.executor.name: [] for d in drivers}
        for _ in range(args.repeats):
            for driver in drivers:
                t = await driver.run("linear", BOOK)
                book[driver.executor.name].append(t["finished"] - t["submitted"])
            for driver in drivers:
                ts = await driver.run_many([("linear", BOOK, 1), ("linear", BOOK, 2)])
                pair[driver.executor.name].append(max(t["finished"] for t in ts) - min(t["submitted"] for t in ts))

        cifar: dict[str, list[float]] = {d.executor.name: [] for d in drivers}
        if cifar_params is not None:
            for driver in drivers:
                await driver.run("cifar", cifar_params)  # warm-up: data decode and cache
            for _ in range(args.cifar_repeats):
                for driver in drivers:
                    t = await driver.run("cifar", cifar_params)
                    cifar[driver.executor.name].append(t["finished"] - t["submitted"])
    finally:
        for driver in drivers:
            await driver.executor.stop()

    figures: dict[str, Any] = {
        "machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end",
        "ray_worker_niceness": os.environ.get("RAY_worker_niceness", "15 (Ray's default)"),
        "ready_s": ready,
        "start_latency_ms": {
            name: {"to_started": median_ms(v["started"]), "to_first_metrics": median_ms(v["metrics"])}
            for name, v in latency.items()
        },
        "extra_start_latency_ms": round(
            median_ms(latency["ray"]["metrics"]) - median_ms(latency["local"]["metrics"]), 1
        ),
        "book_linear_s": {name: round(statistics.median(v), 3) for name, v in book.items()},
        "book_linear_ratio_local_over_ray": round(statistics.median(book["local"]) / statistics.median(book["ray"]), 2),
        "two_book_jobs_at_once_s": {name: round(statistics.median(v), 3) for name, v in pair.items()},
        "two_at_once_ratio_local_over_ray": round(
            statistics.median(pair["local"]) / statistics.median(pair["ray"]), 2
        ),
    }
    if cifar_params is not None:
        figures["cifar"] = {
            "params": cifar_params,
            "seconds": {name: round(statistics.median(v), 2) for name, v in cifar.items()},
            "ratio_local_over_ray": round(statistics.median(cifar["local"]) / statistics.median(cifar["ray"]), 2),
        }
    else:
        figures["cifar"] = "skipped: no cifar experiment or no data set (tests/fixtures/tiny_cifar.py, --cifar-data)"
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--latency-runs", type=int, default=10)
    parser.add_argument("--cifar-repeats", type=int, default=3)
    parser.add_argument("--cifar-data", help="a CIFAR-10 folder (instead of the tiny test set)")
    parser.add_argument("--limit-train", type=int, default=2000, help="training images with --cifar-data")
    parser.add_argument("--ray-worker-niceness", type=int, help="Ray's RAY_worker_niceness (Ray's default: 15)")
    parser.add_argument("--tiny-per-class", type=int, default=200, help="training images per class, tiny set")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
