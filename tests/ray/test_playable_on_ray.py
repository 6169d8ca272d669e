"""Playable runs with the Ray executor: tests/service/test_playable.py again, on the Ray cluster.

That suite holds a job deterministically by queueing it behind a "blocker" job on a server that
runs one job at a time. On Ray a server runs as many jobs at once as the cluster has CPUs for
(``cluster CPUs // PLAYGROUND_RAY_NUM_CPUS``), so the ``one_worker`` fixture below is a server whose
jobs each reserve all the session cluster's CPUs: one job at a time, the blocker holds the whole
cluster, and a job queued behind it waits in Ray's queue until the test lets it go (a paused job's
task ends and frees them). ``server_factory`` makes such servers too, ``workers=N`` meaning N jobs at
once, for the crash test: there the server is killed with SIGKILL while its job trains on the
cluster; Ray ends the tasks of a driver that is gone, and the restarted server resumes the job on
the cluster from the checkpoint that came back to its own PLAYGROUND_HOME.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerFactory, tiny_cifar_env
from tests.ray.conftest import RayCluster, ray_server_env
from tests.service.server_process import Server
from tests.service.test_playable import (  # noqa: F401  (pytest collects the tests this module holds)
    client,
    test_a_cifar_epoch_step_runs_to_the_end_of_the_epoch,
    test_a_change_to_a_running_job_is_a_control_event_at_the_step_it_took_effect,
    test_a_live_lr_change_equals_a_fork_with_that_lr,
    test_a_paused_job_gives_its_worker_back,
    test_bad_changes_name_the_parameter_and_what_is_allowed,
    test_commands_on_a_finished_job_are_409_and_change_nothing,
    test_forks_that_cannot_be_made_say_why,
    test_kill_9_of_the_server_then_resume_finishes_with_the_weights_of_a_run_never_stopped,
    test_paused_stepped_and_resumed_equals_a_run_never_stopped,
    test_pause_and_cancel_racing_end_in_one_state,
    test_stepping_the_linear_fit_one_epoch_at_a_time_walks_gradient_descent,
    test_train_longer_forks_a_finished_run_at_its_last_step,
    test_unknown_jobs_are_404,
)

CLUSTER_CPUS = 2  # tests/ray/conftest.py's ray_cluster


def ray_server(cluster: RayCluster, home: Path, data_env: dict[str, str], jobs_at_once: int) -> Server:
    """A server on the cluster whose jobs reserve ``CLUSTER_CPUS / jobs_at_once`` CPUs each."""
    cpus = CLUSTER_CPUS / jobs_at_once
    return Server(home, env=ray_server_env(cluster, {**data_env, "PLAYGROUND_RAY_NUM_CPUS": f"{cpus:g}"}))


@pytest.fixture(scope="module")
def one_worker(ray_cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One job at a time on the Ray cluster: each reserves all of its CPUs."""
    env = tiny_cifar_env(tmp_path_factory.mktemp("ray-tiny-cifar"))
    srv = ray_server(ray_cluster, tmp_path_factory.mktemp("ray-playable-home"), env, jobs_at_once=1).start()
    with srv.client() as c:
        health = c.get("/api/health").json()
    assert health["executor"] == "ray" and health["workers"] == 1, health
    yield srv
    srv.stop()


@pytest.fixture
def server_factory(ray_cluster: RayCluster, tmp_path: Path) -> Iterator[ServerFactory]:
    """``server_factory(workers=N)``: a dedicated server on the cluster that runs N jobs at once."""
    servers: list[Server] = []

    def make(env: dict[str, str] | None = None, workers: int = 2, home: Path | None = None) -> Server:
        srv = ray_server(ray_cluster, home or tmp_path / f"home-{len(servers)}", env or {}, jobs_at_once=workers)
        servers.append(srv)
        return srv.start()

    yield make
    for srv in servers:
        srv.stop()


def test_the_server_runs_one_job_at_a_time_on_ray(client: httpx.Client) -> None:
    """The premise of the blocker: this module's server is on Ray and has one slot."""
    health = client.get("/api/health").json()
    assert health["executor"] == "ray" and health["workers"] == 1
    assert health["resources"]["cpus_per_job"] == CLUSTER_CPUS
