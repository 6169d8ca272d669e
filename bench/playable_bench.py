"""Benchmarks of playable runs (see README, "Benchmarks: playable runs").

    .venv/bin/python -m bench.playable_bench                    # all three, 3-6 minutes on 2 cores
    .venv/bin/python -m bench.playable_bench --only latency --rounds 20 --cifar-data tiny real
    .venv/bin/python -m bench.playable_bench --only checkpoint --limit-train 10000

latency     against a real ``playground serve`` (2 workers, tests/service/server_process.py): pause →
            the ``paused`` status event at an SSE client, resume → the next ``metric`` event at
            that client, and cancel → the ``done`` event (a new job each round), median and p90 over ``--rounds`` rounds, for a long linear job (the book's
            fit, 100,000 epochs) and a cifar job (the default resnet and batch size; on the tiny
            generated CIFAR of tests/fixtures/tiny_cifar.py, or the real CIFAR-10 JPEGs, whose
            decoded tensors every resume loads again). Each round lets the job train for a random
            while (linear: 0.02-0.1 s; cifar: 0.2-0.5 s), so the pause lands anywhere in a step.
checkpoint  one epoch of the default resnet on the real CIFAR-10 (in this process), with the job
            side's ``JobControl`` and the service's cifar policy (a checkpoint at every epoch end):
            what the checkpoint costs the training side (``save()`` and serialising it), its size,
            the server's atomic write of it (``CheckpointStore``: write, fsync, rename), and their
            share of the epoch.
overhead    what the control points cost training throughput, CPU seconds, interleaved rounds: a
            plain run (the default ``RunControl``, a control point that returns at once, as the CLI
            runs) against the same run as a job's worker runs it (``JobControl`` and its point
            filter on ``emit``), without checkpoints and with the service's checkpoint policy
            (linear: one every epochs/100 steps; cifar: one at each epoch end); the control point
            alone in ns, and one checkpoint in ms. bench/control_overhead.py's two workloads (the
            book's 5000-epoch fit; the conv net on the tiny CIFAR, 5 epochs) and its
            ``control_point_ns``; that script compares the default control with a stand-in of the
            job's, and times checkpoints of the tiny runs.

Prints the figures as JSON and writes them to bench/results/playable.json. Timings are wall-clock
(latency) or CPU time (overhead) on whatever else the machine is doing: the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.service.server_process import REPO_ROOT, Server
from tests.service.sse import SseEvent, iter_sse

RESULTS = REPO_ROOT / "bench" / "results" / "playable.json"
WORKERS = 2
LINEAR = {"epochs": 100_000, "lr": 1e-3}  # the longest linear job: it never ends during the rounds
# How long a resumed job trains before the next pause (uniform): a linear step is ~30 us, a resnet
# step on the CPU ~0.1-0.2 s, so the pause lands anywhere in a step.
SETTLE_S = {"linear": (0.02, 0.1), "cifar": (0.2, 0.5)}


def machine() -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "loadavg_before": os.getloadavg(),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"median_ms": statistics.median(ms), "p90_ms": percentile(ms, 90), "min_ms": min(ms), "max_ms": max(ms)}


# ----------------------------------------------------------------------------------------------
# Latency: pause → `paused` at the client, resume → the next point at the client


class Watcher:
    """A job's SSE stream read on a thread, as a browser would; events queue up with their arrival time."""

    def __init__(self, url: str, job_id: str) -> None:
        self.events: queue.Queue[SseEvent] = queue.Queue()
        self._client = httpx.Client(base_url=url, timeout=httpx.Timeout(600, connect=10))
        self._thread = threading.Thread(target=self._read, args=(job_id,), daemon=True)
        self._thread.start()

    def _read(self, job_id: str) -> None:
        with self._client.stream("GET", f"/api/jobs/{job_id}/events") as response:
            for event in iter_sse(response):
                self.events.put(event)
                if event.event == "done":
                    return

    def wait(self, wanted: Callable[[SseEvent], bool], timeout: float = 300) -> SseEvent:
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            if wanted(event):
                return event

    def close(self) -> None:
        self._client.close()


def is_status(status: str) -> Callable[[SseEvent], bool]:
    return lambda e: e.event == "status" and e.data.get("status") == status


def is_metric(e: SseEvent) -> bool:
    return e.event == "metric"


