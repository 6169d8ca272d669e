"""`playground train` in a terminal: the progress bar, fed every point of a run, to the end.

`playground train cifar` once crashed at its first epoch's end (the bar tried to format cifar's
per-class accuracies, a dict) while every CLI test passed: they all ran with --json, which turns
the bar off. These run each kind without it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.tiny_cifar import write_tiny_cifar_image_folder

pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "kind,params,shown",
    [
        ("linear", ["-p", "epochs=500"], "train_loss="),
        ("mlp", ["-p", "epochs=300"], "train_loss="),
        ("cifar", ["-p", "model=conv", "-p", "epochs=2", "-p", "batch_size=16"], "val_acc="),
    ],
)
def test_train_with_the_progress_bar_runs_to_the_end(tmp_path, kind, params, shown):
    data = write_tiny_cifar_image_folder(tmp_path / "data")
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "PLAYGROUND_DATA_DIR": str(data),
        "PLAYGROUND_HOME": str(tmp_path / "home"),
        "PLAYGROUND_ALLOW_DOWNLOAD": "false",
    }
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "train", kind, "--seed", "1", "--device", "cpu", *params],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert f"{kind}: succeeded (seed 1, device cpu)" in done.stdout + done.stderr
    # The bar reached its end and showed the metrics beside it.
    assert "100%" in done.stderr and shown in done.stderr, done.stderr[-2000:]
