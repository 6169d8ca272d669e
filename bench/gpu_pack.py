"""Pack what bench/gpu_check.sh needs on the GPU machine and cannot fetch there (issue 15).

The lent GPU machine (see the device tool's KINDS.md) has Python 3.12 with PyTorch, torchvision,
pytest and much else, but not this service's web stack (FastAPI, SQLModel, pydantic-settings,
uvicorn, Ray, ...), no network, and no ../shared/data. A device call carries at most 64 MiB of the
working tree, so this writes, under bench/gpu-pack/ (ignored by git):

- wheels/: CPython 3.12 manylinux wheels of the project's runtime and Ray closure, at the versions
  this .venv tested, less what the GPU image brings itself (torch and the heavy or compiled packages
  below: shadowing them could break its torch);
- ray-<version>.tar.xz: Ray's wheel (79 MB, over the limit alone) unpacked without its Java jars,
  the dashboard's web build and RLlib, none of which a local cluster without a dashboard uses;
- cifar10-jpeg/{train,test}.tar.xz: the real CIFAR-10 images of ../shared/data (92 MB of tar,
  18 MiB compressed: the per-file headers and the JPEGs' shared tables compress).

    .venv/bin/python bench/gpu_pack.py        # here, where PyPI is reachable; about 2 minutes

then, on a session lent a GPU, one device call: command ``bash bench/gpu_check.sh``, carry
``["bench/gpu-pack"]``; gpu_check.sh installs from the pack offline (pip --no-index --target).
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = REPO_ROOT / "bench" / "gpu-pack"
CIFAR_TARS = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg"
CARRY_LIMIT_MIB = 64

# What the service, the CUDA tests and the benchmark import, with Ray's executor (wcwidth: Ray's
# bundled tabulate imports it where it is found, and the machine lacks it).
ROOTS = ["fastapi", "uvicorn", "httptools", "pydantic", "pydantic-settings", "sqlmodel", "python-multipart",
         "httpx", "typing-extensions", "ray", "wcwidth"]
MACHINE_PACKAGES = Path(__file__).with_name("gpu_machine_packages.txt")
# Taken from the GPU image, not shipped: torch and what torch, pytest and Ray's compiled parts build
# on there (their versions are the image's; a newer pure-Python copy could break their imports).
FROM_THE_IMAGE = {
    "torch", "torchvision", "triton", "numpy", "pillow", "sympy", "mpmath", "networkx", "filelock", "fsspec",
    "jinja2", "markupsafe", "setuptools", "onnx", "onnxruntime", "onnxscript", "onnx-ir", "ml-dtypes",
    "pytest", "pluggy", "iniconfig", "packaging", "pytest-timeout", "pytest-xdist", "execnet", "tqdm",
    "protobuf", "msgpack", "pyyaml", "requests", "urllib3", "certifi", "charset-normalizer", "grpcio",
    "aiohttp", "click",
}
# Left out of Ray's wheel (sizes unpacked): Java workers' jars (33 MB), the dashboard's web app
# (about 10 MB; the test cluster runs with --include-dashboard=false), RLlib (8 MB).
RAY_PRUNED = ["ray/jars", "ray/dashboard/client/build", "ray/rllib"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64"]
MARKER_ENV = {"sys_platform": "linux",
              "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
              "platform_python_implementation": "CPython", "os_name": "posix"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def on_the_machine() -> set[str]:
    """The GPU image's packages (bench/gpu_machine_packages.txt)."""
    lines = MACHINE_PACKAGES.read_text().splitlines()
    return {normalized(line) for line in lines if line.strip() and not line.startswith("#")}


