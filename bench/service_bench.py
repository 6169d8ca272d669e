"""Benchmarks of the job service against a real ``playground serve`` (see README, "Benchmarks: job service").

    .venv/bin/python -m bench.service_bench            # all five, ~2 minutes on 2 cores
    .venv/bin/python -m bench.service_bench --only overhead latency

overhead  the book's 5000-epoch linear job from POST to ``done`` at an SSE client, against the same
          training loop in a plain Python process (torch already imported, same thread count): ratio
latency   POST to the first ``metric`` event at the client, idle server, warm worker
fanout    200 watchers on one job: each gets every point; per event, the delay of the last watcher
          to receive it behind the first (median and 99th percentile over the events)
burst     100 linear jobs (1000 epochs) posted at once: all finish, none lost, never more running
          than workers
memory    resident memory of the web process and of each idle worker

Prints the figures as JSON and writes them to bench/results/service.json. Timings are wall-clock on whatever
else the machine is doing: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.service.server_process import REPO_ROOT, Server
from tests.service.sse import iter_sse

BOOK = {"epochs": 5000, "lr": 1e-2, "input_scale": 0.1, "optimizer": "manual"}
WORKERS = 2
RESULTS = REPO_ROOT / "bench" / "results" / "service.json"


# ----------------------------------------------------------------------------------------------
# Helpers


def post(client: httpx.Client, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/jobs", json={"kind": kind, "params": params})
    response.raise_for_status()
    return response.json()


def watch_until_done(client: httpx.Client, job_id: str) -> tuple[list[float], float]:
    """(receive time of each metric event, time of done), perf_counter seconds.

    ``client`` is kept open across calls: a new httpx.Client costs tens of milliseconds (its SSL
    context), which would be counted as the server's latency.
    """
    metric_times = []
    with client.stream("GET", f"/api/jobs/{job_id}/events") as response:
        for event in iter_sse(response):
            if event.event == "metric":
                metric_times.append(event.received_at)
            elif event.event == "done":
                return metric_times, event.received_at
    raise RuntimeError(f"the stream of {job_id} ended without done")


def wait_idle(client: httpx.Client) -> None:
    while True:
        health = client.get("/api/health").json()
        if health["running"] == 0 and health["queued"] == 0:
            return
        time.sleep(0.05)


def warm_up(client: httpx.Client) -> None:
    """Run a job on every worker so each has imported the experiment and run torch once."""
    for _ in range(2):
        jobs = [post(client, "linear", {"epochs": 300}) for _ in range(WORKERS)]
        for job in jobs:
            watch_until_done(client, job["id"])
    wait_idle(client)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# ----------------------------------------------------------------------------------------------
# Overhead


# The same training loop in a plain process that has torch imported: one run per line on stdin.
BASELINE = textwrap.dedent(
    """
    import json, sys, time
    import torch
    torch.set_num_threads({threads}); torch.set_num_interop_threads({threads})
    from app.experiments import linear
    from app.experiments.base import RunContext
    from app.experiments.params import LinearParams
    params = LinearParams(**{params!r})
    for line in sys.stdin:
        points = []
        start = time.perf_counter()
        linear.run(params, RunContext(seed=0, emit=points.append))
        took = time.perf_counter() - start
        assert len(points) == params.epochs
        print(json.dumps(took), flush=True)
    """
)


def bench_overhead(srv: Server, client: httpx.Client, runs: int = 9) -> dict[str, Any]:
    threads = max(1, (os.cpu_count() or 2) // WORKERS)  # what the local executor gives each worker
    baseline_proc = subprocess.Popen(
        [sys.executable, "-c", BASELINE.format(threads=threads, params=BOOK)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )

    def baseline_run() -> float:
        baseline_proc.stdin.write("run\n")
        baseline_proc.stdin.flush()
        return json.loads(baseline_proc.stdout.readline())

    baseline_run()  # warm, as the worker is
    baseline, api, server_side = [], [], []
    try:
        # Interleaved, so both see the same load from whatever else the machine runs.
        for _ in range(runs):
            baseline.append(baseline_run())
            wait_idle(client)
            start = time.perf_counter()
            job = post(client, "linear", BOOK)
            _, done_at = watch_until_done(client, job["id"])
            api.append(done_at - start)
            job = client.get(f"/api/jobs/{job['id']}").json()
            started, finished = (datetime.fromisoformat(job[k]) for k in ("started_at", "finished_at"))
            server_side.append((finished - started).total_seconds())
    finally:
        baseline_proc.stdin.close()
        baseline_proc.wait(30)
    ratios = [a / b for a, b in zip(api, baseline, strict=True)]
    return {
        "baseline_s": statistics.median(baseline),
        "api_s": statistics.median(api),
        "started_to_finished_s": statistics.median(server_side),
        "ratio": statistics.median(ratios),
        "runs": runs,
        "threads": threads,
    }


# ----------------------------------------------------------------------------------------------
# Start latency


def bench_latency(srv: Server, client: httpx.Client, runs: int = 30) -> dict[str, Any]:
    latencies = []
    for _ in range(runs):
        wait_idle(client)
        time.sleep(0.05)
        start = time.perf_counter()
        job = post(client, "linear", {"epochs": 20})
        metric_times, _ = watch_until_done(client, job["id"])
        latencies.append(metric_times[0] - start)
    ms = [v * 1000 for v in latencies]
    return {"median_ms": statistics.median(ms), "p90_ms": percentile(ms, 90), "min_ms": min(ms), "runs": runs}


# ----------------------------------------------------------------------------------------------
# Fan-out


def _fanout_watchers(url: str, job_id: str, count: int, ready: Any, out: Any) -> None:
    """In a child process: ``count`` watchers; sends back {watcher: {event id: receive time}}."""

    async def watch(client: httpx.AsyncClient, connected: asyncio.Event, counter: list[int]) -> dict[int, float]:
        times: dict[int, float] = {}
        points = 0
        async with client.stream("GET", f"/api/jobs/{job_id}/events") as response:
            event, data, event_id = "", [], 0
            async for line in response.aiter_lines():
                if line:
                    name, _, value = line.partition(": ")
                    if name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)
                    elif name == "id":
                        event_id = int(value)
                    continue
                if not data:  # the end of a keep-alive comment
                    continue
                times[event_id] = time.perf_counter()
                if event_id == 1:
                    counter[0] += 1
                    if counter[0] == count:
                        connected.set()
                if event == "metric":
                    points += len(json.loads(data[0]))
                data = []
                if event == "done":
                    break
        times[-1] = points  # how many points this watcher got
        return times

    async def main() -> None:
        limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
        async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
            connected, counter = asyncio.Event(), [0]
            tasks = [asyncio.create_task(watch(client, connected, counter)) for _ in range(count)]
            await connected.wait()
            ready.set()
            out.put(await asyncio.gather(*tasks))

    asyncio.run(main())


def bench_fanout(srv: Server, client: httpx.Client, watchers: int = 200, processes: int = 4) -> dict[str, Any]:
    wait_idle(client)
    # Keep both workers busy so the watched job waits in the queue until every watcher is connected.
    blockers = [post(client, "linear", {"epochs": 100_000}) for _ in range(WORKERS)]
    job = post(client, "linear", BOOK)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    readies, procs = [], []
    for _ in range(processes):
        ready = ctx.Event()
        proc = ctx.Process(target=_fanout_watchers, args=(srv.url, job["id"], watchers // processes, ready, out))
        proc.start()
        readies.append(ready)
        procs.append(proc)
    for ready in readies:
        ready.wait(120)
    web_rss_watching = rss_mb(srv.proc.pid)
    web_cpu = cpu_seconds(srv.proc.pid)
    for blocker in blockers:
        client.post(f"/api/jobs/{blocker['id']}/cancel")
    results = [times for _ in procs for times in out.get(timeout=300)]
    web_cpu = cpu_seconds(srv.proc.pid) - web_cpu
    for proc in procs:
        proc.join(30)
    points = [times.pop(-1) for times in results]
    event_ids = sorted(set.intersection(*(set(times) for times in results)))
    # Only the events of the run itself: the first (queued) arrived on connecting.
    delays = [
        max(times[e] for times in results) - min(times[e] for times in results) for e in event_ids if e > 1
    ]
    ms = [d * 1000 for d in delays]
    return {
        "watchers": len(results),
        "every_watcher_got_every_point": all(p == BOOK["epochs"] for p in points),
        "events": len(event_ids),
        "worst_delay_median_ms": statistics.median(ms),
        "worst_delay_p99_ms": percentile(ms, 99),
        "web_rss_mb_with_watchers": web_rss_watching,
        "web_cpu_s_during_job": web_cpu,
    }


# ----------------------------------------------------------------------------------------------
# Burst


def bench_burst(srv: Server, client: httpx.Client, jobs: int = 100, epochs: int = 1000) -> dict[str, Any]:
    wait_idle(client)
    max_running, max_queued, stop = [0], [0], threading.Event()

    def sample() -> None:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            while not stop.is_set():
                health = c.get("/api/health").json()
                max_running[0] = max(max_running[0], health["running"])
                max_queued[0] = max(max_queued[0], health["queued"])
                time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    async def post_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=srv.url, timeout=60, limits=httpx.Limits(max_connections=jobs)) as c:
            body = {"kind": "linear", "params": {"epochs": epochs}}
            return await asyncio.gather(*(c.post("/api/jobs", json=body) for _ in range(jobs)))

    start = time.perf_counter()
    responses = asyncio.run(post_all())
    posted = time.perf_counter() - start
    ids = [r.json()["id"] for r in responses if r.status_code == 201]
    remaining = set(ids)
    while remaining:
        page = client.get("/api/jobs", params={"limit": 500}).json()["items"]
        remaining -= {j["id"] for j in page if j["status"] in ("succeeded", "failed", "cancelled", "diverged")}
        time.sleep(0.05)
    took = time.perf_counter() - start
    stop.set()
    sampler.join()
    finished = [client.get(f"/api/jobs/{i}").json() for i in ids]
    points = [client.get(f"/api/jobs/{i}/metrics").json()["total"] for i in ids]
    # From the recorded times too: the most jobs whose [started, finished] overlap.
    edges = sorted([(j["started_at"], 1) for j in finished] + [(j["finished_at"], -1) for j in finished])
    overlap, most = 0, 0
    for _, step in edges:
        overlap += step
        most = max(most, overlap)
    return {
        "posted": len(responses),
        "accepted": len(ids),
        "succeeded": sum(j["status"] == "succeeded" for j in finished),
        "all_points_kept": all(p == epochs for p in points),
        "post_all_s": posted,
        "all_done_s": took,
        "max_running_sampled": max_running[0],
        "max_queued_sampled": max_queued[0],
        "max_running_from_timestamps": most,
        "workers": WORKERS,
    }


# ----------------------------------------------------------------------------------------------


def bench_memory(srv: Server, client: httpx.Client) -> dict[str, Any]:
    """RSS of the web process and of each child once they are idle (the predictor starts on the first
    saved model and imports torch in the background: wait for it)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = srv.worker_pids()
        if all("libtorch" in Path(f"/proc/{pid}/maps").read_text() for pid in pids):
            break
        time.sleep(0.5)
    # The workers are named in the jobs they ran ("local-1 (pid 1234)"); the other child is the predictor.
    ran = {int(j["worker"].rsplit("pid ", 1)[1].rstrip(")")) for j in client.get("/api/jobs").json()["items"]}
    children = {
        pid: {
            "role": "worker" if pid in ran else "predictor",
            "rss_mb": rss_mb(pid),
            "torch": "libtorch" in Path(f"/proc/{pid}/maps").read_text(),
        }
        for pid in srv.worker_pids()
    }
    return {"web_mb": rss_mb(srv.proc.pid), "children": children}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line),
        platform.processor(),
    )
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "loadavg": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=["overhead", "latency", "fanout", "burst", "memory"])
    args = parser.parse_args(argv)
    wanted = args.only or ["memory", "overhead", "latency", "fanout", "burst"]
    results: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory() as home:
        srv = Server(Path(home), workers=WORKERS).start()
        try:
            with srv.client() as client:
                warm_up(client)
                if "memory" in wanted:
                    results["memory"] = bench_memory(srv, client)
                if "overhead" in wanted:
                    results["overhead"] = bench_overhead(srv, client)
                if "latency" in wanted:
                    results["latency"] = bench_latency(srv, client)
                if "fanout" in wanted:
                    results["fanout"] = bench_fanout(srv, client)
                if "burst" in wanted:
                    results["burst"] = bench_burst(srv, client)
        finally:
            results["stop_s"] = srv.stop()
    results["machine"]["loadavg_after"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
