"""Jobs on a GPU through the API: each kind trains on ``cuda`` to the end, predicts, cancels, pauses
and resumes; cifar with the GPU recipe's switches; and the Ray executor's ``num_gpus=1`` path.

Skipped where torch sees no CUDA device: CI and the 2-core development VM have none. On a GPU
machine ``bench/gpu_check.sh`` runs this module (and the GPU benchmark) in one go.
"""

from __future__ import annotations

import importlib.util
import io
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import tiny_cifar_env
from tests.service.helpers import (
    FINAL,
    LONG_LINEAR,
    post_job,
    wait_for,
    wait_until_step,
)
from tests.service.server_process import Server

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device (CI and the development VM have none): bench/gpu_check.sh runs these on a GPU machine",
)

LINEAR = {"epochs": 300, "optimizer": "adam", "lr": 0.1}
MLP = {"epochs": 300, "optimizer": "adam", "lr": 0.01}
CIFAR = {"dataset": "cifar10", "model": "conv", "epochs": 2, "batch_size": 16, "lr": 0.05}  # tiny set: 10 steps an epoch
# The GPU recipe's switches on airbench's net, small enough for the tiny set.
CIFAR_GPU_RECIPE = {
    "dataset": "cifar10", "model": "airbench", "width": 16, "epochs": 2, "batch_size": 32, "lr": 0.2,
    "flip": "alternate", "lookahead": True, "tta": "flip_translate", "channels_last": "on", "mixed_precision": True,
    "compile": True,
}
TIMEOUT_S = 300  # a first CUDA job pays for the CUDA context, cuDNN's autotuning and (compile) Triton


