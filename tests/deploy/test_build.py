"""Build the project the way the Dockerfile's builder stage does, without Docker, and serve from it.

The builder's RUN lines are read from the Dockerfile and run as they are, with its build-argument
defaults, in a clean copy of the context that .dockerignore leaves, into a fresh virtual
environment. Only two things differ from an image build: the torch index (PyTorch's CPU index is not
reachable here, so pip's default index) and the paths (a temporary directory for /opt/venv and /src).
Then the server starts from that environment, in an empty directory, with PLAYGROUND_HOME on a fresh
directory as in the image, answers the image's health probe, and stops cleanly on SIGTERM.

A fresh environment with torch is ~5.5 GB, and unpacking PyPI's CUDA build of torch into it took
4-5 minutes on the 2-core development box: more than this suite can spend. So by default the fresh
environment sees the test run's own torch and torchvision (the same pinned versions) through a
``.pth`` file, before the builder's lines run: ``install.sh torch`` still runs and pip confirms the
pins are satisfied, and ``install.sh app`` installs everything else into the fresh environment from
the clean context. ``PLAYGROUND_TEST_FULL_TORCH_INSTALL=1`` unpacks torch for real instead.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.deploy._dockerfile import copy_context, parse_stages, stage

INSTALL_TIMEOUT_S = 900
# The fixture's install counts toward the first test's time: about a minute on an idle machine,
# several when the two cores are shared with other test runs.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2 * INSTALL_TIMEOUT_S + 120)]
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20


def builder_environment(venv: Path) -> dict[str, str]:
    """The builder stage's ARG and ENV values, from the Dockerfile, with the two documented swaps."""
    global_args, _ = parse_stages()
    env: dict[str, str] = {}
    for name in ("base", "builder"):
        for instruction, value in stage(name).instructions:
            if instruction == "ENV":
                env.update(pair.split("=", 1) for pair in shlex.split(value))
            elif instruction == "ARG":
                key, _, default = value.partition("=")
                env[key] = default or global_args.get(key, "")
    env.update(
        VIRTUAL_ENV=str(venv),
        PYTHON=sys.executable,  # the image's python3 is the base image's; here, this one
        TORCH_INDEX_URL="default",  # PyTorch's CPU wheel index is not reachable from this machine
    )
    return env


# torch, torchvision and the CUDA libraries PyPI's torch brings: the gigabytes of the environment.
HEAVY_DISTRIBUTIONS = ("torch", "torchgen", "functorch", "torchvision", "triton", "nvidia", "cuda")


def share_torch_with(venv: Path, root: Path) -> None:
    """Make the running interpreter's torch visible to the fresh ``venv`` (see the module docstring)."""
    import torch

    site_packages = Path(torch.__file__).resolve().parents[1]
    shared = root / "shared-torch"
    shared.mkdir()
    for entry in site_packages.iterdir():
        name = entry.name.lower()
        if name.startswith(HEAVY_DISTRIBUTIONS) and not name.startswith("torch_"):
            (shared / entry.name).symlink_to(entry)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (venv_site := next(venv.glob("lib/python*/site-packages"))).mkdir(exist_ok=True)
    (venv_site / "_shared_torch.pth").write_text(f"{shared}\n")


def install_commands() -> list[str]:
    """The builder's RUN lines; each must go through docker/install.sh, so this test runs the same."""
    runs = stage("builder").values("RUN")
    assert runs == ["sh docker/install.sh torch", "sh docker/install.sh app"], (
        f"the builder's RUN lines changed to {runs}: keep them calls to docker/install.sh, "
        "which this test runs as they are"
    )
    return runs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(venv, context) after running the builder's install lines; the venv is removed at the end."""
    root = tmp_path_factory.mktemp("docker-build")
    context, venv = root / "src", root / "venv"
    files = copy_context(context)
    assert "pyproject.toml" in files
    env = {**os.environ, **builder_environment(venv)}
    env.pop("PYTHONPATH", None)
    if os.environ.get("PLAYGROUND_TEST_FULL_TORCH_INSTALL") != "1":
        share_torch_with(venv, root)
    for command in install_commands():
        started = time.monotonic()
        result = subprocess.run(
            command, shell=True, cwd=context, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
        )
        print(f"{command}: {time.monotonic() - started:.0f} s")
        assert result.returncode == 0, f"{command} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    yield venv, context
    shutil.rmtree(root, ignore_errors=True)  # ~5.5 GB: do not leave it to pytest's basetemp rotation


def probe(venv: Path, context: Path, url: str) -> subprocess.CompletedProcess:
    """The image's HEALTHCHECK command: the venv's python running docker/healthcheck.py."""
    return subprocess.run(
        [str(venv / "bin/python"), str(context / "docker/healthcheck.py"), url],
        capture_output=True, text=True, timeout=10,
    )


def test_install_puts_the_app_in_the_venv_not_the_source_tree(built, tmp_path):
    venv, context = built
    result = subprocess.run(
        [str(venv / "bin/python"), "-c", "import app, torch, torchvision; print(app.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )
    # The runtime stage copies only the venv: the app must not point back at /src.
    assert Path(result.stdout.strip()).is_relative_to(venv)
    assert (venv / "bin/playground").exists()


def test_server_from_the_built_venv_is_healthy_and_stops_on_sigterm(built, tmp_path):
    venv, context = built
    port = free_port()
    health_url = f"http://127.0.0.1:{port}/api/health"
    home, workdir = tmp_path / "data", tmp_path / "cwd"
    workdir.mkdir()
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("PLAYGROUND_") and key != "PYTHONPATH"
    }
    env.update(PLAYGROUND_HOME=str(home), PLAYGROUND_WORKERS="1", PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    # The image's CMD, with a free port and loopback instead of 0.0.0.0.
    command = ["playground", "serve", "--host", "127.0.0.1", "--port", str(port)]
    assert command[:2] == json.loads(stage("runtime").values("CMD")[-1])[:2]
    server = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        result = probe(venv, context, health_url)
        while result.returncode != 0:
            assert server.poll() is None, f"the server exited with {server.returncode}:\n{server.stdout.read()}"
            assert time.monotonic() < deadline, f"not healthy after {START_TIMEOUT_S} s: {result.stdout}"
            time.sleep(0.5)
            result = probe(venv, context, health_url)
        assert result.stdout.startswith("healthy: ") and "HTTP 200" in result.stdout

        with urllib.request.urlopen(health_url, timeout=5) as response:
            health = json.load(response)
        assert health["status"] == "ok" and health["workers"] == 1
        # Pages and static files must come with the installed package, not the source tree.
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
                page_status = response.status
        except urllib.error.HTTPError as exc:
            page_status = exc.code
        assert page_status < 500, f"GET / answered {page_status} from the installed package"
        assert (home / "playground.sqlite3").exists(), "state must go under PLAYGROUND_HOME"

        server.send_signal(signal.SIGTERM)  # what `docker stop` sends through tini
        output, _ = server.communicate(timeout=STOP_TIMEOUT_S)
        assert server.returncode == 0, f"exit {server.returncode} on SIGTERM:\n{output[-3000:]}"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    unhealthy = probe(venv, context, health_url)
    assert unhealthy.returncode == 1 and unhealthy.stdout.startswith("unhealthy: ")
