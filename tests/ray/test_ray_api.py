"""The job API on the Ray executor: the scenarios of the local executor's suite, run on a real Ray.

The server (``ray_server``) runs with ``PLAYGROUND_EXECUTOR=ray`` against a 2-CPU Ray cluster its
fixture started; each job is a Ray task that reserves one CPU, so two run at once.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.ray.conftest import RayCluster, ray_server_env
from tests.service.server_process import Server, alive
from tests.service.sse import metric_points, read_events

# The book's result for the default linear job (chapter 5, 5000 epochs, lr=1e-2, t_un = 0.1 * t_u).
BOOK_W, BOOK_B, BOOK_LOSS = 5.3671, -17.3012, 2.927648
FINAL = {"succeeded", "failed", "cancelled", "diverged", "interrupted"}
LONG_LINEAR = {"kind": "linear", "params": {"epochs": 100_000}}  # ~20-60 s here: cancelled or killed


def create(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/jobs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def wait_for(client: httpx.Client, job_id: str, predicate, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if predicate(job):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {timeout} s: {job}"
        time.sleep(0.1)


def wait_until_training(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """Running, with at least one metric point stored (the task is past its start-up)."""
    job = wait_for(client, job_id, lambda j: j["status"] == "running" or j["status"] in FINAL)
    assert job["status"] == "running", job
    return wait_for(client, job_id, lambda j: (j["progress"]["epoch"] or 0) >= 1 or j["status"] in FINAL)


def test_health_names_ray_and_the_cluster_resources(ray_server: Server) -> None:
    health = httpx.get(f"{ray_server.url}/api/health").json()
    assert health["executor"] == "ray"
    assert health["devices"] == ["cpu"]  # the test cluster has no GPU
    assert health["workers"] == 2  # 2 CPUs, 1 per job
    resources = health["resources"]
    assert resources["cpus"] == 2 and resources["gpus"] == 0 and resources["nodes"] == 1


def test_the_books_linear_job_streams_to_done_and_predicts(ray_server: Server) -> None:
    with ray_server.client() as client:
        job = create(client, {"kind": "linear", "seed": 1})
        events = read_events(ray_server.url, job["id"])
        assert [e.event for e in events][-1] == "done"
        statuses = [e.data["status"] for e in events if e.event == "status"]
        assert statuses[:2] == ["queued", "running"]
        assert [e.id for e in events] == list(range(1, len(events) + 1))

        points = metric_points(events)
        assert [p["epoch"] for p in points] == list(range(1, 5001))  # every epoch, once, in order
        done = client.get(f"/api/jobs/{job['id']}").json()
        assert done["status"] == "succeeded", done
        assert done["worker"].startswith("ray ") and "pid " in done["worker"]
        assert done["result"]["w"] == pytest.approx(BOOK_W, abs=1e-3)
        assert done["result"]["b"] == pytest.approx(BOOK_B, abs=1e-3)
        assert done["result"]["train_loss"] == pytest.approx(BOOK_LOSS, abs=1e-4)
        # The weights came back from the task and were written by the web process.
        assert done["has_model"] is True
        assert (ray_server.home / "models" / f"{job['id']}.pt").is_file()

        # predict runs as a Ray task on those weights: t_c = w * 0.1 * t_u + b
        outputs = client.post(f"/api/jobs/{job['id']}/predict", json={"inputs": [50.0, 80.0]}).json()["outputs"]
        assert outputs == pytest.approx([BOOK_W * 5 + BOOK_B, BOOK_W * 8 + BOOK_B], abs=1e-2)


def test_cancel_stops_a_running_job_and_keeps_its_points(ray_server: Server) -> None:
    with ray_server.client() as client:
        job = create(client, LONG_LINEAR)
        wait_until_training(client, job["id"])
        asked = time.monotonic()
        assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 202
        done = wait_for(client, job["id"], lambda j: j["status"] in FINAL, timeout=10)
        assert done["status"] == "cancelled", done
        assert time.monotonic() - asked < 5
        # The cooperative check stopped it (no kill): it kept its weights up to there.
        assert done["has_model"] is True
        points = client.get(f"/api/jobs/{job['id']}/metrics").json()["total"]
        assert 1 <= points < 100_000


def test_cancel_a_queued_job_drops_it_at_once(ray_server: Server) -> None:
    with ray_server.client() as client:
        running = [create(client, LONG_LINEAR) for _ in range(2)]  # both CPUs of the cluster
        for job in running:
            wait_until_training(client, job["id"])
        queued = create(client, {"kind": "linear"})
        time.sleep(0.5)
        assert client.get(f"/api/jobs/{queued['id']}").json()["status"] == "queued"
        client.post(f"/api/jobs/{queued['id']}/cancel")
        done = wait_for(client, queued["id"], lambda j: j["status"] in FINAL, timeout=5)
        assert done["status"] == "cancelled" and done["started_at"] is None
        for job in running:
            client.post(f"/api/jobs/{job['id']}/cancel")
        for job in running:
            assert wait_for(client, job["id"], lambda j: j["status"] in FINAL, timeout=10)["status"] == "cancelled"


def test_two_jobs_run_at_once_on_two_cpus(ray_server: Server) -> None:
    with ray_server.client() as client:
        jobs = [create(client, {"kind": "linear", "params": {"epochs": 20_000}, "seed": s}) for s in (1, 2)]
        # Both are running at the same moment (each holds one of the cluster's CPUs).
        deadline = time.monotonic() + 90
        while True:
            statuses = [client.get(f"/api/jobs/{j['id']}").json()["status"] for j in jobs]
            if statuses == ["running", "running"]:
                break
            assert not FINAL & set(statuses), f"one finished before the other started: {statuses}"
            assert time.monotonic() < deadline, statuses
            time.sleep(0.05)
        health = client.get("/api/health").json()
        assert health["running"] == 2
        results = [wait_for(client, j["id"], lambda j: j["status"] in FINAL) for j in jobs]
        assert [r["status"] for r in results] == ["succeeded", "succeeded"]
        assert len({r["worker"] for r in results}) == 2  # two Ray worker processes


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


CIFAR_EXPERIMENT = _module_exists("app.experiments.cifar")
CIFAR_READY = CIFAR_EXPERIMENT and _module_exists("tests.fixtures.tiny_cifar")


@pytest.mark.skipif(not CIFAR_READY, reason="the cifar experiment or its tiny data set is not written yet")
def test_a_cifar_job_on_the_tiny_data_set_runs_on_ray(ray_server: Server) -> None:
    with ray_server.client() as client:
        job = create(client, {"kind": "cifar", "params": {"model": "conv", "epochs": 1, "augment": False}, "seed": 3})
        events = read_events(ray_server.url, job["id"])
        done = client.get(f"/api/jobs/{job['id']}").json()
        assert done["status"] == "succeeded", done
        assert done["worker"].startswith("ray ")
        points = metric_points(events)
        assert points and points[-1]["epoch"] == 1 and points[-1].get("val_acc") is not None
        assert done["has_model"] is True


# After the jobs of the shared server: killing a worker costs it a warm one, and starting a second
# server makes Ray retire idle workers beyond the CPU count, so a later job there would wait seconds.
def test_a_job_whose_ray_worker_is_killed_fails_with_the_error(ray_server: Server) -> None:
    with ray_server.client() as client:
        job = wait_until_training(client, create(client, LONG_LINEAR)["id"])
        pid = int(re.search(r"pid (\d+)", job["worker"]).group(1))
        os.kill(pid, signal.SIGKILL)
        done = wait_for(client, job["id"], lambda j: j["status"] in FINAL, timeout=60)
        assert done["status"] == "failed", done
        assert f"pid {pid}" in done["error"] and "died" in done["error"], done["error"]
        assert "WorkerCrashedError" in done["error"]
        assert not alive(pid)


@pytest.fixture(scope="module")
def server_without_data(ray_cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A second server on the same cluster, whose data dir is empty and who may not download."""
    empty = tmp_path_factory.mktemp("no-data")
    srv = Server(tmp_path_factory.mktemp("second-home"), env=ray_server_env(
        ray_cluster, {"PLAYGROUND_DATA_DIR": str(empty), "PLAYGROUND_ALLOW_DOWNLOAD": "false"}
    )).start()
    yield srv
    srv.stop()


@pytest.mark.skipif(not CIFAR_EXPERIMENT, reason="no cifar experiment yet")
def test_cifar_missing_on_the_node_fails_naming_the_node(server_without_data: Server) -> None:
    with server_without_data.client() as client:
        job = create(client, {"kind": "cifar", "params": {"model": "conv", "epochs": 1}})
        done = wait_for(client, job["id"], lambda j: j["status"] in FINAL, timeout=120)
    assert done["status"] == "failed", done
    assert "CIFAR-10 was not found" in done["error"] and "no-data" in done["error"]
    assert re.search(r" \(on Ray node \S+ \(\S+\)\)$", done["error"]), done["error"]


def test_stopping_the_server_ends_its_running_ray_tasks(server_without_data: Server) -> None:
    with server_without_data.client() as client:
        job = wait_until_training(client, create(client, LONG_LINEAR)["id"])
    pid = int(re.search(r"pid (\d+)", job["worker"]).group(1))
    took = server_without_data.stop()
    assert took < 15
    # The task was cancelled by force: its worker process is gone, not training for no one.
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid)
