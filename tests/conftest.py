"""Fixtures shared by the suite: a real ``playground serve`` on 127.0.0.1.

``server`` is one server for the whole session (starting one costs seconds: each worker imports
torch); ``server_factory`` makes dedicated ones, for tests that restart, kill or configure them.

    def test_something(server):
        httpx.get(f"{server.url}/api/health")

    def test_restart(server_factory):
        srv = server_factory(env={"PLAYGROUND_MAX_QUEUED": "2"}, workers=1)
        srv.restart()

Each server (tests/service/server_process.py) has its own ``PLAYGROUND_HOME`` (a temporary folder);
on teardown it is stopped with SIGTERM and the test fails if any process it started is still alive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.server_process import Server


# Seconds each scope (a module, or the shared Ray and Firefox scopes) took on one worker of a
# two-worker run (tests/module_seconds.py writes it from a JUnit XML report), and a guess for a
# scope it does not list yet.
MODULE_SECONDS = Path(__file__).with_name("module_seconds.json")
SECONDS_PER_UNKNOWN_TEST = 2.0
SHARED_SCOPES = ("tests/ray/", "tests/firefox/")


def scope_of(nodeid: str) -> str:
    """The scope a test runs in: its module, or one of :data:`SHARED_SCOPES`."""
    path = nodeid.split("::", 1)[0]
    for shared in SHARED_SCOPES:
        if path.startswith(shared):
            return shared
    return path


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """How ``pytest -n N`` (``make test``) shares the tests out: a module's tests run on one worker
    (its module-scoped servers and caches are made once), the Ray modules all on one (one Ray
    cluster at a time on the machine), and so do the Firefox tests (one Marionette port).

    The longest scope goes first (by :data:`MODULE_SECONDS`): xdist orders scopes by their number of
    tests, which put a few slow ones (the schema fuzzing, the exported script's builds) last, with
    one worker running them while the other had finished.

    (pytest-xdist's own ``--dist loadgroup`` marks do not take effect with pytest 9: its worker
    renames the tests' ids, which pytest 9 no longer reads.)"""
    import json

    from xdist.scheduler import LoadScopeScheduling

    known = json.loads(MODULE_SECONDS.read_text()) if MODULE_SECONDS.exists() else {}

    def expected_seconds(scope: str, work_unit: dict[str, bool]) -> float:
        return known.get(scope, SECONDS_PER_UNKNOWN_TEST * len(work_unit))

    class LongestModuleFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

        def _assign_work_unit(self, node: object) -> None:
            longest = max(self.workqueue, key=lambda scope: expected_seconds(scope, self.workqueue[scope]))
            self.workqueue.move_to_end(longest, last=False)
            super()._assign_work_unit(node)

    return LongestModuleFirst(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that used the session's server shows the server's last log lines (a worker's
    traceback, a refused request): what CI's output must carry, since its machine is gone after."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        srv = getattr(item, "funcargs", {}).get("server")
        if isinstance(srv, Server):
            report.sections.append(("the session server's log (last 60 lines)", srv.log_tail(60)))


def tiny_cifar_env(root: Path) -> dict[str, str]:
    """PLAYGROUND_DATA_DIR with the tiny CIFAR image folder, when its writer exists yet."""
    try:
        from tests.fixtures.tiny_cifar import write_tiny_cifar_image_folder
    except ImportError:
        return {}
    write_tiny_cifar_image_folder(root)
    return {"PLAYGROUND_DATA_DIR": str(root), "PLAYGROUND_ALLOW_DOWNLOAD": "false"}


ServerFactory = Callable[..., Server]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the session: 2 workers, the tiny CIFAR data set, no token."""
    home = tmp_path_factory.mktemp("server-home")
    env = tiny_cifar_env(tmp_path_factory.mktemp("tiny-cifar"))
    srv = Server(home, env=env, workers=2).start()
    yield srv
    srv.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """``server_factory(env={...}, workers=1)`` starts a dedicated server; all are stopped after the test."""
    servers: list[Server] = []

    def make(env: dict[str, str] | None = None, workers: int = 2, home: Path | None = None) -> Server:
        srv = Server(home or tmp_path / f"home-{len(servers)}", env=env, workers=workers)
        servers.append(srv)
        return srv.start()

    yield make
    errors = []
    for srv in servers:
        try:
            srv.stop()
        except AssertionError as exc:
            errors.append(str(exc))
    assert not errors, "\n".join(errors)


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    """A client of the session's server (the browser tests set things up and check through it)."""
    with server.client() as client:
        yield client