def post(client: httpx.Client, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/jobs", json={"kind": kind, "params": params, "seed": 1})
    response.raise_for_status()
    return response.json()


def command(client: httpx.Client, job_id: str, action: str) -> None:
    response = client.post(f"/api/jobs/{job_id}/{action}")
    if response.status_code != 202:
        raise RuntimeError(f"{action} of {job_id}: {response.status_code} {response.text}")


def pause_resume_rounds(
    srv: Server,
    client: httpx.Client,
    kind: str,
    params: dict[str, Any],
    total_steps: int,
    rounds: int,
    settle_s: tuple[float, float],
) -> dict[str, Any]:
    """``rounds`` times: let the job train for ``settle_s`` (uniform), pause it, resume it. A job past
    80% of its ``total_steps`` is cancelled and a new one started (not timed): none ends mid-round."""
    rng = random.Random(0)
    pause_s: list[float] = []
    resume_s: list[float] = []
    jobs = 0
    job, watcher, last_step = None, None, 0

    def last_point_step(event: SseEvent) -> int:
        return event.data[-1]["step"]

    try:
        for _ in range(rounds):
            if job is None or last_step > 0.8 * total_steps:
                if job is not None:
                    client.post(f"/api/jobs/{job['id']}/cancel")
                    watcher.close()
                job = post(client, kind, params)
                jobs += 1
                watcher = Watcher(srv.url, job["id"])
                last_step = last_point_step(watcher.wait(is_metric))  # running, past its start
            time.sleep(rng.uniform(*settle_s))
            start = time.perf_counter()
            command(client, job["id"], "pause")
            pause_s.append(watcher.wait(is_status("paused")).received_at - start)
            # Every point before the pause comes before `paused`: the next one is the resumed run's.
            start = time.perf_counter()
            command(client, job["id"], "resume")
            point = watcher.wait(is_metric)
            resume_s.append(point.received_at - start)
            last_step = last_point_step(point)
    finally:
        if job is not None:
            client.post(f"/api/jobs/{job['id']}/cancel")
            watcher.close()
    return {
        "params": params,
        "rounds": rounds,
        "jobs": jobs,
        "pause_to_paused_event": summary_ms(pause_s),
        "resume_to_next_point": summary_ms(resume_s),
    }


def cancel_rounds(
    srv: Server, client: httpx.Client, kind: str, params: dict[str, Any], rounds: int, settle_s: tuple[float, float]
) -> dict[str, Any]:
    """``rounds`` times: start a job, let it train for ``settle_s`` (uniform) past its first point,
    cancel it; the time from the cancel request to the ``done`` event (status cancelled) at a client."""
    rng = random.Random(1)
    cancel_s: list[float] = []
    for _ in range(rounds):
        job = post(client, kind, params)
        watcher = Watcher(srv.url, job["id"])
        try:
            watcher.wait(is_metric)
            time.sleep(rng.uniform(*settle_s))
            start = time.perf_counter()
            command(client, job["id"], "cancel")
            done = watcher.wait(lambda e: e.event == "done")
            if done.data.get("status") != "cancelled":
                raise RuntimeError(f"job {job['id']} ended {done.data.get('status')!r}, not cancelled")
            cancel_s.append(done.received_at - start)
        finally:
            watcher.close()
    return {"params": params, "rounds": rounds, "cancel_to_done_event": summary_ms(cancel_s)}


def warm_up(client: httpx.Client, cifar: bool) -> None:
    """A job on every worker: each has imported the experiments and run torch once."""
    jobs = [post(client, "linear", {"epochs": 300}) for _ in range(WORKERS)]
    if cifar:
        jobs += [post(client, "cifar", {"model": "resnet", "epochs": 1, "limit_train": 64}) for _ in range(WORKERS)]
    for job in jobs:
        while client.get(f"/api/jobs/{job['id']}").json()["status"] in ("queued", "running"):
            time.sleep(0.1)


@contextmanager
def server(data_env: dict[str, str]) -> Iterator[tuple[Server, httpx.Client]]:
    with tempfile.TemporaryDirectory() as home:
        srv = Server(Path(home), env=data_env, workers=WORKERS).start()
        try:
            with srv.client() as client:
                yield srv, client
        finally:
            srv.stop()


def tiny_data_env(root: Path) -> dict[str, str]:
    from tests.fixtures.tiny_cifar import write_tiny_cifar_image_folder

    write_tiny_cifar_image_folder(root)
    return {"PLAYGROUND_DATA_DIR": str(root), "PLAYGROUND_ALLOW_DOWNLOAD": "false"}


def real_data_env() -> dict[str, str]:
    from bench.cifar_throughput import real_data_dir

    return {"PLAYGROUND_DATA_DIR": str(real_data_dir(None)), "PLAYGROUND_ALLOW_DOWNLOAD": "false"}


def bench_latency(rounds: int, cifar_data: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        envs = {"tiny": lambda: tiny_data_env(Path(tmp) / "tiny"), "real": real_data_env}
        for index, data in enumerate(cifar_data):
            with server(envs[data]()) as (srv, client):
                warm_up(client, cifar=True)
                if index == 0:
                    results["linear"] = pause_resume_rounds(
                        srv, client, "linear", LINEAR, LINEAR["epochs"], rounds, SETTLE_S["linear"]
                    )
                    results["linear_cancel"] = cancel_rounds(srv, client, "linear", LINEAR, rounds, SETTLE_S["linear"])
                # The default resnet and batch size (64); 200 epochs of the tiny set (160 training
                # images: 3 steps an epoch), one of the real one (50,000: 782 steps).
                epochs, steps = (200, 200 * 3) if data == "tiny" else (1, 782)
                results[f"cifar_{data}"] = pause_resume_rounds(
                    srv, client, "cifar", {"epochs": epochs}, steps, rounds, SETTLE_S["cifar"]
                )
                results[f"cifar_{data}_cancel"] = cancel_rounds(
                    srv, client, "cifar", {"epochs": epochs}, rounds, SETTLE_S["cifar"]
                )
    return results


# ----------------------------------------------------------------------------------------------
# Checkpoint: one at the end of a real cifar epoch


def bench_checkpoint(threads: int, limit_train: int | None) -> dict[str, Any]:
    import torch

    from app.experiments import cifar
    from app.experiments.base import RunContext, RunStatus
    from app.experiments.params import CifarParams
    from app.jobs.checkpoint_store import CheckpointStore
    from app.jobs.control import JobControl
    from app.jobs.executor import ControlPlan, JobCheckpoint
    from bench.cifar_throughput import real_data_dir

    torch.set_num_threads(threads)

    class TimedControl(JobControl):
        """The job's control with the service's cifar policy; times each checkpoint it takes."""

        def __init__(self) -> None:
            self.sent: list[JobCheckpoint] = []
            self.checkpoint_s: list[float] = []
            self.boundaries: list[float] = []
            super().__init__("bench", "cifar", ControlPlan(checkpoint_epoch_ends=True), send=lambda m: None,
                             send_now=self.sent.append)

        def boundary(self, step, epoch, params, save, *, epoch_end=True):
            self.boundaries.append(time.perf_counter())
            return super().boundary(step, epoch, params, save, epoch_end=epoch_end)

        def _checkpoint(self, *args: Any) -> None:
            started = time.perf_counter()
            super()._checkpoint(*args)
            self.checkpoint_s.append(time.perf_counter() - started)

    # The defaults: resnet, batch 64, one-cycle, augmentation; the whole training set unless asked.
    params = CifarParams(epochs=1, limit_train=limit_train)
    control = TimedControl()
    data_dir = real_data_dir(None)
    started = time.perf_counter()
    outcome = cifar.run(params, RunContext(seed=0, control=control, data_dir=data_dir))
    run_s = time.perf_counter() - started
    assert outcome.status == RunStatus.SUCCEEDED, outcome.error
    [checkpoint] = control.sent
    steps = len(control.boundaries)
    # The first boundary comes after the first step: the epoch is that span and one more step.
    epoch_s = (control.boundaries[-1] - control.boundaries[0]) * steps / max(1, steps - 1)
    with tempfile.TemporaryDirectory() as home:
        store = CheckpointStore(Path(home))
        started = time.perf_counter()
        store.write("bench", checkpoint.step, checkpoint.epoch, checkpoint.epoch_end, checkpoint.payload)
        write_s = time.perf_counter() - started
    taken_s = control.checkpoint_s[0]
    return {
        "data": f"real CIFAR-10 ({data_dir})",
        "params": params.model_dump(mode="json"),
        "threads": threads,
        "steps": steps,
        "epoch_s": epoch_s,
        "run_s": run_s,
        "checkpoint_take_s": taken_s,
        "checkpoint_mb": len(checkpoint.payload) / 1e6,
        "server_write_s": write_s,
        "share_of_epoch": (taken_s + write_s) / epoch_s,
    }


# ----------------------------------------------------------------------------------------------
# Overhead: a plain run against the same run with the job's control points


def bench_overhead(rounds: int, threads: int) -> dict[str, Any]:
    import torch

    from app.experiments import cifar, linear
    from app.experiments.base import RunContext, RunControl, RunStatus
    from app.experiments.params import CifarParams, LinearParams
    from app.jobs.control import JobControl
    from app.jobs.executor import ControlPlan
    from bench.control_overhead import SEED, control_point_ns
    from tests.fixtures.tiny_cifar import write_tiny_cifar_image_folder

    torch.set_num_threads(threads)

    def job_plan(kind: str, epochs: int) -> ControlPlan:
        """The service's policy (JobService._policy)."""
        from app.jobs.plans import CHECKPOINT_EVERY_S

        if kind == "cifar":
            return ControlPlan(checkpoint_epoch_ends=True)
        return ControlPlan(checkpoint_every_s=CHECKPOINT_EVERY_S)

    class TimedControl(JobControl):
        """The job's control; counts and times the checkpoints it takes."""

        def __init__(self, kind: str, plan: ControlPlan) -> None:
            self.checkpoint_s: list[float] = []
            super().__init__("bench", kind, plan, send=lambda m: None)

        def _checkpoint(self, *args: Any) -> None:
            started = time.perf_counter()
            super()._checkpoint(*args)
            self.checkpoint_s.append(time.perf_counter() - started)

    taken: dict[str, list[float]] = {}

    def cpu_seconds(module: Any, params: Any, kind: str, variant: str, data_dir: Path) -> float:
        """One run: as the CLI runs it (``plain``), or as a job's worker does (its control and its
        point filter), with the service's checkpoints (``job``) or none (``job-no-checkpoints``)."""
        if variant == "plain":
            ctx = RunContext(seed=SEED, emit=lambda p: None, control=RunControl(), data_dir=data_dir)
        else:
            plan = job_plan(kind, params.epochs) if variant == "job" else ControlPlan()
            control = TimedControl(kind, plan)
            ctx = RunContext(seed=SEED, emit=control.emit_filter(lambda p: None), control=control, data_dir=data_dir)
        started = time.process_time()
        outcome = module.run(params, ctx)
        elapsed = time.process_time() - started
        assert outcome.status == RunStatus.SUCCEEDED, outcome.error
        if variant == "job":
            taken[kind] = control.checkpoint_s
        return elapsed

    variants = ["plain", "job-no-checkpoints", "job"]
    results: dict[str, Any] = {"rounds": rounds, "threads": threads}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = write_tiny_cifar_image_folder(Path(tmp) / "data")
        workloads = {  # bench/control_overhead.py's two
            "linear": (linear, LinearParams(epochs=5000), 5000),
            "cifar": (cifar, CifarParams(model="conv", epochs=5, batch_size=16), 50),
        }
        for name, (module, params, steps) in workloads.items():
            cpu_seconds(module, params, name, "job", data_dir)  # warm-up
            times: dict[str, list[float]] = {v: [] for v in variants}
            for round_ in range(rounds):  # interleaved, the order turned every round
                for variant in variants if round_ % 2 == 0 else reversed(variants):
                    times[variant].append(cpu_seconds(module, params, name, variant, data_dir))
            median = {v: statistics.median(times[v]) for v in variants}
            step_ns = median["plain"] / steps * 1e9
            job_control = JobControl("bench", name, job_plan(name, params.epochs), send=lambda m: None)
            point_ns = {"plain": control_point_ns(RunControl(), params), "job": control_point_ns(job_control, params)}
            results[name] = {
                "steps": steps,
                "step_us": step_ns / 1000,
                "cpu_ms": {v: median[v] * 1000 for v in variants},
                "ratio_job_no_checkpoints": median["job-no-checkpoints"] / median["plain"],
                "ratio_job": median["job"] / median["plain"],
                "checkpoints_a_run": len(taken[name]),
                "checkpoint_ms_median": statistics.median(taken[name]) * 1000,
                "control_point_ns": point_ns,
                "control_point_share_of_step": point_ns["job"] / step_ns,
            }
    return results


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=["latency", "checkpoint", "overhead"])
    parser.add_argument("--rounds", type=int, default=20, help="pause/resume rounds per job (default 20)")
    parser.add_argument("--cifar-data", nargs="*", choices=["tiny", "real"], default=["tiny"])
    parser.add_argument("--overhead-rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the checkpoint run (default 2)")
    parser.add_argument("--limit-train", type=int, default=None,
                        help="checkpoint: an epoch of this many training images (default all 50,000: minutes)")
    args = parser.parse_args(argv)
    wanted = args.only or ["latency", "checkpoint", "overhead"]
    results: dict[str, Any] = {"machine": machine()}
    if "latency" in wanted:
        results["latency"] = bench_latency(args.rounds, args.cifar_data)
    if "checkpoint" in wanted:
        results["checkpoint"] = bench_checkpoint(args.threads, args.limit_train)
    if "overhead" in wanted:
        results["overhead"] = bench_overhead(args.overhead_rounds, 1)  # 1 thread: steadier, as control_overhead
    results["machine"]["loadavg_after"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
