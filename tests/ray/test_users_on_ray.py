"""The fair queue on Ray: the server holds the jobs and gives Ray the next one, users in turn, when
a slot frees up (tests/service/test_users.py's test, on a server that runs one job at a time)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ray.conftest import RayCluster
from tests.ray.test_playable_on_ray import ray_server
from tests.service.test_users import (  # noqa: F401  (pytest collects the test this module holds)
    ENV,
    Classroom,
    add_user,
    test_a_single_job_starts_after_at_most_one_of_anothers_many,
)


@pytest.fixture(scope="module")
def school(ray_cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Classroom]:
    home = tmp_path_factory.mktemp("ray-class-home")
    tokens = {name: add_user(home, name, role) for name, role in [("ann", "student"), ("ben", "student"), ("tess", "teacher")]}
    server = ray_server(ray_cluster, home, ENV, jobs_at_once=1).start()
    room = Classroom(server, tokens)
    with server.client() as client:
        health = client.get("/api/health").json()
    assert health["executor"] == "ray" and health["workers"] == 1, health
    yield room
    room.close()
    server.stop()
