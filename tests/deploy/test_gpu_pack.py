"""bench/gpu_pack.py packs what the lent GPU machine lacks; a dependency it leaves out would show only
there, in a call no one can repeat cheaply. So: everything the server, its workers, Ray's executor
and the CUDA tests import is either in the pack or among the packages taken from the machine."""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

IMPORTS = [
    "app.main", "app.cli", "app.jobs.worker", "app.jobs.preload", "app.experiments.cifar", "app.jobs.ray_executor",
    "app.jobs.ray_tasks", "ray", "ray.scripts.scripts", "tests.service.test_cuda_jobs", "tests.ray.conftest",
]


def load_gpu_pack():
    spec = importlib.util.spec_from_file_location("gpu_pack", ROOT / "bench" / "gpu_pack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed (pip install '.[ray]')")
def test_the_pack_and_the_gpu_machine_cover_every_import_of_the_service_and_its_cuda_tests():
    gpu_pack = load_gpu_pack()
    script = (
        "import importlib, json, sys\n"
        f"for name in {IMPORTS!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    owners = metadata.packages_distributions()
    needed = {gpu_pack.normalized(dist) for module in loaded for dist in owners.get(module, [])}
    assert {"fastapi", "sqlmodel", "ray", "torch"} <= needed, "premise: the imports reached the stack"

    packed = set(gpu_pack.closure(gpu_pack.ROOTS, "3.12"))
    machine = gpu_pack.on_the_machine()
    missing = needed - packed - machine - {"pytorch-playground"}
    assert not missing, f"imported but neither packed nor on the GPU machine: {sorted(missing)} (add to ROOTS)"
    # What the pack leaves to the machine is there, and the pack does not shadow it.
    assert gpu_pack.FROM_THE_IMAGE <= machine, sorted(gpu_pack.FROM_THE_IMAGE - machine)
    assert not packed & gpu_pack.FROM_THE_IMAGE
