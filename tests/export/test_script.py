"""A job exported as code trains the same run: ``GET /api/jobs/{id}/script`` on a real server.

Each test trains jobs on a real server, fetches the script, runs it in a fresh interpreter from a
temporary folder (``python linear-1a2b3c4d.py [data dir]``), and compares its last line and the
weights it saves with the job's result and model download. On a CPU they are equal for every
kind -- bit for bit, with the worker's thread count for cifar -- which is stronger than the issue's
thresholds (1e-6 relative for linear and mlp, 0.5 accuracy points for cifar); both are asserted, so
a failure says which one broke.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.helpers import LONG_LINEAR, post_job, wait_for

torch = pytest.importorskip("torch")
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

SCRIPT_TIMEOUT_S = 120
PLAYGROUND_IMPORT = re.compile(r"^\s*(import|from)\s+(app|tests)\b", re.MULTILINE)

LINEAR_CASES = {
    # The book's scaled inputs (t_un = 0.1 * t_u) with its learning rates.
    "manual-scaled": {"optimizer": "manual", "lr": 1e-2, "input_scale": 0.1},
    "autograd-scaled": {"optimizer": "autograd", "lr": 1e-2, "input_scale": 0.1},
    "sgd-scaled": {"optimizer": "sgd", "lr": 1e-2, "input_scale": 0.1},
    "adam-scaled": {"optimizer": "adam", "lr": 1e-1, "input_scale": 0.1},
    # Raw readings need a rate under the stable bound of about 3.4e-4; these also hold out points.
    "manual-raw": {"optimizer": "manual", "lr": 1e-4, "input_scale": 1.0, "val_fraction": 0.2},
    "autograd-raw": {"optimizer": "autograd", "lr": 1e-4, "input_scale": 1.0, "val_fraction": 0.2},
    "sgd-raw": {"optimizer": "sgd", "lr": 1e-4, "input_scale": 1.0, "val_fraction": 0.2},
    "adam-raw": {"optimizer": "adam", "lr": 1e-2, "input_scale": 1.0, "val_fraction": 0.2},
    # A start dragged on the start page's loss surface (init_w, init_b) instead of the book's w=1, b=0.
    "manual-own-start": {"optimizer": "manual", "lr": 1e-2, "input_scale": 0.1, "init_w": -3.5, "init_b": 12.25},
    "adam-own-start": {"optimizer": "adam", "lr": 1e-1, "input_scale": 1.0, "val_fraction": 0.2, "init_w": 0.25, "init_b": -40.0},
}
# The job's own points: a bent curve with noise, not the book's readings.
OWN_POINTS = [[x / 2, 0.05 * (x / 2) ** 2 - 3 + ((x * 7919) % 13) / 13] for x in range(-20, 41)]
MLP_CASES = {
    "adam-book-data": {"optimizer": "adam", "lr": 1e-2, "epochs": 800},
    "sgd-own-points": {"optimizer": "sgd", "lr": 1e-3, "epochs": 600, "data": OWN_POINTS, "hidden": 8},
    # A deeper net (layers): the script builds the same hidden_linear_2, _3 in the same order.
    "adam-3-sigmoid-layers": {"optimizer": "adam", "lr": 1e-2, "epochs": 300, "layers": 3, "activation": "sigmoid", "hidden": 6},
}
CIFAR = {
    "dataset": "cifar10",
    "model": "conv",
    "epochs": 2,
    "batch_size": 16,  # the tiny set: 160 training images, 10 steps an epoch
    "optimizer": "nesterov_onecycle",
    "lr": 0.05,
}


# ----------------------------------------------------------------------------------------------
# Running an exported script


def final_numbers(output: str) -> dict[str, float | None]:
    """The script's last line, ``Final training loss 2.9, w 5.3, b -17.3``, as {name: value}."""
    last = output.strip().splitlines()[-1]
    assert last.startswith("Final "), f"the last line is not the final numbers: {last!r}"
    numbers: dict[str, float | None] = {}
    for part in last.removeprefix("Final ").split(", "):
        name, value = part.rsplit(" ", 1)
        numbers[name] = None if value == "None" else float(value)
    return numbers


