"""Chapter 7 on the tiny data sets: each net trains, reports, predicts; seeds, cancellation, divergence, params."""

from __future__ import annotations

import base64
import io
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from app.errors import DatasetMissing, InvalidImage, InvalidInput
from app.experiments import cifar
from app.experiments.base import METRIC_FIELDS, SNAPSHOT_FIELDS, RunContext, RunStatus
from app.experiments.params import CifarParams

pytestmark = pytest.mark.usefixtures("one_thread")


def run_cifar(data_dir, seed=0, stop_after=None, **params):
    """Runs cifar and collects its points; ``stop_after=k``: should_stop says True from its k+1-th call on."""
    points, calls = [], []

    def should_stop():
        calls.append(len(points))
        return stop_after is not None and len(calls) > stop_after

    ctx = RunContext(seed=seed, emit=points.append, should_stop=should_stop, data_dir=data_dir)
    outcome = cifar.run(CifarParams(**params), ctx)
    return outcome, points


def decode_data_uri(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


@pytest.mark.parametrize("model", ["fc", "conv", "resnet"])
def test_each_net_trains_on_the_tiny_pickle_data_and_reports_everything(tiny_pickle, model):
    outcome, points = run_cifar(tiny_pickle.root, model=model, epochs=2, batch_size=16)
    assert outcome.status == RunStatus.SUCCEEDED, outcome.error
    result = outcome.result

    # 100 training images in batches of 16 → 7 steps per epoch (the last has 4), 2 epochs.
    steps = [p for p in points if "val_acc" not in p]
    ends = [p for p in points if "val_acc" in p]
    assert [p["step"] for p in steps] == list(range(1, 15))
    assert [p["epoch"] for p in steps] == [1] * 7 + [2] * 7
    assert all(set(p) == {"step", "epoch", "train_loss", "lr"} for p in steps)
    assert [(p["step"], p["epoch"]) for p in ends] == [(7, 1), (14, 2)]
    # SNAPSHOT_FIELDS: the classifier and its layers' weights and gradients at each epoch's end
    pictures = {"confusion_matrix", "per_class_acc", "histograms"}
    assert all(set(p) == {"step", "epoch", "train_loss", "train_acc", "val_loss", "val_acc"} | pictures for p in ends)
    assert all(set(p) <= set(METRIC_FIELDS) | set(SNAPSHOT_FIELDS) for p in points)
    # The epoch's train_loss is the mean of its steps' losses, weighted by batch size.
    weights = [16] * 6 + [4]
    epoch_mean = sum(w * p["train_loss"] for w, p in zip(weights, steps[7:])) / 100
    assert ends[1]["train_loss"] == pytest.approx(epoch_mean, rel=1e-5)

    classes = result["classes"]
    assert classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert result["val_acc"] == ends[-1]["val_acc"] and result["train_acc"] == ends[-1]["train_acc"]
    assert result["epochs_run"] == 2 and result["train_images"] == 100 and result["test_images"] == 50
    matrix = result["confusion_matrix"]
    assert len(matrix) == 10 and all(len(row) == 10 for row in matrix)
    assert [sum(row) for row in matrix] == [5] * 10  # rows are the true classes of the 50 test images
    assert sum(matrix[i][i] for i in range(10)) / 50 == pytest.approx(result["val_acc"])
    assert result["per_class_acc"] == {c: pytest.approx(matrix[i][i] / 5) for i, c in enumerate(classes)}
    # The last epoch's picture is the result's; every epoch's counts cover the whole test split.
    assert ends[-1]["confusion_matrix"] == matrix and ends[-1]["per_class_acc"] == result["per_class_acc"]
    assert all(sum(map(sum, p["confusion_matrix"])) == 50 for p in ends)
    assert all(list(p["per_class_acc"]) == classes for p in ends)
    # Every cell lists up to 3 of its images.
    examples = result["confusion_examples"]
    assert [[len(cell) for cell in row] for row in examples] == [[min(n, 3) for n in row] for row in matrix]
    assert decode_data_uri(examples[0][max(range(10), key=lambda j: matrix[0][j])][0]).size == (32, 32)
    assert len(result["samples"]) == 16
    for sample in result["samples"]:
        assert decode_data_uri(sample["image"]).size == (32, 32)
        assert sample["true"] in classes and sample["pred"] in classes and 0 < sample["confidence"] <= 1
    assert result["train_seconds"] > 0 and result["images_per_second"] > 0
    json.dumps(result, allow_nan=False)

    # The weights are on the CPU and carry the normalisation.
    assert all(t.device.type == "cpu" for t in outcome.state_dict.values())
    assert "normalize.mean" in outcome.state_dict


def test_the_colour_coded_tiny_data_is_learned_above_chance(tiny_folder):
    outcome, _ = run_cifar(tiny_folder, model="conv", optimizer="adam", lr=3e-3, epochs=4, batch_size=16)
    assert outcome.result["val_acc"] >= 0.5  # chance is 0.1


def test_cifar2_is_airplanes_against_birds(tiny_folder):
    outcome, _ = run_cifar(tiny_folder, dataset="cifar2", model="fc", epochs=1, batch_size=8)
    result = outcome.result
    assert result["classes"] == ["airplane", "bird"]
    assert result["train_images"] == 32 and result["test_images"] == 16
    assert [sum(row) for row in result["confusion_matrix"]] == [8, 8]
    assert set(result["per_class_acc"]) == {"airplane", "bird"}


def test_limit_train_trains_on_that_many_images(tiny_folder):
    outcome, points = run_cifar(tiny_folder, model="fc", limit_train=30, epochs=1, batch_size=8)
    assert outcome.result["train_images"] == 30
    assert max(p["step"] for p in points) == 4  # 8 + 8 + 8 + 6


def test_the_same_seed_gives_the_same_curve_bit_for_bit(tiny_folder):
    kwargs = dict(model="resnet", epochs=2, batch_size=32, limit_train=100)
    first, first_points = run_cifar(tiny_folder, seed=7, **kwargs)
    second, second_points = run_cifar(tiny_folder, seed=7, **kwargs)
    assert first_points == second_points  # floats compared exactly
    assert first.result["confusion_matrix"] == second.result["confusion_matrix"]
    assert [s["image"] for s in first.result["samples"]] == [s["image"] for s in second.result["samples"]]
    assert all(torch.equal(first.state_dict[k], second.state_dict[k]) for k in first.state_dict)


def test_a_different_seed_draws_different_images_and_a_different_curve(tiny_folder):
    kwargs = dict(model="fc", epochs=1, batch_size=16, limit_train=50)
    first, first_points = run_cifar(tiny_folder, seed=1, **kwargs)
    second, second_points = run_cifar(tiny_folder, seed=2, **kwargs)
    assert [p["train_loss"] for p in first_points] != [p["train_loss"] for p in second_points]
    assert [s["image"] for s in first.result["samples"]] != [s["image"] for s in second.result["samples"]]


def test_cancelling_stops_within_one_batch(tiny_folder):
    # should_stop is asked before every batch: answering True at the 4th ask stops after 3 steps.
    outcome, points = run_cifar(tiny_folder, stop_after=3, model="conv", epochs=5, batch_size=16)
    assert outcome.status == RunStatus.CANCELLED
    assert [p["step"] for p in points] == [1, 2, 3]
    assert outcome.result["epochs_run"] == 0 and outcome.result["steps_run"] == 3
    assert outcome.result["val_acc"] is None and outcome.result["confusion_matrix"] is None
    json.dumps(outcome.result, allow_nan=False)


def test_cancelling_during_evaluation_stops_there_and_keeps_the_finished_epochs(tiny_folder, monkeypatch):
    monkeypatch.setattr(cifar, "EVAL_BATCH", 20)  # 80 test images: 4 evaluation batches
    # Epoch 1: 10 training batches, 4 evaluation batches (14 asks); epoch 2: 10 + the first of evaluation.
    outcome, points = run_cifar(tiny_folder, stop_after=25, model="fc", epochs=3, batch_size=16)
    assert outcome.status == RunStatus.CANCELLED
    assert [p["epoch"] for p in points if "val_acc" in p] == [1]
    assert max(p["step"] for p in points) == 20
    assert outcome.result["epochs_run"] == 1 and outcome.result["val_acc"] is not None
    assert len(outcome.result["confusion_matrix"]) == 10  # from the epoch that finished


def test_a_loss_that_is_no_longer_finite_ends_the_run_as_diverged(tiny_folder, monkeypatch):
    # No lr the params allow blows these nets up on the tiny data, so overflow is simulated: the
    # net's outputs turn to inf from the 3rd forward pass.
    real_make_net = cifar.make_net

    def overflowing_net(*args, **options):
        net = real_make_net(*args, **options)
        calls = []

        def overflow(module, inputs, output):
            calls.append(1)
            return output * math.inf if len(calls) >= 3 else output

        net.register_forward_hook(overflow)
        return net

    monkeypatch.setattr(cifar, "make_net", overflowing_net)
    outcome, points = run_cifar(tiny_folder, model="fc", optimizer="sgd", lr=5.0, epochs=2, batch_size=16)
    assert outcome.status == RunStatus.DIVERGED
    assert [p["step"] for p in points] == [1, 2]
    assert "step 3" in outcome.error and "smaller learning rate (lr=0.5" in outcome.error
    assert outcome.state_dict is None
    json.dumps(outcome.result, allow_nan=False)


def test_a_missing_dataset_fails_the_run_naming_the_folder(tmp_path):
    with pytest.raises(DatasetMissing) as exc:
        run_cifar(tmp_path / "empty", model="fc")
    assert str(tmp_path / "empty") in str(exc.value)


# ----------------------------------------------------------------------------------------------
# Parameters


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"model": "vgg16"}, "model"),
        ({"dataset": "mnist"}, "dataset"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 1}, "batch_size"),  # batch norm cannot normalise a batch of one
        ({"batch_size": 100_000}, "batch_size"),
        ({"lr": 0}, "lr"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"limit_train": 5}, "limit_train"),
        ({"data_dir": "/etc"}, "data_dir"),  # where the data lives is the server's business
    ],
)
def test_bad_parameters_are_rejected_naming_the_field(bad, field):
    with pytest.raises(ValidationError) as exc:
        CifarParams(**bad)
    assert [".".join(map(str, e["loc"])) for e in exc.value.errors()] == [field]


