"""A run's model as ONNX (``GET /api/jobs/{id}/model?format=onnx``, issue 14) on a real server: the
download loads in onnxruntime and gives the run's own predictions (``POST /api/jobs/{id}/predict``)
within 1e-5, for a batch of any size, for each kind; the file is made once and goes with the job."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pytest

from tests.service.helpers import post_job, wait_for

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

READINGS = [21.8, 35.7, 48.4, 60.4, 81.9, -5.0, 120.0]  # inside and outside the book's range


def finished(api: httpx.Client, kind: str, params: dict, **fields) -> dict:
    job = wait_for(api, post_job(api, kind, params, **fields)["id"], timeout=180)
    assert job["status"] == "succeeded", job
    return job


def onnx_session(api: httpx.Client, job_id: str) -> tuple[object, bytes]:
    response = api.get(f"/api/jobs/{job_id}/model", params={"format": "onnx"}, timeout=330)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/onnx"
    assert response.headers["content-disposition"].endswith(f'-{job_id}.onnx"')
    onnx.checker.check_model(onnx.load_from_string(response.content))
    return ort.InferenceSession(response.content, providers=["CPUExecutionProvider"]), response.content


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("linear", {"epochs": 3000, "lr": 1e-2, "input_scale": 0.1}),
        ("mlp", {"epochs": 300, "optimizer": "adam", "lr": 1e-2, "hidden": 6}),
    ],
)
def test_the_onnx_model_gives_the_runs_predictions(api, kind, params) -> None:
    job = finished(api, kind, params, seed=1)
    session, _ = onnx_session(api, job["id"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape) == ("t_u", "tensor(float)", ["batch"])
    assert out.name == "t_c"

    got = session.run(None, {"t_u": np.array(READINGS, dtype=np.float32)})[0]
    predicted = api.post(f"/api/jobs/{job['id']}/predict", json={"inputs": READINGS}).json()["outputs"]
    np.testing.assert_allclose(got, np.array(predicted, dtype=np.float32), rtol=1e-5, atol=1e-5)
    # One reading, then many: the batch is the graph's only free dimension.
    assert session.run(None, {"t_u": np.array([35.7], dtype=np.float32)})[0].shape == (1,)
    assert session.run(None, {"t_u": np.linspace(0, 100, 500, dtype=np.float32)})[0].shape == (500,)


@pytest.mark.parametrize("tta", ["none", "flip_translate"])  # the image alone; airbench's six views
def test_the_onnx_classifier_gives_the_runs_probabilities(api, server, tta) -> None:
    from PIL import Image

    params = {"dataset": "cifar2", "model": "conv", "epochs": 1, "batch_size": 16, "augment": False, "tta": tta}
    job = finished(api, "cifar", params, seed=0)
    session, content = onnx_session(api, job["id"])
    (inp,) = session.get_inputs()
    assert (inp.name, inp.type, inp.shape) == ("image", "tensor(uint8)", ["batch", 3, 32, 32])
    metadata = {prop.key: prop.value for prop in onnx.load_from_string(content).metadata_props}
    assert metadata["kind"] == "cifar" and json.loads(metadata["params"])["model"] == "conv"
    classes = json.loads(metadata["classes"])

    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)  # height, width, RGB
    logits = session.run(None, {"image": images.transpose(0, 3, 1, 2).copy()})[0]
    assert logits.shape == (3, len(classes))
    for image, row in zip(images, logits, strict=True):
        png = io.BytesIO()
        Image.fromarray(image).save(png, format="PNG")
        answer = api.post(f"/api/jobs/{job['id']}/predict", files={"file": ("x.png", png.getvalue(), "image/png")})
        assert answer.status_code == 200, answer.text
        expected = answer.json()["probabilities"]
        assert list(expected) == classes
        shifted = np.exp(row - row.max())
        np.testing.assert_allclose(shifted / shifted.sum(), [expected[c] for c in classes], rtol=1e-5, atol=1e-5)


def test_the_onnx_file_is_made_once_and_goes_with_the_job(api, server) -> None:
    job = finished(api, "linear", {"epochs": 200}, seed=2)
    _, first = onnx_session(api, job["id"])
    kept = server.home / "models" / f"{job['id']}.onnx"  # PLAYGROUND_HOME/models, beside the weights
    assert kept.is_file()
    made_at = kept.stat().st_mtime_ns
    _, again = onnx_session(api, job["id"])
    assert again == first and kept.stat().st_mtime_ns == made_at, "the second download is the kept file"
    assert api.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert not kept.exists()


def test_a_format_it_cannot_make_is_named_with_the_ones_it_can(api) -> None:
    job = post_job(api, "linear", {"epochs": 200}, paused=True)
    try:
        wrong = api.get(f"/api/jobs/{job['id']}/model", params={"format": "h5"})
        assert wrong.status_code == 422
        error = wrong.json()["detail"][0]
        assert error["loc"] == ["query", "format"] and "'pt' or 'onnx'" in error["msg"], error
        # No weights yet (paused at step 0): the same answer as the state_dict's.
        early = api.get(f"/api/jobs/{job['id']}/model", params={"format": "onnx"})
        assert early.status_code == api.get(f"/api/jobs/{job['id']}/model").status_code
        assert "has no trained weights" in early.json()["detail"]
    finally:
        api.post(f"/api/jobs/{job['id']}/cancel")
