"""docker/constraints.txt, the versions the image installs besides torch (written by `make lock`).

That pip can install them together, with the project, is what tests/deploy/test_build.py shows: it
runs docker/install.sh, which passes the file to pip as constraints. Here: the file's form, and that
it pins every runtime dependency of pyproject.toml at a version the project allows.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "docker" / "constraints.txt"
NOT_PINNED = {"torch", "torchvision"}  # install.sh pins these from the Dockerfile's build arguments


def pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-z0-9-]+)==([0-9A-Za-z.+!-]+)", line)
        assert match, f"docker/constraints.txt: {line!r} is not a canonical 'name==version' pin"
        name, version = match.groups()
        assert name not in found, f"docker/constraints.txt pins {name} twice"
        found[name] = version
    return found


def test_every_runtime_dependency_is_pinned_at_a_version_the_project_allows():
    dependencies = [Requirement(d) for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    pinned = pins()
    for requirement in dependencies:
        name = canonicalize_name(requirement.name)
        if name in NOT_PINNED:
            assert name not in pinned, f"{name} is pinned by the Dockerfile's build arguments, not here"
            continue
        assert name in pinned, f"{name} is a dependency in pyproject.toml but not in docker/constraints.txt: run `make lock`"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"docker/constraints.txt pins {name}=={pinned[name]}, outside pyproject.toml's {requirement}: run `make lock`"
        )
    # uvicorn[standard]: its extra's packages are pinned too.
    assert {"uvloop", "httptools", "websockets", "watchfiles"} <= set(pinned)


def test_the_pins_are_sorted_and_say_where_they_come_from():
    names = list(pins())
    assert names == sorted(names)
    assert "make lock" in CONSTRAINTS.read_text().splitlines()[1]


def test_lock_writes_what_this_environment_has():
    """docker/lock.py, run here, pins each package at the version installed in this environment."""
    sys.path.insert(0, str(ROOT / "docker"))
    try:
        import lock
    finally:
        sys.path.remove(str(ROOT / "docker"))
    from importlib import metadata

    closure = lock.closure()
    assert NOT_PINNED.isdisjoint(closure) and "pytorch-playground" not in closure
    assert closure["fastapi"] == metadata.version("fastapi") and "pydantic-core" in closure
    assert "pytest" not in closure and "playwright" not in closure  # the test extra is not the image's
    text = lock.render(closure)
    assert text.splitlines()[3:] == [f"{name}=={version}" for name, version in sorted(closure.items())]