def closure(roots: list[str], python: str) -> dict[str, str]:
    """Name -> version of every distribution the roots need on that Python, as installed here."""
    env = {**MARKER_ENV, "python_version": python, "python_full_version": f"{python}.0"}
    found: dict[str, str] = {}
    seen: set[tuple[str, tuple[str, ...]]] = set()
    stack: list[tuple[str, tuple[str, ...]]] = [(root, ()) for root in roots]
    while stack:
        name, extras = stack.pop()
        name = normalized(name)
        if (name, extras) in seen or name in FROM_THE_IMAGE or name.startswith(("nvidia-", "cuda-")):
            continue
        seen.add((name, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            sys.exit(f"{name} is not installed here: run `make install-test` and `.venv/bin/pip install -e '.[ray]'`")
        found[name] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            wanted = requirement.marker is None or any(
                requirement.marker.evaluate({**env, "extra": extra}) for extra in (extras or ("",))
            )
            if wanted:
                stack.append((requirement.name, tuple(sorted(requirement.extras))))
    return found


def download(pins: list[str], dest: Path, python: str) -> None:
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--python-version", python, "--implementation", "cp", *platforms, "--dest", str(dest), *pins],
        check=True,
    )


def xz_file(source: Path, target: Path) -> None:
    with target.open("wb") as out:
        subprocess.run(["xz", "-6", f"-T{os.cpu_count() or 1}", "-c", str(source)], stdout=out, check=True)


def xz_tar(folder: Path, target: Path) -> None:
    """A tar of what ``folder`` holds (its entries at the archive's top), compressed with xz -9
    (Ray's binaries: 24 MiB against 28 at -6, for a minute more)."""
    env = {**os.environ, "XZ_OPT": f"-9 -T{os.cpu_count() or 1}"}
    members = sorted(p.name for p in folder.iterdir())
    subprocess.run(["tar", "-cJf", str(target), *members], cwd=folder, env=env, check=True)


def pack_ray(version: str, dest: Path, python: str) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        download([f"ray=={version}"], Path(tmp), python)
        (wheel,) = Path(tmp).glob("ray-*.whl")
        tree = Path(tmp) / "tree"
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(tree)
            for info in archive.infolist():  # zipfile drops the modes: raylet and gcs_server run
                if mode := info.external_attr >> 16:
                    (tree / info.filename).chmod(mode & 0o777)
        for path in RAY_PRUNED:
            shutil.rmtree(tree / path)
        target = dest / f"ray-{version}.tar.xz"
        xz_tar(tree, target)
        return target


def mib(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    parser.add_argument("--no-data", action="store_true", help="leave the CIFAR-10 images out")
    parser.add_argument(
        "--python", default="3.12", help="the GPU machine's Python (3.12); another to try the pack out elsewhere"
    )
    args = parser.parse_args()

    pins = closure(ROOTS, args.python)
    ray_version = pins.pop("ray")
    if args.dest.exists():
        shutil.rmtree(args.dest)
    (args.dest / "wheels").mkdir(parents=True)
    print(f"wheels for Python {args.python} ({len(pins)}): {' '.join(f'{n}=={v}' for n, v in sorted(pins.items()))}")
    download([f"{name}=={version}" for name, version in sorted(pins.items())], args.dest / "wheels", args.python)
    print(f"ray {ray_version}, pruned of {', '.join(RAY_PRUNED)}")
    pack_ray(ray_version, args.dest, args.python)
    if not args.no_data:
        (args.dest / "cifar10-jpeg").mkdir()
        for name in ("train.tar", "test.tar"):
            if not (CIFAR_TARS / name).is_file():
                sys.exit(f"{CIFAR_TARS / name} is missing: the benchmark needs the real CIFAR-10 images")
            xz_file(CIFAR_TARS / name, args.dest / "cifar10-jpeg" / f"{name}.xz")

    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    tree_mib = sum((REPO_ROOT / p).stat().st_size for p in tracked.decode().split("\0") if p and (REPO_ROOT / p).is_file()) / 2**20
    for part in sorted(args.dest.iterdir()):
        print(f"  {part}: {mib(part):.1f} MiB")
    total = mib(args.dest) + tree_mib
    print(f"with the tracked tree ({tree_mib:.1f} MiB): {total:.1f} MiB of the {CARRY_LIMIT_MIB} MiB a device call carries")
    if total > CARRY_LIMIT_MIB - 2:
        sys.exit("too much to carry: leave the data out (--no-data) and carry it in a call of its own")


if __name__ == "__main__":
    main()
