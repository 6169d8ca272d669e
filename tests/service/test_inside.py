"""Inside a cifar net (``POST /api/jobs/{id}/inside``, issue 14): each convolution's maps, the first
layer's filters and a saliency map for one image, computed in a worker.

A hand-made net with known weights checks the numbers (``app.experiments.cifar_inside`` in this
process); a real run on the session's server checks the shapes against its weights, the answer
against its predictions, and the errors."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from tests.service.helpers import post_job, wait_for

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

CONV_RUN = {"dataset": "cifar2", "model": "conv", "epochs": 1, "batch_size": 16, "augment": False}


def png_of(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def decoded(data_uri: str) -> np.ndarray:
    assert data_uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1]))))


def test_known_weights_give_the_hand_computed_activation_and_saliency() -> None:
    from app.experiments.cifar import CifarParams
    from app.experiments.cifar_inside import inside
    from app.experiments.cifar_models import make_net

    mean, std = (0.5, 0.25, 0.75), (0.2, 0.3, 0.4)
    net = make_net("conv", 2, mean, std)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.zero_()
        net.conv1.weight[5, 0, 1, 1] = 2.0  # channel 5: twice the red value at the kernel's centre
        net.conv1.bias[5] = 0.5
    params = CifarParams.model_validate(CONV_RUN)
    red = np.zeros((32, 32, 3), dtype=np.uint8)
    red[..., 0] = 200
    seen = inside(params, net.state_dict(), png_of(red))

    first, second = seen["layers"]
    assert (first["name"], first["shape"]) == ("conv1", [16, 32, 32])
    assert (second["name"], second["shape"]) == ("conv2", [8, 16, 16])
    # By hand: the normalised red value is (200/255 - 0.5) / 0.2; channel 5 is 2 * that + 0.5 at
    # every pixel (the centre tap never reaches the zero padding), the other channels are 0.
    expected = 2.0 * (200 / 255 - 0.5) / 0.2 + 0.5
    strongest = first["channels"][0]
    assert strongest["channel"] == 5
    assert strongest["mean"] == pytest.approx(expected, rel=1e-6)
    assert strongest["low"] == pytest.approx(expected, rel=1e-6) == pytest.approx(strongest["high"], rel=1e-6)
    assert len(first["channels"]) == 8 and all(c["mean"] == 0 for c in first["channels"][1:])
    assert decoded(strongest["png"]).shape == (32, 32, 3)
    # The filters: channel 5's kernel is the only one that is not zero, so it comes first.
    assert seen["filters"][0]["channel"] == 5 and seen["filters"][0]["norm"] == pytest.approx(2.0)
    kernel = decoded(seen["filters"][0]["png"])
    assert kernel.shape == (3, 3, 3) and tuple(kernel[1, 1]) == (255, 128, 128)  # +peak red, zero elsewhere
    # All weights after conv1 are zero: the scores do not depend on the picture, and neither does
    # the saliency (a map of zeros); the two classes are equally likely.
    assert seen["saliency"]["high"] == 0 and seen["saliency"]["shape"] == [32, 32]
    assert seen["probabilities"] == pytest.approx({"airplane": 0.5, "bird": 0.5})
    assert decoded(seen["image"])[0, 0].tolist() == [200, 0, 0]


@pytest.fixture(scope="module")
def conv_job(server):
    with server.client() as client:
        job = wait_for(client, post_job(client, "cifar", CONV_RUN, seed=0)["id"], timeout=180)
    assert job["status"] == "succeeded", job
    return job


def test_a_runs_net_seen_from_inside_matches_its_weights_and_its_answer(api, conv_job) -> None:
    rng = np.random.default_rng(3)
    picture = png_of(rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8))
    response = api.post(f"/api/jobs/{conv_job['id']}/inside", files={"file": ("x.png", picture, "image/png")})
    assert response.status_code == 200, response.text
    seen = response.json()

    weights = torch.load(io.BytesIO(api.get(f"/api/jobs/{conv_job['id']}/model").content), weights_only=True)
    assert [layer["name"] for layer in seen["layers"]] == ["conv1", "conv2"]
    assert [layer["shape"][0] for layer in seen["layers"]] == [weights["conv1.weight"].shape[0], weights["conv2.weight"].shape[0]]
    norms = weights["conv1.weight"].flatten(1).norm(dim=1)
    assert [f["channel"] for f in seen["filters"]] == norms.argsort(descending=True).tolist()
    # Strongest first, as the means say.
    means = [c["mean"] for c in seen["layers"][0]["channels"]]
    assert means == sorted(means, reverse=True)
    assert decoded(seen["saliency"]["png"]).shape == (32, 32, 3) and seen["saliency"]["high"] > 0

    predicted = api.post(f"/api/jobs/{conv_job['id']}/predict", files={"file": ("x.png", picture, "image/png")}).json()
    assert seen["label"] == predicted["label"]
    assert seen["probabilities"] == pytest.approx(predicted["probabilities"], abs=1e-6)


def test_inside_says_what_it_takes(api, conv_job) -> None:
    linear = post_job(api, "linear", {"epochs": 100}, paused=True)
    try:
        wrong_kind = api.post(f"/api/jobs/{linear['id']}/inside", files={"file": ("x.png", png_of(np.zeros((8, 8, 3), np.uint8)))})
        assert wrong_kind.status_code == 422 and "for cifar runs" in wrong_kind.json()["detail"]
    finally:
        api.post(f"/api/jobs/{linear['id']}/cancel")
    not_an_image = api.post(f"/api/jobs/{conv_job['id']}/inside", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert not_an_image.status_code == 422 and "not a PNG or JPEG image" in not_an_image.json()["detail"]
