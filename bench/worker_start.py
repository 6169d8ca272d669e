"""What the forkserver buys (PLAYGROUND_WORKER_START): local workers forked from a process that has
imported torch once, against workers spawned that each import it (README, "Benchmarks: job service").

    .venv/bin/python -m bench.worker_start [--repeats 3]

Each repeat starts a fresh ``playground serve`` (2 workers, the default on a CPU) per start method,
the two alternating, and measures:

start        launching the server to /api/health answering (its workers said hello)
first job    launching the server to a 10-epoch linear job's end and a prediction with its weights (the
             predictor starts once a job has saved weights)
cpu          CPU-seconds of the whole process tree then (web process, forkserver, workers, predictor)
memory       proportional set size (PSS: shared pages split between the processes that share them) of
             the workers, the predictor and the forkserver together, and one worker's resident size
replacement  kill -9 of an idle worker to the end of a 10-epoch job posted once the pool has seen the
             death, with the other worker busy (so the job waits for the worker that replaces the killed
             one)

Prints medians per method and their ratios, and writes them to bench/results/worker_start.json.
Not a test: wall-clock figures on whatever else the machine is doing (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.service_bench import cpu_seconds, machine, post, rss_mb
from tests.service.server_process import (
    REPO_ROOT,
    Server,
    cmdline,
    descendants,
    parent_pids,
)

RESULTS = REPO_ROOT / "bench" / "results" / "worker_start.json"
SHORT = {"epochs": 10}
METHODS = ("forkserver", "spawn")


def finish(client: httpx.Client, job_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (job := client.get(f"/api/jobs/{job_id}").json())["status"] in ("queued", "running"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} did not finish within {timeout} s: {job}")
        time.sleep(0.01)
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job_id} ended {job['status']}: {job['error']}")


def pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_server(method: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        srv = Server(Path(home), env={"PLAYGROUND_WORKER_START": method}, workers=2)
        launched = time.perf_counter()
        srv.start()
        try:
            up = time.perf_counter() - launched
            with srv.client() as client:
                job_id = post(client, "linear", SHORT)["id"]
                finish(client, job_id)
                client.post(f"/api/jobs/{job_id}/predict", json={"inputs": [35.7]}).raise_for_status()
                first_job = time.perf_counter() - launched
                tree = [srv.proc.pid, *descendants(srv.proc.pid)]
                cpu = sum(cpu_seconds(pid) for pid in tree)
                resources = client.get("/api/health").json()["resources"]
                workers, predictor = resources["worker_pids"], resources["predictor_pid"]
                parents = parent_pids()
                forkservers = [p for p in tree if parents.get(p) == srv.proc.pid and "forkserver" in cmdline(p)]
                # The resource tracker is left out: tiny, and there under both.
                pss = sum(pss_mb(pid) for pid in [*workers, predictor, *forkservers])
                rss = rss_mb(workers[0])
                blocker = post(client, "linear", {"epochs": 100_000})["id"]
                while (busy := client.get(f"/api/jobs/{blocker}").json())["worker"] is None:
                    time.sleep(0.005)
                idle = next(pid for pid in workers if f"pid {pid})" not in busy["worker"])
                killed = time.perf_counter()
                os.kill(idle, signal.SIGKILL)
                # Posted once the pool has seen the death (milliseconds), else it could go to the dead worker.
                while idle in client.get("/api/health").json()["resources"]["worker_pids"]:
                    time.sleep(0.005)
                finish(client, post(client, "linear", SHORT)["id"])
                replacement = time.perf_counter() - killed
                client.post(f"/api/jobs/{blocker}/cancel")
        finally:
            srv.stop()
    return {
        "start_s": up,
        "first_job_s": first_job,
        "cpu_s": cpu,
        "replacement_s": replacement,
        "pss_mb": pss,
        "worker_rss_mb": rss,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    runs: dict[str, list[dict[str, float]]] = {method: [] for method in METHODS}
    for repeat in range(args.repeats):
        for method in METHODS if repeat % 2 == 0 else METHODS[::-1]:
            runs[method].append(one_server(method))
            print(method, json.dumps({k: round(v, 3) for k, v in runs[method][-1].items()}), flush=True)
    medians = {m: {k: statistics.median(r[k] for r in runs[m]) for k in runs[m][0]} for m in METHODS}
    ratios = {k: medians["forkserver"][k] / medians["spawn"][k] for k in medians["spawn"]}
    results = {"machine": machine(), "repeats": args.repeats, "medians": medians, "forkserver_over_spawn": ratios, "runs": runs}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps({"machine": results["machine"], "medians": medians, "forkserver_over_spawn": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
