"""Small client-side helpers for the service tests."""

from __future__ import annotations

import time
from typing import Any

import httpx

FINAL = {"succeeded", "failed", "cancelled", "diverged", "interrupted"}

# The book's chapter-5 run (listing 5.x): the numbers it prints after 5000 epochs.
BOOK_PARAMS = {"epochs": 5000, "lr": 1e-2, "input_scale": 0.1, "optimizer": "manual"}
BOOK_W, BOOK_B, BOOK_LOSS = 5.3671, -17.3012, 2.927648

# A linear job that runs for many seconds: it gets cancelled, killed or interrupted.
LONG_LINEAR = {"epochs": 100_000}


def post_job(client: httpx.Client, kind: str, params: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/jobs", json={"kind": kind, "params": params or {}, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def wait_for(
    client: httpx.Client, job_id: str, statuses: set[str] | str = FINAL, timeout: float = 60
) -> dict[str, Any]:
    """Poll the job until its status is one of ``statuses``."""
    wanted = {statuses} if isinstance(statuses, str) else statuses
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in wanted:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} is {job['status']} after {timeout} s, not {sorted(wanted)}: {job}")
        time.sleep(0.05)


def wait_until_step(client: httpx.Client, job_id: str, step: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        # A read shows the live step and the job's start (its worker) at once, stored or not.
        if (job["progress"]["step"] or 0) >= step:
            assert job["worker"], f"job {job_id} at step {job['progress']['step']} shows no worker: {job}"
            return job
        if job["status"] in FINAL or time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not reach step {step}: {job}")
        time.sleep(0.05)


def worker_pid(job: dict[str, Any]) -> int:
    """From the job's ``worker``, e.g. "local-1 (pid 1234)"."""
    return int(job["worker"].rsplit("pid ", 1)[1].rstrip(")"))


def field_errors(response: httpx.Response) -> dict[tuple, str]:
    """A 422's detail as {loc: msg}."""
    assert response.status_code == 422, response.text
    return {tuple(e["loc"]): e["msg"] for e in response.json()["detail"]}
