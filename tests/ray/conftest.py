"""A real Ray cluster for the session, and a playground server that runs its jobs on it.

``ray_cluster``: ``ray start --head --block --num-cpus=2`` in a session of its own, started once
(a start costs seconds); at teardown it gets SIGTERM, which makes it stop every Ray process it
started, and the test fails if one of that session's processes is still alive.

``ray_server``: ``playground serve`` with ``PLAYGROUND_EXECUTOR=ray RAY_ADDRESS=<the cluster>``, the
tiny CIFAR data set, shared by the tests (its Ray workers import torch once).

Without Ray installed (``pip install '.[ray]'``) these tests are not collected.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import tiny_cifar_env
from tests.service.server_process import Server, alive, free_port

collect_ignore_glob = [] if importlib.util.find_spec("ray") else ["test_*.py"]

# Ray 2.60 turns on token authentication when ~/.ray/auth_token exists (a local ray.init() writes
# one): the test cluster and its server run without, so neither depends on the user's home.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
RAY_START_TIMEOUT_S = 90
RAY_STOP_TIMEOUT_S = 45  # the head drains running tasks before it stops


@dataclass
class RayCluster:
    address: str  # the GCS address, host:port, for RAY_ADDRESS
    proc: subprocess.Popen[bytes]
    temp_dir: Path
    log_path: Path

    def session_pids(self) -> list[int]:
        """Every live process in the session ``ray start`` leads: the GCS, the raylet, Ray's workers."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # After the command name: state, ppid, pgrp, session (fields 3-6 of /proc/PID/stat).
            if fields[0] != "Z" and int(fields[3]) == self.proc.pid:
                pids.append(int(entry))
        return pids

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_ray_cluster(num_cpus: int = 2, num_gpus: int = 0) -> RayCluster:
    # Ray's unix sockets live under the temp dir, and a socket path may have at most 107 bytes.
    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    log_path = temp_dir / "head.log"
    port = free_port()
    # Ray's own CLI, by module: where Ray was installed with --target (the GPU machine's offline
    # pack, bench/gpu_pack.py) there is no `ray` script beside the interpreter.
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*ray, "start", "--head", "--block", f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}",
             f"--port={port}", "--node-ip-address=127.0.0.1", f"--temp-dir={temp_dir}",
             "--include-dashboard=false", "--disable-usage-stats",
             "--object-store-memory=200000000"],  # 200 MB: the jobs pass metric points and weights only
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: the teardown can find every process it started
            env={**os.environ, **RAY_ENV, "RAY_ADDRESS": ""},
        )
    cluster = RayCluster(f"127.0.0.1:{port}", proc, temp_dir, log_path)
    deadline = time.monotonic() + RAY_START_TIMEOUT_S
    while "Ray runtime started" not in log_path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_ray_cluster(cluster)
            raise RuntimeError(f"ray start failed (exit {proc.poll()}):\n{cluster.log_tail()}")
        time.sleep(0.2)
    return cluster


def stop_ray_cluster(cluster: RayCluster) -> None:
    """SIGTERM to ``ray start --block`` stops every Ray process it started; fail if one survives."""
    pids = set(cluster.session_pids())
    if cluster.proc.poll() is None:
        cluster.proc.send_signal(signal.SIGTERM)
        try:
            cluster.proc.wait(RAY_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            cluster.proc.kill()
    pids |= set(cluster.session_pids())
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in pids if alive(pid)]
    for pid in left:  # only processes of the session this fixture started
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    shutil.rmtree(cluster.temp_dir, ignore_errors=True)
    assert not left, f"Ray processes left after the cluster stopped: {left}\n{cluster.log_tail()}"


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    cluster = start_ray_cluster(num_cpus=2)
    yield cluster
    stop_ray_cluster(cluster)


def ray_server_env(cluster: RayCluster, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "PLAYGROUND_EXECUTOR": "ray",
        "RAY_ADDRESS": cluster.address,
        "PLAYGROUND_RAY_NUM_CPUS": "1",  # two jobs at once on the 2-CPU cluster
        **RAY_ENV,
        **(extra or {}),
    }


@pytest.fixture(scope="session")
def ray_server(ray_cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One playground server on the Ray cluster for the session, with the tiny CIFAR data set."""
    home = tmp_path_factory.mktemp("ray-server-home")
    env = tiny_cifar_env(tmp_path_factory.mktemp("ray-tiny-cifar"))
    srv = Server(home, env=ray_server_env(ray_cluster, env)).start()
    yield srv
    srv.stop()
