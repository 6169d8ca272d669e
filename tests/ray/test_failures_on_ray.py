"""What goes wrong on a cluster: a task's worker killed, the data set missing on the node, the server
stopping while tasks run. After test_api_on_ray.py: each of these costs the cluster warm workers (a
killed one; a second server makes Ray retire idle workers beyond the CPU count).
"""

from __future__ import annotations

import contextlib
import tempfile
import importlib.util
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ray.conftest import RAY_ENV, RayCluster, ray_server_env
from tests.service.helpers import LONG_LINEAR, post_job, wait_for, wait_until_step, worker_pid
from tests.service.server_process import Server, alive, cmdline, descendants, free_port


def test_an_unreachable_cluster_stops_the_server_at_once_naming_the_address(tmp_path) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    srv = Server(tmp_path, env={"PLAYGROUND_EXECUTOR": "ray", "RAY_ADDRESS": address})
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=f"Cannot reach the Ray cluster at RAY_ADDRESS='{address}'"):
        srv.start()
    assert time.monotonic() - started < 60  # not ray.init's minutes of retries


def test_a_job_whose_ray_worker_is_killed_fails_with_the_error(ray_server: Server) -> None:
    with ray_server.client() as client:
        job = wait_until_step(client, post_job(client, "linear", LONG_LINEAR)["id"], 50)
        pid = worker_pid(job)
        os.kill(pid, signal.SIGKILL)
        done = wait_for(client, job["id"], timeout=60)
        assert done["status"] == "failed", done
        # e.g. "worker ray vm 127.0.0.1 (pid 1234) died while running the job: WorkerCrashedError: ..."
        assert f"(pid {pid}) died while running the job: WorkerCrashedError" in done["error"], done["error"]
        assert client.get(f"/api/jobs/{job['id']}/metrics").json()["total"] >= 50  # its points are kept
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


@pytest.mark.skipif(importlib.util.find_spec("app.experiments.cifar") is None, reason="no cifar experiment yet")
def test_cifar_missing_on_the_node_fails_naming_the_node(server_without_data: Server) -> None:
    with server_without_data.client() as client:
        job = post_job(client, "cifar", {"model": "conv", "epochs": 1})
        done = wait_for(client, job["id"], timeout=120)
    assert done["status"] == "failed", done
    # The experiment's DatasetMissing message, then the node that looked: "... (on Ray node vm (10.0.0.7))".
    assert done["error"].startswith("CIFAR-10 was not found in '") and "no-data" in done["error"]
    assert " (on Ray node " in done["error"] and done["error"].endswith(")")


def test_stopping_the_server_ends_its_running_ray_tasks(server_without_data: Server) -> None:
    with server_without_data.client() as client:
        job = wait_until_step(client, post_job(client, "linear", LONG_LINEAR)["id"], 10)
    pid = worker_pid(job)
    assert server_without_data.stop() < 15
    # The task was cancelled by force: its worker process is gone, not training for no one.
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid)


def test_kill_9_of_a_server_that_started_its_own_ray_leaves_no_ray_process(tmp_path) -> None:
    # Issue 10, item 12: a SIGKILL of the server left ray::DashboardAgent and ray::RuntimeEnvAgent
    # running (a SIGTERM was clean). The server's watchdog (app/jobs/ray_watchdog.py) ends them.
    ray_temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's unix socket paths must stay short
    srv = Server(
        tmp_path / "home",
        env={"PLAYGROUND_EXECUTOR": "ray", "RAY_TMPDIR": str(ray_temp), **RAY_ENV},
    ).start()
    ray_processes = [pid for pid in descendants(srv.proc.pid) if "ray_watchdog" not in cmdline(pid)]
    assert any("raylet" in cmdline(pid) for pid in ray_processes), "premise: the server started a local Ray"
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(30)
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in ray_processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {pid: cmdline(pid) for pid in ray_processes if alive(pid)}
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(ray_temp, ignore_errors=True)
    assert not left, f"Ray processes outlived the server: {left}"