def fetch_script(client: httpx.Client, job_id: str, fmt: str = "py") -> httpx.Response:
    response = client.get(f"/api/jobs/{job_id}/script", params={"format": fmt})
    assert response.status_code == 200, response.text
    return response


def script_env(threads: int) -> dict[str, str]:
    # The worker's intra-op thread count: a reduction split over other threads sums in another order.
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def run_script(
    client: httpx.Client, job_id: str, folder: Path, threads: int, data_dir: str | None = None
) -> tuple[dict[str, float | None], dict[str, Any], str]:
    """Fetch the job's script, run it alone in ``folder``; (final numbers, saved weights, output)."""
    response = fetch_script(client, job_id)
    assert response.headers["content-type"].startswith("text/x-python")
    filename = response.headers["content-disposition"].split('filename="')[1].rstrip('"')
    assert not PLAYGROUND_IMPORT.search(response.text), "a standalone script imports nothing of the playground"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / filename).write_text(response.text)
    args = [sys.executable, filename] + ([data_dir] if data_dir else [])
    done = subprocess.run(
        args, cwd=folder, env=script_env(threads), capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S
    )
    assert done.returncode == 0, f"{filename} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    weights = torch.load(folder / filename.replace(".py", ".pt"), weights_only=True)
    return final_numbers(done.stdout), weights, done.stdout