def test_every_parameter_has_a_description():
    assert all(info.description for info in CifarParams.model_fields.values())


# ----------------------------------------------------------------------------------------------
# Prediction


@pytest.fixture(scope="module")
def trained(tiny_folder_template):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    outcome, _ = run_cifar(tiny_folder_template, model="conv", optimizer="adam", lr=3e-3, epochs=3, batch_size=16)
    torch.set_num_threads(threads)
    return CifarParams(model="conv", optimizer="adam", lr=3e-3), outcome


def encode(image: Image.Image, format: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=format)
    return out.getvalue()


def test_predict_labels_a_test_image_as_the_run_did(trained):
    params, outcome = trained
    for sample in outcome.result["samples"]:
        png = base64.b64decode(sample["image"].split(",", 1)[1])
        prediction = cifar.predict(params, outcome.state_dict, png)
        assert prediction["label"] == sample["pred"]
        assert prediction["probabilities"][sample["pred"]] == pytest.approx(sample["confidence"], abs=1e-4)


@pytest.mark.parametrize("format", ["PNG", "JPEG"])
def test_predict_takes_a_picture_of_any_size(trained, format):
    params, outcome = trained
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (300, 500, 3), dtype=np.uint8))
    prediction = cifar.predict(params, outcome.state_dict, encode(photo, format))
    assert prediction["label"] in prediction["probabilities"]
    assert list(prediction["probabilities"]) == outcome.result["classes"]
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    # Greyscale and palette images are converted to RGB.
    assert cifar.predict(params, outcome.state_dict, encode(photo.convert("L"), format))["label"]
    assert cifar.predict(params, outcome.state_dict, encode(photo.convert("P"), "PNG"))["label"]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"just some text", "b'just some text'"),
        (encode(Image.new("RGB", (8, 8)), "GIF"), "a GIF image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "72 bytes starting with b'\\x89PNG"),
        (encode(Image.new("RGB", (64, 64), (9, 9, 9)), "JPEG")[:200], "could not be decoded"),
    ],
    ids=["text", "gif", "png-signature-then-zeros", "truncated-jpeg"],
)
def test_predict_refuses_what_is_not_a_png_or_jpeg(trained, data, says):
    params, outcome = trained
    with pytest.raises(InvalidImage) as exc:
        cifar.predict(params, outcome.state_dict, data)
    assert isinstance(exc.value, InvalidInput)  # the api layer's 422
    assert "not a PNG or JPEG image" in str(exc.value) and says in str(exc.value)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header says width x height 8-bit RGB, with a token of data: a bomb's shape,
    built in microseconds (a real one is cheap to send but slow to make)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"\0" * min(height * (1 + 3 * width), 1024)  # black rows (filter byte + RGB), up to 1 KB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_predict_refuses_a_decompression_bomb_before_decoding_it(trained):
    params, outcome = trained
    # 7000x7000 RGB would take 147 MB decoded, from an upload of a few kilobytes.
    with pytest.raises(InvalidImage) as exc:
        cifar.predict(params, outcome.state_dict, png_claiming(7000, 7000))
    assert "7000x7000" in str(exc.value) and "40,000,000 pixels" in str(exc.value)
    # Far larger ones PIL refuses itself, on opening.
    with pytest.raises(InvalidImage) as exc:
        cifar.predict(params, outcome.state_dict, png_claiming(20_000, 20_000))
    assert "decompression bomb" in str(exc.value)
    # A small picture of the same make is classified: what is refused is the size, not the make.
    assert cifar.predict(params, outcome.state_dict, png_claiming(16, 12))["label"] in outcome.result["classes"]


def test_the_lr_range_test_runs_a_batch_per_lr_and_suggests_one(tiny_pickle):
    outcome, points = run_cifar(tiny_pickle.root, seed=1, model="conv", batch_size=16, lr_finder=True)
    finder = outcome.result["lr_finder"]
    assert outcome.status == RunStatus.SUCCEEDED and outcome.state_dict is None
    assert [p["lr"] for p in points] == finder["lrs"] and [p["train_loss"] for p in points] == finder["losses"]
    assert len(points) > 20, "more batches than one epoch of the tiny set (10): it draws a new order"
    assert finder["suggested_lr"] is not None and 1e-7 < finder["suggested_lr"] < 10
    assert all(p["step"] == i for i, p in enumerate(points, start=1))
