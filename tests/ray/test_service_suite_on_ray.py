"""The job service's API suite (tests/service/test_jobs_api.py), run again with the Ray executor.

Every test of that suite that does not look at the local pool's processes is imported here; the
``server`` fixture below makes them, and the suite's module fixtures, use the server on the session's
Ray cluster. The local-only ones have Ray counterparts in test_ray_api.py: a killed worker (Ray's
worker process, found by the pid the job reports), /api/health (``"executor": "ray"`` and the
cluster's resources).
"""

from __future__ import annotations

import pytest

from tests.service.server_process import Server
from tests.service.test_jobs_api import (  # noqa: F401  (pytest collects what this module holds)
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
    """The suite's server, here the one whose jobs run on Ray."""
    return ray_server
