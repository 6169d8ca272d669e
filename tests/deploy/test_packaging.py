"""A regular install (the Docker image) must carry every template and static file the pages use."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_data_files_cover_every_template_and_static_file():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packaged = {
        path.relative_to(ROOT)
        for patterns in config["tool"]["setuptools"]["data-files"].values()
        for pattern in patterns
        for path in ROOT.glob(pattern)
    }
    shipped = {
        path.relative_to(ROOT)
        for folder in ("templates", "static")
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    missing = sorted(str(p) for p in shipped - packaged)
    assert not missing, f"add these to [tool.setuptools.data-files] in pyproject.toml: {missing}"


def test_data_files_keep_the_folder_layout():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for target, patterns in config["tool"]["setuptools"]["data-files"].items():
        for pattern in patterns:
            folder = str(Path(pattern).parent)
            assert target == f"share/pytorch-playground/{folder}", (target, pattern)
