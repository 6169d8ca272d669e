"""The job API with the Ray executor: the service's API suite again, plus what is Ray's own.

Every test of tests/service/test_jobs_api.py that does not look at the local pool's processes is
imported here; the ``server`` fixture below makes them, and that suite's module fixtures, use the
server on the session's 2-CPU Ray cluster (each job reserves one CPU, so two run at once). The
local-only ones have Ray counterparts: /api/health below, a killed worker in test_failures_on_ray.py.
"""

from __future__ import annotations

import pytest

from tests.ray.conftest import RayCluster
from tests.service.helpers import (
    BOOK_B,
    BOOK_PARAMS,
    BOOK_W,
    LONG_LINEAR,
    post_job,
    wait_for,
    wait_until_step,
    worker_pid,
)
from tests.export.test_onnx import (  # noqa: F401  (the ONNX export, made by a Ray task)
    test_the_onnx_model_gives_the_runs_predictions,
)
from tests.service.server_process import Server, descendants
from tests.service.test_jobs_api import (  # noqa: F401  (pytest collects the tests and fixtures this module holds)
    book_job,
    cifar_job,
    client,
    spiky_job,
    test_cancel_a_running_and_a_queued_job,
    test_delete_removes_the_job_its_metrics_and_its_files,
    test_downsampled_metrics_keep_the_spike,
    test_list_is_newest_first_and_filters,
    test_many_watchers_each_get_every_point,
    test_metrics_without_max_points_are_every_point,
    test_openapi_and_docs,
    test_predict_cifar_from_an_image_of_any_size,
    test_predict_cifar_says_when_a_file_is_not_an_image,
    test_predict_linear_in_data_units,
    test_predict_mlp,
    test_predict_rejects_inputs_it_cannot_use,
    test_reconnect_with_last_event_id_misses_nothing_and_repeats_nothing,
    test_the_books_linear_fit_through_the_api,
    test_the_stream_goes_from_the_first_event_to_done_with_every_point,
    test_the_stream_is_not_buffered_by_proxies,
    test_the_trained_weights_download,
    test_two_jobs_run_at_once,
    test_watching_a_finished_job_replays_the_same_events,
)


@pytest.fixture(scope="module")
def server(ray_server: Server) -> Server:
    """The suite's server: here the one whose jobs run on Ray."""
    return ray_server


def test_health_names_ray_and_the_cluster_resources(client) -> None:
    health = client.get("/api/health").json()
    assert health["executor"] == "ray"
    assert health["devices"] == ["cpu"]  # the test cluster has no GPU
    assert health["workers"] == 2  # 2 CPUs, 1 per job
    resources = health["resources"]
    assert resources["cpus"] == 2 and resources["gpus"] == 0 and resources["nodes"] == 1


def test_a_job_runs_in_a_ray_worker_and_its_weights_come_back(server, client, ray_cluster: RayCluster) -> None:
    job = wait_for(client, post_job(client, "linear", BOOK_PARAMS)["id"])
    assert job["status"] == "succeeded", job
    assert round(job["result"]["w"], 4) == BOOK_W and round(job["result"]["b"], 4) == BOOK_B
    # It ran in a process of the Ray cluster, not in one the server started.
    assert job["worker"].startswith("ray ")
    pid = worker_pid(job)
    assert pid in ray_cluster.session_pids() and pid not in descendants(server.proc.pid)
    # The weights came back from the task; the web process wrote them to its own models dir.
    assert job["has_model"] is True
    assert (server.home / "models" / f"{job['id']}.pt").stat().st_size > 0


def test_cancel_stops_a_running_job_by_itself_and_keeps_its_weights(client) -> None:
    job = wait_until_step(client, post_job(client, "linear", LONG_LINEAR)["id"], 10)
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 202
    done = wait_for(client, job["id"], timeout=30)  # the cancel is checked below: status and weights
    assert done["status"] == "cancelled", done
    # The cooperative check stopped it (no force-cancel, which would lose them): it has weights.
    assert done["has_model"] is True and done["error"] is None
    assert 10 <= client.get(f"/api/jobs/{job['id']}/metrics").json()["total"] < LONG_LINEAR["epochs"]