@pytest.fixture(scope="module")
def gpu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One worker (one GPU) and the tiny CIFAR data set."""
    env = tiny_cifar_env(tmp_path_factory.mktemp("tiny-cifar"))
    srv = Server(tmp_path_factory.mktemp("cuda-home"), env=env, workers=1).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(gpu_server: Server) -> Iterator[httpx.Client]:
    with gpu_server.client() as c:
        yield c


def trained(client: httpx.Client, kind: str, params: dict[str, Any], seed: int = 3, **fields: Any) -> dict[str, Any]:
    job = post_job(client, kind, params, seed=seed, device="cuda", **fields)
    job = wait_for(client, job["id"], timeout=TIMEOUT_S)
    assert job["status"] == "succeeded", job
    assert job["device"].startswith("cuda"), job["device"]
    return job


def rows(client: httpx.Client, job_id: str) -> tuple[list[list[Any]], list[str]]:
    table = client.get(f"/api/jobs/{job_id}/metrics").json()
    return [[*row] for row in table["rows"]], table["columns"]


def weights(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/jobs/{job_id}/model")
    assert response.status_code == 200, response.text
    return torch.load(io.BytesIO(response.content), weights_only=True, map_location="cpu")


def png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (48, 40), (200, 120, 40)).save(out, format="PNG")
    return out.getvalue()


# ----------------------------------------------------------------------------------------------
# Each kind on cuda, to the end, then predict


@pytest.mark.parametrize("kind, params", [("linear", LINEAR), ("mlp", MLP)])
def test_linear_and_mlp_train_on_cuda_and_predict(client, kind, params):
    job = trained(client, kind, params)
    assert job["result"]["train_loss"] is not None and job["result"]["train_loss"] < 100
    response = client.post(f"/api/jobs/{job['id']}/predict", json={"inputs": [35.7, 81.9]})
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert len(outputs) == 2 and all(math.isfinite(v) for v in outputs)
    assert all(t.device.type == "cpu" for t in weights(client, job["id"]).values())  # the download is CPU tensors


@pytest.mark.parametrize("params", [CIFAR, CIFAR_GPU_RECIPE], ids=["conv", "airbench-gpu-recipe"])
def test_cifar_trains_on_cuda_reports_and_predicts(client, params):
    job = trained(client, "cifar", params)
    result = job["result"]
    assert result["epochs_run"] == params["epochs"] and 0 <= result["val_acc"] <= 1
    assert sum(map(sum, result["confusion_matrix"])) == result["test_images"]
    response = client.post(f"/api/jobs/{job['id']}/predict", files={"file": ("photo.png", png(), "image/png")})
    assert response.status_code == 200, response.text
    assert sum(response.json()["probabilities"].values()) == pytest.approx(1, abs=1e-4)


# ----------------------------------------------------------------------------------------------
# Cancel, pause and resume on cuda


def test_a_running_cuda_job_cancels(client):
    job = post_job(client, "linear", LONG_LINEAR, device="cuda")
    wait_until_step(client, job["id"], 10, timeout=TIMEOUT_S)
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 202
    assert wait_for(client, job["id"], timeout=60)["status"] == "cancelled"


def test_the_server_offers_cuda(client):
    health = client.get("/api/health").json()
    assert "cuda:0" in health["devices"], health


@pytest.mark.parametrize("kind, params, k", [("linear", LINEAR, 120), ("cifar", CIFAR, 13)])
def test_a_cuda_job_paused_stepped_and_resumed_runs_every_step_once(client, kind, params, k):
    """Created paused, stepped k steps, resumed from its checkpoint on the GPU. linear's elementwise
    kernels are deterministic, so it equals a run never stopped exactly; cuDNN's convolutions need
    not be, so cifar's curve is compared within a tolerance."""
    reference = trained(client, kind, params, seed=11)
    expected, columns = rows(client, reference["id"])

    job = post_job(client, kind, params, seed=11, device="cuda", paused=True)
    assert job["status"] == "paused", job
    assert client.post(f"/api/jobs/{job['id']}/step", json={"steps": k}).status_code == 202
    paused = wait_for(client, job["id"], {"paused", *FINAL}, timeout=TIMEOUT_S)
    assert paused["status"] == "paused" and paused["progress"]["step"] == k and paused["resumable"], paused
    assert client.post(f"/api/jobs/{job['id']}/resume").status_code == 202
    finished = wait_for(client, job["id"], timeout=TIMEOUT_S)
    assert finished["status"] == "succeeded", finished

    got, got_columns = rows(client, job["id"])
    assert got_columns == columns
    assert [r[0] for r in got] == [r[0] for r in expected], "every step once, none missing"
    loss = columns.index("train_loss")
    if kind == "linear":
        assert got == expected
    else:
        for a, b in zip(got, expected):
            assert a[loss] == pytest.approx(b[loss], rel=1e-3, abs=1e-4)


# ----------------------------------------------------------------------------------------------
# The Ray executor: a cuda job asks Ray for num_gpus=1 and runs on the cluster's GPU

ray_installed = importlib.util.find_spec("ray") is not None


@pytest.fixture(scope="module")
def gpu_ray_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A one-node Ray cluster with 2 CPUs and 1 GPU, and a playground server on it."""
    from tests.ray.conftest import ray_server_env, start_ray_cluster, stop_ray_cluster

    cluster = start_ray_cluster(num_cpus=2, num_gpus=1)
    env = tiny_cifar_env(tmp_path_factory.mktemp("ray-tiny-cifar"))
    srv = Server(tmp_path_factory.mktemp("ray-cuda-home"), env=ray_server_env(cluster, env)).start()
    try:
        yield srv
    finally:
        srv.stop()
        stop_ray_cluster(cluster)


@pytest.mark.skipif(not ray_installed, reason="Ray is not installed (pip install '.[ray]')")
def test_a_cuda_job_on_ray_gets_the_gpu(gpu_ray_server):
    with gpu_ray_server.client() as client:
        health = client.get("/api/health").json()
        assert any(device.startswith("cuda") for device in health["devices"]), health
        job = trained(client, "cifar", CIFAR)
        assert job["result"]["epochs_run"] == CIFAR["epochs"]
        linear = trained(client, "linear", LINEAR)
        assert linear["result"]["train_loss"] is not None
