"""Inside a cifar net (``POST /api/jobs/{id}/inside``, issue 14): each convolution's maps, the first
layer's filters, a saliency map and a Grad-CAM map for one image, computed in a worker.

Hand-made nets with known weights check the numbers (``app.experiments.cifar_inside`` in this
process); the resnet's and airbench's Grad-CAM are checked against the formula recomputed here; a
real run on the session's server checks the shapes against its weights, the answer against its
predictions, and the errors."""

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
    # Grad-CAM likewise: the score's gradient at conv2's maps is zero, so is the map.
    assert seen["grad_cam"]["layer"] == "conv2" and seen["grad_cam"]["high"] == 0


def test_grad_cam_of_known_weights_is_the_hand_computed_map() -> None:
    """The book's Net wired so that conv2's channel 0 is +u on the picture's left half and -u on its
    right (u = tanh(2)) and the first class's score grows with it: Grad-CAM lights the left half."""
    import math

    from app.experiments.cifar import CifarParams
    from app.experiments.cifar_inside import inside
    from app.experiments.cifar_models import make_net

    net = make_net("conv", 2, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.zero_()
        net.conv1.weight[0, 0, 1, 1] = 1.0  # the normalised red: (255/255 - 0.5) / 0.25 = 2 on the left, -2 on the right
        net.conv2.weight[0, 0, 1, 1] = 1.0  # A = tanh(±2), pooled to 16x16: +u on columns 0..7, -u on 8..15
        net.fc1.weight[0, :64] = 1 / 64  # the mean of conv2's channel 0 after tanh and pooling (0 here)
        net.fc2.weight[0, 0] = 1.0
        net.fc2.bias[0] = 1.0  # the scores: 1 + tanh(0) = 1 for airplane, 0 for bird
    picture = np.zeros((32, 32, 3), dtype=np.uint8)
    picture[:, :16, 0] = 255
    seen = inside(CifarParams.model_validate(CONV_RUN), net.state_dict(), png_of(picture))
    assert seen["label"] == "airplane"

    cam = seen["grad_cam"]
    assert (cam["layer"], cam["layer_shape"], cam["shape"]) == ("conv2", [8, 16, 16], [32, 32])
    # By hand: the airplane score's gradient at A[i, j] is 1/64 (fc1) * (1 - tanh(A)^2) (the tanh)
    # at the one pixel of each 2x2 window that max-pooling passes on, 0 at the other three; its
    # mean over the 16x16 map is 64 windows * (1 - tanh(u)^2) / 64 / 256. Channel 0 times it, ReLU:
    # that times u on the left eight columns, 0 on the right eight; the other channels are 0.
    u = math.tanh(2.0)
    weight = (1 - math.tanh(u) ** 2) / 256
    assert cam["high"] == pytest.approx(weight * u, rel=1e-5) and cam["low"] == 0
    # Upsampled bilinearly (half-pixel centres): output column x reads the 16-wide map at x/2 - 0.25,
    # so columns 0..14 are all high, 15 is 3/4 of it, 16 a quarter and 17..31 nothing.
    grey = decoded(cam["png"])
    assert grey.shape == (32, 32, 3) and (grey == grey[:1, :, :1]).all(), "grey, and every row the same"
    assert grey[0, :, 0].tolist() == [255] * 15 + [191, 64] + [0] * 15
    # The overlay: the picture at full brightness where the map is highest, dimmed to 0.2 where it is 0.
    lit = decoded(cam["overlay"])
    assert lit[0, :, 0].tolist() == [255] * 15 + [round(255 * (0.2 + 0.8 * 0.75))] + [0] * 16
    assert (lit[..., 1:] == 0).all()


@pytest.mark.parametrize("model", ["resnet", "airbench"])
def test_grad_cam_of_every_convnet_weighs_its_last_convolutions_maps(model: str) -> None:
    """The nets with batch norm, residual branches and a frozen whitening layer: the map is the
    last convolution's maps weighted by the mean gradient of the predicted class's score, ReLU,
    upsampled to 32x32, recomputed here with autograd on that layer."""
    import torch.nn.functional as F
    from torch import nn

    from app.experiments.cifar import CifarParams, decode_upload
    from app.experiments.cifar_inside import inside
    from app.experiments.cifar_models import make_net

    width = {"width": 8} if model == "airbench" else {}
    torch.manual_seed(0)
    net = make_net(model, 2, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), channels_last=False, **width).eval()
    picture = png_of(np.random.default_rng(5).integers(0, 256, size=(32, 32, 3), dtype=np.uint8))
    seen = inside(CifarParams.model_validate({**CONV_RUN, "model": model, **width}), net.state_dict(), picture)

    name, last = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d)][-1]
    caught = {}
    hook = last.register_forward_hook(lambda _m, _in, out: caught.setdefault("maps", out))
    scores = net(decode_upload(picture).float())[0]
    hook.remove()
    (gradient,) = torch.autograd.grad(scores[scores.argmax()], caught["maps"])
    maps = caught["maps"].detach()[0]
    cam = (gradient[0].mean(dim=(1, 2))[:, None, None] * maps).sum(dim=0).relu()
    expected = F.interpolate(cam[None, None], size=(32, 32), mode="bilinear", align_corners=False)[0, 0]

    got = seen["grad_cam"]
    assert (got["layer"], got["layer_shape"], got["shape"]) == (name, list(maps.shape), [32, 32])
    assert got["high"] > 0, "premise: some feature speaks for the answer"
    assert (got["low"], got["high"]) == pytest.approx((float(expected.min()), float(expected.max())), rel=1e-4, abs=1e-7)
    scaled = ((expected - expected.min()) / (expected.max() - expected.min()) * 255).numpy()
    grey = decoded(got["png"])[..., 0].astype(float)
    assert grey.min() == 0 and grey.max() == 255 and np.abs(grey - scaled).max() <= 1


def test_a_net_without_convolutions_has_no_grad_cam_and_says_why() -> None:
    from app.experiments.cifar import CifarParams
    from app.experiments.cifar_inside import inside
    from app.experiments.cifar_models import make_net

    torch.manual_seed(0)
    net = make_net("fc", 2, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    seen = inside(CifarParams.model_validate({**CONV_RUN, "model": "fc"}), net.state_dict(), png_of(np.zeros((32, 32, 3), np.uint8)))
    assert seen["grad_cam"] is None and "no convolution" in seen["grad_cam_reason"]
    assert seen["layers"] == [] and seen["saliency"]["shape"] == [32, 32]


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
    cam = seen["grad_cam"]
    assert (cam["layer"], cam["layer_shape"]) == ("conv2", list(seen["layers"][1]["shape"]))
    assert decoded(cam["png"]).shape == decoded(cam["overlay"]).shape == (32, 32, 3) and 0 <= cam["low"] <= cam["high"]

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