def job_weights(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/jobs/{job_id}/model")
    assert response.status_code == 200, response.text
    return torch.load(io.BytesIO(response.content), weights_only=True)


def assert_close(got: float | None, expected: float | None, what: str, rel: float = 1e-6) -> None:
    assert got is not None and expected is not None, f"{what}: {got} vs the job's {expected}"
    assert math.isclose(got, expected, rel_tol=rel), f"{what}: {got!r} vs the job's {expected!r}"


def assert_same_weights(got: dict[str, Any], expected: dict[str, Any], rel: float = 1e-6) -> None:
    assert got.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.allclose(got[name], tensor, rtol=rel, atol=0), f"{name}: over {rel} relative"
    for name, tensor in expected.items():
        assert torch.equal(got[name], tensor), f"{name}: within {rel} but not bit for bit"


def threads_per_worker(client: httpx.Client) -> int:
    return client.get("/api/health").json()["resources"]["threads_per_worker"]


def succeeded(client: httpx.Client, job_id: str) -> dict[str, Any]:
    job = wait_for(client, job_id, timeout=180)
    assert job["status"] == "succeeded", job
    return job


# ----------------------------------------------------------------------------------------------
# Jobs on the session's server (2 workers, the tiny CIFAR image folder), posted at once


@pytest.fixture(scope="module")
def client(server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def jobs(client: httpx.Client) -> dict[str, dict[str, Any]]:
    """Every job of this module's plain cases, trained in parallel while the first tests wait."""
    posted = {
        f"linear-{case}": post_job(client, "linear", {"epochs": 400, **params}, seed=7)
        for case, params in LINEAR_CASES.items()
    }
    posted |= {f"mlp-{case}": post_job(client, "mlp", params, seed=8) for case, params in MLP_CASES.items()}
    posted["cifar"] = post_job(client, "cifar", CIFAR, seed=9)
    return {name: succeeded(client, job["id"]) for name, job in posted.items()}


@pytest.mark.parametrize("case", LINEAR_CASES)
def test_the_linear_script_gives_the_jobs_w_b_and_loss(client, jobs, tmp_path, case):
    job = jobs[f"linear-{case}"]
    numbers, weights, output = run_script(client, job["id"], tmp_path, threads_per_worker(client))
    result = job["result"]
    assert_close(numbers["training loss"], result["train_loss"], "training loss")
    assert_close(numbers["w"], result["w"], "w")
    assert_close(numbers["b"], result["b"], "b")
    if result["val_loss"] is not None:
        assert_close(numbers["validation loss"], result["val_loss"], "validation loss")
    assert (numbers["training loss"], numbers["w"], numbers["b"]) == (result["train_loss"], result["w"], result["b"])
    assert_same_weights(weights, job_weights(client, job["id"]))
    assert output.startswith("Epoch 1, "), "the book's progress lines"


@pytest.mark.parametrize("case", MLP_CASES)
def test_the_mlp_script_gives_the_jobs_weights_and_losses(client, jobs, tmp_path, case):
    job = jobs[f"mlp-{case}"]
    numbers, weights, _ = run_script(client, job["id"], tmp_path, threads_per_worker(client))
    assert_close(numbers["training loss"], job["result"]["train_loss"], "training loss")
    assert_close(numbers["validation loss"], job["result"]["val_loss"], "validation loss")
    assert numbers["training loss"] == job["result"]["train_loss"]
    assert_same_weights(weights, job_weights(client, job["id"]))


def test_the_mlp_script_carries_the_jobs_own_points(client, jobs):
    script = fetch_script(client, jobs["mlp-sgd-own-points"]["id"]).text
    assert "35.7" not in script, "not the book's readings"
    assert "import app" not in script and "from app" not in script
    for x, y in OWN_POINTS[:3]:
        assert repr(float(x)) in script and repr(float(y)) in script


def test_the_cifar_script_reads_the_data_dir_and_gives_the_jobs_accuracy(client, jobs, server, tmp_path):
    job = jobs["cifar"]
    data_dir = server.env["PLAYGROUND_DATA_DIR"]
    numbers, weights, output = run_script(client, job["id"], tmp_path, threads_per_worker(client), data_dir)
    result = job["result"]
    assert abs(numbers["validation accuracy"] - result["val_acc"]) <= 0.005, (numbers, result)
    assert_close(numbers["training loss"], result["train_loss"], "training loss")
    assert_close(numbers["validation loss"], result["val_loss"], "validation loss")
    assert_same_weights(weights, job_weights(client, job["id"]))
    assert numbers["validation accuracy"] == result["val_acc"] and numbers["training accuracy"] == result["train_acc"]
    assert output.count(" Epoch ") == CIFAR["epochs"]


# ----------------------------------------------------------------------------------------------
# The notebook: valid for nbformat, runs top to bottom with the same numbers


def run_notebook(
    client: httpx.Client, job_id: str, folder: Path, threads: int, env: dict[str, str]
) -> tuple[dict[str, float | None], str]:
    response = fetch_script(client, job_id, "ipynb")
    assert response.headers["content-type"].startswith("application/x-ipynb+json")
    assert response.headers["content-disposition"].endswith('.ipynb"')
    notebook = nbformat.reads(response.text, as_version=4)
    nbformat.validate(notebook)
    headings = [cell.source.splitlines()[0] for cell in notebook.cells if cell.cell_type == "markdown"]
    assert headings[1:] == ["## The data", "## The model", "## The training loop", "## The result"]
    folder.mkdir(parents=True, exist_ok=True)
    with _environ({**env, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}):
        nbclient.NotebookClient(
            notebook, timeout=SCRIPT_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
        ).execute()
    last = notebook.cells[-1]
    text = "".join(output.get("text", "") for output in last.outputs if output.output_type == "stream")
    return final_numbers(text), text


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """The kernel nbclient starts inherits this process's environment."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def test_the_mlp_notebook_runs_top_to_bottom_to_the_jobs_numbers(client, jobs, tmp_path):
    job = jobs["mlp-adam-book-data"]
    numbers, _ = run_notebook(client, job["id"], tmp_path, threads_per_worker(client), {})
    assert numbers["training loss"] == job["result"]["train_loss"]
    assert numbers["validation loss"] == job["result"]["val_loss"]
    saved = torch.load(tmp_path / f"mlp-{job['id'][:8]}.pt", weights_only=True)
    assert_same_weights(saved, job_weights(client, job["id"]))


def test_the_cifar_notebook_reads_its_data_dir_from_the_environment(client, jobs, server, tmp_path):
    job = jobs["cifar"]
    env = {"CIFAR10_DATA": server.env["PLAYGROUND_DATA_DIR"]}
    numbers, _ = run_notebook(client, job["id"], tmp_path, threads_per_worker(client), env)
    assert abs(numbers["validation accuracy"] - job["result"]["val_acc"]) <= 0.005
    assert numbers["training loss"] == job["result"]["train_loss"]


# ----------------------------------------------------------------------------------------------
# Live changes and forks (one worker: a job waits behind a blocker until the test lets it go)


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory):
    from tests.service.server_process import Server

    srv = Server(tmp_path_factory.mktemp("export-home"), workers=1).start()
    yield srv
    srv.stop()


def held_job(client: httpx.Client, kind: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """A job paused before its first step: queued behind a blocker, paused there, then the blocker cancelled."""
    blocker = post_job(client, "linear", LONG_LINEAR)
    wait_for(client, blocker["id"], "running")
    job = post_job(client, kind, params, seed=seed)
    response = client.post(f"/api/jobs/{job['id']}/pause")
    assert response.status_code == 202 and response.json()["status"] == "paused", response.text
    client.post(f"/api/jobs/{blocker['id']}/cancel")
    wait_for(client, blocker["id"])
    return job


def test_a_live_lr_change_and_a_fork_are_in_the_script_at_their_steps(one_worker, tmp_path):
    params, k = {"epochs": 300, "optimizer": "adam", "lr": 0.1, "val_fraction": 0.2}, 120
    with one_worker.client() as client:
        threads = threads_per_worker(client)
        job = held_job(client, "linear", params, seed=21)
        response = client.post(f"/api/jobs/{job['id']}/step", json={"steps": k})
        assert response.status_code == 202, response.text
        assert wait_for(client, job["id"], "paused", timeout=120)["progress"]["step"] == k
        response = client.patch(f"/api/jobs/{job['id']}", json={"params": {"lr": 0.03}})
        assert response.status_code == 202, response.text
        assert client.post(f"/api/jobs/{job['id']}/resume").status_code == 202
        changed = succeeded(client, job["id"])
        assert changed["changes"] == [{"step": k, "params": {"lr": 0.03}, "before": {"lr": 0.1}}]

        script = fetch_script(client, job["id"]).text
        assert f"changes = {{{k}: {{\"lr\": 0.03}}}}" in script and "lr=0.1)" in script
        numbers, weights, _ = run_script(client, job["id"], tmp_path / "changed", threads)
        assert (numbers["training loss"], numbers["w"], numbers["b"]) == (
            changed["result"]["train_loss"], changed["result"]["w"], changed["result"]["b"]
        )
        assert_same_weights(weights, job_weights(client, job["id"]))

        # A fork after the change, with a lower rate and more epochs: its script trains the parent's
        # first 200 steps (the change at 120 included), then the fork's own parameters.
        response = client.post(
            "/api/jobs",
            json={"kind": "linear", "params": {"lr": 0.01, "epochs": 350}, "fork": {"job_id": job["id"], "step": 200}},
        )
        assert response.status_code == 201, response.text
        fork = succeeded(client, response.json()["id"])
        numbers, weights, _ = run_script(client, fork["id"], tmp_path / "fork", threads)
        assert (numbers["training loss"], numbers["w"], numbers["b"]) == (
            fork["result"]["train_loss"], fork["result"]["w"], fork["result"]["b"]
        )
        assert_same_weights(weights, job_weights(client, fork["id"]))

        # Without its parent, the steps before the fork are unknown: 409, saying so.
        assert client.delete(f"/api/jobs/{job['id']}").status_code == 204
        response = client.get(f"/api/jobs/{fork['id']}/script")
        assert response.status_code == 409 and "deleted" in response.json()["detail"], response.text


def test_an_unknown_job_has_no_script(client):
    response = client.get(f"/api/jobs/{'0' * 32}/script")
    assert response.status_code == 404 and "0" * 32 in response.json()["detail"]
    assert client.get(f"/api/jobs/{'0' * 32}/script", params={"format": "pdf"}).status_code == 422


# ----------------------------------------------------------------------------------------------
# The other layout: torchvision's pickle files (in-process: torchvision's md5 check is patched to
# the tiny files' md5s, which a server in another process cannot see)


def test_the_cifar_script_reads_torchvisions_pickle_layout(tmp_path, monkeypatch):
    from app.experiments.base import RunContext
    from app.experiments.cifar import run
    from app.experiments.params import CifarParams
    from app.export.history import RunHistory
    from app.export.script import export
    from app.models import Job
    from tests.fixtures.tiny_cifar import use_tiny_cifar_md5s, write_tiny_cifar_pickle

    tiny = write_tiny_cifar_pickle(tmp_path / "data")
    use_tiny_cifar_md5s(monkeypatch, tiny)
    params = CifarParams.model_validate({**CIFAR, "dataset": "cifar2", "model": "fc", "optimizer": "sgd", "lr": 0.01})
    outcome = run(params, RunContext(seed=5, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache"))
    job = Job(
        id="c" * 32, kind="cifar", params=params.model_dump(mode="json"), device="cpu", seed=5, status="succeeded"
    )
    exported = export(RunHistory(job=job, params=params, changes=(), lineage=()))
    (tmp_path / exported.filename).write_text(exported.body)
    # The script's own torchvision, pointed at the tiny files' md5s the same way before it runs.
    runner = (
        "import runpy, sys; from torchvision.datasets import CIFAR10; "
        f"CIFAR10.train_list, CIFAR10.test_list = {tiny.train_list!r}, {tiny.test_list!r}; "
        f"CIFAR10.meta = {tiny.meta!r}; "
        f"sys.argv = [{exported.filename!r}, {str(tmp_path / 'data')!r}]; runpy.run_path({exported.filename!r})"
    )
    threads = torch.get_num_threads()
    done = subprocess.run(
        [sys.executable, "-c", runner], cwd=tmp_path, env=script_env(threads), capture_output=True, text=True,
        timeout=SCRIPT_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    numbers = final_numbers(done.stdout)
    assert numbers["validation accuracy"] == outcome.result["val_acc"]
    assert numbers["training loss"] == outcome.result["train_loss"]
    saved = torch.load(tmp_path / exported.filename.replace(".py", ".pt"), weights_only=True)
    assert_same_weights(saved, outcome.state_dict)


# ----------------------------------------------------------------------------------------------
# The speedruns' switches (in-process on the tiny image folder: a run, its script, the same numbers)

SWITCHED_CIFAR = {
    "airbench-lookahead-alternate-flip-translate": {
        "model": "airbench", "width": 8, "lookahead": True, "flip": "alternate", "tta": "flip_translate"
    },
    "resnet-unwhitened-no-tta-nchw": {"model": "resnet", "whiten": False, "tta": "none", "channels_last": "off"},
    "conv-bfloat16-tta-nhwc": {"model": "conv", "mixed_precision": True, "tta": "flip", "channels_last": "on"},
    "resnet-lookahead-live-epochs": {"model": "resnet", "lookahead": True, "changes": {6: {"epochs": 3, "lr": 0.02}}},
    # airbench's optimiser: momentum 0.85, the norms' biases 64x faster; a live lr and decay change
    # re-plans both groups.
    "airbench-bias-rate-momentum-live-lr": {
        "model": "airbench", "width": 8, "momentum": 0.85, "bias_lr_scale": 64, "weight_decay": 0.005,
        "changes": {6: {"lr": 0.02, "weight_decay": 0.001}},
    },
}


def run_switched_and_export(tmp_path: Path, params: dict[str, Any], changes: dict[int, dict] | None = None):
    """A cifar run in this process (1 thread) with live ``changes`` at their steps, and its exported script."""
    from app.experiments.base import RunContext
    from app.experiments.cifar import run
    from app.experiments.control_basic import PauseAtStep
    from app.experiments.params import CifarParams
    from app.export.history import Change, RunHistory
    from app.export.script import export
    from app.models import Job
    from tests.fixtures.tiny_cifar import write_tiny_cifar_image_folder

    data = write_tiny_cifar_image_folder(tmp_path / "data")
    params = CifarParams.model_validate({**CIFAR, **params})
    control = PauseAtStep("cifar", changes=changes or {})
    outcome = run(params, RunContext(seed=5, data_dir=data, control=control))
    job = Job(
        id="d" * 32, kind="cifar", params=params.model_dump(mode="json"), device="cpu", seed=5, status="succeeded"
    )
    history_changes = tuple(Change(step, change) for step, change in (changes or {}).items())
    exported = export(RunHistory(job=job, params=params, changes=history_changes, lineage=()))
    (tmp_path / exported.filename).write_text(exported.body)
    return outcome, exported, data


@pytest.mark.parametrize("case", SWITCHED_CIFAR)
def test_the_cifar_script_repeats_a_run_with_the_speedrun_switches(tmp_path, case):
    from app.experiments.params import CifarParams

    params = dict(SWITCHED_CIFAR[case])
    changes = params.pop("changes", None)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        outcome, exported, data = run_switched_and_export(tmp_path, params, changes)
    finally:
        torch.set_num_threads(before)
    assert outcome.status.value == "succeeded", outcome.error
    done = subprocess.run(
        [sys.executable, exported.filename, str(data)], cwd=tmp_path, env=script_env(1), capture_output=True,
        text=True, timeout=SCRIPT_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    numbers = final_numbers(done.stdout)
    assert numbers["validation accuracy"] == outcome.result["val_acc"]
    assert numbers["training loss"] == outcome.result["train_loss"]
    assert numbers["validation loss"] == outcome.result["val_loss"]
    saved = torch.load(tmp_path / exported.filename.replace(".py", ".pt"), weights_only=True)
    assert_same_weights(saved, outcome.state_dict)
    # Only the switches the job turned on are in its script.
    script = exported.body
    assert ("Lookahead" in script) is bool(params.get("lookahead"))
    assert ("first_flips" in script) is (params.get("flip") == "alternate")
    assert ("torch.autocast" in script) is bool(params.get("mixed_precision"))
    views = CifarParams.model_validate({**CIFAR, **params}).tta_views()
    assert ("def test_time_outputs" in script) is (views != "none")
    assert ("F.pad(images, (1, 1, 1, 1)" in script) is (views == "flip_translate")
    assert "torch.compile" not in script


@pytest.mark.slow  # inductor compiles twice (the run, the script): a minute or two on a busy 2-core machine
def test_the_cifar_script_of_a_compiled_run_compiles_and_repeats_it(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        outcome, exported, data = run_switched_and_export(tmp_path, {"model": "conv", "epochs": 1, "compile": True})
    finally:
        torch.set_num_threads(before)
    assert "forward = torch.compile(model)" in exported.body
    done = subprocess.run(
        [sys.executable, exported.filename, str(data)], cwd=tmp_path, env=script_env(1), capture_output=True,
        text=True, timeout=4 * SCRIPT_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    numbers = final_numbers(done.stdout)
    assert numbers["training loss"] == outcome.result["train_loss"]
    assert numbers["validation accuracy"] == outcome.result["val_acc"]
    saved = torch.load(tmp_path / exported.filename.replace(".py", ".pt"), weights_only=True)
    assert_same_weights(saved, outcome.state_dict)
