"""Reading a long finished history: issue 10, item 1's figures against a real ``playground serve``.

    .venv/bin/python -m bench.history_bench                  # ~1-2 minutes on 2 cores
    .venv/bin/python -m bench.history_bench --clients 50 --readers 20

One finished linear job of 100,000 epochs (100,000 points, ~11 MB of events), then:

silent    ``--clients`` raw sockets send ``GET /api/jobs/{id}/events`` and never read a byte. Until the
          server has written all the kernel takes (its CPU goes quiet, at most ``--max-wait`` s):
          growth of the web process's resident memory (peak, and once quiet), /api/health's latency
          (median, 95th percentile, max; one client, kept-alive connection), the web process's CPU
          seconds; then how long the streams take to close once the sockets do.
metrics   ``--readers`` concurrent ``GET /api/jobs/{id}/metrics`` while the silent clients are still
          there, twice (the first builds the table, the second is the finished job's cached one):
          wall time, the web process's CPU seconds, whether every reader got all 100,000 rows.

The silent sockets ask for a 4 KB receive buffer, as tests/service/test_durability.py's do: the
kernel still holds a megabyte or two per client on the server's side (its send buffer grows by
itself), which is kernel memory, not the web process's. The issue's figures before the fixes:
50 silent clients +1.4 GB and /api/health 24.6 s, 100 clients +3.3 GB; 50 /metrics reads 70 s of
CPU. Its target: +100 MB and /api/health under 100 ms with 100 clients.

Prints the figures as JSON and writes them to bench/results/history.json. Timings are wall-clock on
whatever else the machine is doing: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.service_bench import cpu_seconds, machine, percentile, rss_mb
from tests.service.server_process import REPO_ROOT, Server
from tests.service.sse import iter_sse

EPOCHS = 100_000
RESULTS = REPO_ROOT / "bench" / "results" / "history.json"


def finished_job(client: httpx.Client, epochs: int) -> tuple[str, float]:
    """A linear job of ``epochs`` points, run to the end: (its id, seconds it took)."""
    start = time.perf_counter()
    response = client.post("/api/jobs", json={"kind": "linear", "params": {"epochs": epochs}})
    response.raise_for_status()
    job_id = response.json()["id"]
    while (job := client.get(f"/api/jobs/{job_id}").json())["status"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.2)
    if job["status"] != "succeeded":
        raise RuntimeError(f"the job ended {job['status']}: {job['error']}")
    return job_id, time.perf_counter() - start


def replay(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """One client reading the whole history as fast as it can."""
    start = time.perf_counter()
    events = 0
    with client.stream("GET", f"/api/jobs/{job_id}/events") as response:
        for event in iter_sse(response):
            events += 1
        size = response.num_bytes_downloaded
    return {"events": events, "bytes": size, "s": time.perf_counter() - start}


def silent_clients(port: int, job_id: str, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.sendall(f"GET /api/jobs/{job_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        socks.append(sock)
    return socks


def watch_until_quiet(client: httpx.Client, pid: int, base_mb: float, max_wait: float) -> dict[str, Any]:
    """Health latency, RSS and CPU every 0.2 s until the web process's CPU is under 5% for 2.5 s."""
    latencies, rss, samples = [], [], []
    cpu0 = cpu_seconds(pid)
    start = time.monotonic()
    most_open, quiet_after = 0, None
    while time.monotonic() - start < max_wait:
        t = time.perf_counter()
        health = client.get("/api/health").json()
        latencies.append(time.perf_counter() - t)
        most_open = max(most_open, health["open_streams"])
        rss.append(rss_mb(pid))
        now = time.monotonic()
        samples.append((now, cpu_seconds(pid)))
        window = [s for s in samples if now - s[0] <= 3]
        if now - start > 5 and now - window[0][0] >= 2.5:
            if (window[-1][1] - window[0][1]) / (now - window[0][0]) < 0.05:
                quiet_after = now - start
                break
        time.sleep(0.2)
    return {
        "streams_open_most": most_open,
        "quiet_after_s": quiet_after,  # None: still busy at --max-wait
        "web_cpu_s": cpu_seconds(pid) - cpu0,
        "rss_growth_peak_mb": max(rss) - base_mb,
        "rss_growth_at_end_mb": rss[-1] - base_mb,
        "health_ms": {
            "median": 1000 * statistics.median(latencies),
            "p95": 1000 * percentile(latencies, 95),
            "max": 1000 * max(latencies),
            "samples": len(latencies),
        },
    }


def concurrent_metrics(url: str, job_id: str, pid: int, readers: int) -> dict[str, Any]:
    def read(_: int) -> bytes:
        with httpx.Client(base_url=url, timeout=600) as client:
            response = client.get(f"/api/jobs/{job_id}/metrics")
            response.raise_for_status()
            return response.content

    cpu0 = cpu_seconds(pid)
    start = time.perf_counter()
    with ThreadPoolExecutor(readers) as pool:
        bodies = list(pool.map(read, range(readers)))
    wall = time.perf_counter() - start
    cpu = cpu_seconds(pid) - cpu0
    table = json.loads(bodies[0])
    return {
        "readers": readers,
        "wall_s": wall,
        "web_cpu_s": cpu,
        "bytes_each": len(bodies[0]),
        "all_complete": table["total"] == len(table["rows"]) == EPOCHS and all(b == bodies[0] for b in bodies),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100, help="silent clients on the finished job")
    parser.add_argument("--readers", type=int, default=50, help="concurrent /metrics reads")
    parser.add_argument("--max-wait", type=float, default=90, help="seconds to wait for the server to go quiet")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"machine": machine(), "clients": args.clients}
    with tempfile.TemporaryDirectory() as home:
        srv = Server(Path(home), workers=2).start()
        pid = srv.proc.pid
        try:
            with srv.client() as client:
                job_id, took = finished_job(client, EPOCHS)
                results["job"] = {"epochs": EPOCHS, "run_s": took}
                results["replay"] = replay(client, job_id)  # also warms the code paths and the pool
                base = rss_mb(pid)
                results["web_rss_before_mb"] = base
                socks = silent_clients(srv.port, job_id, args.clients)
                try:
                    results["silent"] = watch_until_quiet(client, pid, base, args.max_wait)
                    results["metrics_first"] = concurrent_metrics(srv.url, job_id, pid, args.readers)
                    results["metrics_cached"] = concurrent_metrics(srv.url, job_id, pid, args.readers)
                    results["web_rss_after_metrics_mb"] = rss_mb(pid)
                finally:
                    start = time.monotonic()
                    for sock in socks:
                        sock.close()
                while client.get("/api/health").json()["open_streams"] and time.monotonic() - start < 60:
                    time.sleep(0.05)
                results["streams_closed_after_s"] = time.monotonic() - start
        finally:
            results["stop_s"] = srv.stop()
    results["machine"]["loadavg_after"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
