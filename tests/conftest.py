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


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """How ``pytest -n N`` (``make test``) shares the tests out: a module's tests run on one worker
    (its module-scoped servers and caches are made once), the Ray modules all on one (one Ray
    cluster at a time on the machine), and so do the Firefox tests (one Marionette port).

    (pytest-xdist's own ``--dist loadgroup`` marks do not take effect with pytest 9: its worker
    renames the tests' ids, which pytest 9 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            for shared in ("tests/ray/", "tests/firefox/"):
                if path.startswith(shared):
                    return shared
            return path

    return ByModule(config, log)


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
