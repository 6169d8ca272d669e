"""Weights and gradients over time (issue 14): per layer, histograms of the weights and of the
gradients and the gradient norm, at each mlp snapshot and each cifar epoch end; the mlp's depth
(``layers``) and the vanishing gradients of a deep sigmoid net; the snapshots over the API."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
from pydantic import ValidationError

from app.experiments import cifar, mlp
from app.experiments._data import load_points, split_indices
from app.experiments.base import RunContext, RunStatus
from app.experiments.histograms import BINS, histogram, layer_histograms
from app.experiments.params import CifarParams, MlpParams
from tests.service.helpers import post_job, wait_for
from tests.service.sse import read_events

pytestmark = pytest.mark.usefixtures("one_thread")


def run_mlp(seed: int = 0, **params):
    points = []
    outcome = mlp.run(MlpParams(**params), RunContext(seed=seed, emit=points.append))
    return outcome, points


def assert_counts_every_value(picture: dict, shape: list[int]) -> None:
    n = math.prod(shape)
    assert len(picture["counts"]) == BINS and len(picture["edges"]) == BINS + 1
    assert sum(picture["counts"]) == n and "nonfinite" not in picture
    assert picture["edges"] == sorted(picture["edges"]) and picture["edges"][0] < picture["edges"][-1]


# ----------------------------------------------------------------------------------------------
# The histogram of one tensor


def test_a_histogram_spans_the_tensors_own_range_and_counts_each_value_once():
    values = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 4.0])
    picture = histogram(values, bins=6)
    assert picture["edges"] == [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0]
    assert picture["counts"] == [1, 1, 2, 1, 0, 1]  # a value on an inner edge goes to the bin above; the max to the last


def test_a_constant_tensor_and_values_that_blew_up_still_make_a_histogram():
    zeros = histogram(torch.zeros(7))
    assert sum(zeros["counts"]) == 7 and zeros["edges"][0] < 0 < zeros["edges"][-1]
    blown = histogram(torch.tensor([-3e38, 3e38, 1.0, float("nan"), float("inf")]))
    assert sum(blown["counts"]) == 3 and blown["nonfinite"] == 2
    assert all(math.isfinite(e) for e in blown["edges"])


# ----------------------------------------------------------------------------------------------
# mlp: its depth, and its snapshots


def test_layers_builds_that_many_hidden_layers_and_one_is_the_books_net():
    assert [name for name, _ in mlp.make_model(MlpParams()).named_children()] == [
        "hidden_linear", "hidden_activation", "output_linear"
    ]
    deep = mlp.make_model(MlpParams(layers=3, hidden=5, activation="sigmoid"))
    assert [name for name, _ in deep.named_children()] == [
        "hidden_linear", "hidden_activation",
        "hidden_linear_2", "hidden_activation_2",
        "hidden_linear_3", "hidden_activation_3",
        "output_linear",
    ]
    assert isinstance(deep.hidden_activation_3, torch.nn.Sigmoid) and deep.hidden_linear_2.weight.shape == (5, 5)


@pytest.mark.parametrize(("field", "value", "allowed"), [("layers", 0, "1"), ("layers", 5, "4"), ("activation", "gelu", "sigmoid")])
def test_a_bad_depth_or_activation_names_the_field_and_what_is_allowed(field, value, allowed):
    with pytest.raises(ValidationError) as caught:
        MlpParams(**{field: value})
    (error,) = caught.value.errors()
    assert error["loc"] == (field,) and allowed in error["msg"]


def test_each_mlp_snapshot_has_every_layers_weights_and_gradients():
    _, points = run_mlp(seed=3, epochs=200, layers=3, hidden=6)
    pictured = [p for p in points if "curve" in p]
    assert [p["epoch"] for p in pictured] == [p["epoch"] for p in points if "histograms" in p], "with each curve"
    assert len(pictured) == 51
    for point in pictured:
        layers = point["histograms"]
        assert [l["layer"] for l in layers] == ["hidden_linear", "hidden_linear_2", "hidden_linear_3", "output_linear"]
        assert [l["shape"] for l in layers] == [[6, 1], [6, 6], [6, 6], [1, 6]]
        for layer in layers:
            assert_counts_every_value(layer["weights"], layer["shape"])
            assert_counts_every_value(layer["grads"], layer["shape"])
            assert layer["grad_norm"] > 0


def test_the_first_snapshot_pictures_the_initial_weights_and_their_first_gradients():
    params = MlpParams(epochs=50, hidden=4)
    _, points = run_mlp(seed=11, **params.model_dump(exclude_unset=True))
    torch.manual_seed(11)
    initial = mlp.make_model(params)  # what the run made from the seed, before any step
    first = points[0]["histograms"]
    for layer in first:
        weight = initial.get_parameter(f"{layer['layer']}.weight")
        assert layer["weights"]["edges"][0] == weight.min().item() and layer["weights"]["edges"][-1] == weight.max().item()
        assert layer["weights"] == histogram(weight)
    # The gradient of epoch 1's loss, computed again by hand from the same data and weights.
    t_u, t_c = load_points(None)
    train_idx, _ = split_indices(t_u.shape[0], params.val_fraction, 11)
    loss = torch.nn.functional.mse_loss(initial((0.1 * t_u[train_idx]).unsqueeze(1)), t_c[train_idx].unsqueeze(1))
    loss.backward()
    for layer in first:
        grad = initial.get_parameter(f"{layer['layer']}.weight").grad
        assert layer["grads"] == histogram(grad)
        assert layer["grad_norm"] == pytest.approx(grad.norm().item(), rel=1e-6)


def test_a_deep_sigmoid_net_has_vanishing_gradients_and_tanh_far_less():
    """With sigmoid (slope at most 1/4) every layer back from the output shrinks the gradient: in
    a 4-layer net the first layer's gradient norm is a small fraction of the output layer's."""

    def first_over_last(activation: str) -> float:
        _, points = run_mlp(seed=0, epochs=300, layers=4, activation=activation)
        ratios = [p["histograms"][0]["grad_norm"] / p["histograms"][-1]["grad_norm"] for p in points if "histograms" in p]
        return statistics.median(ratios)

    sigmoid, tanh = first_over_last("sigmoid"), first_over_last("tanh")
    assert sigmoid < 0.05, f"first/last gradient norm {sigmoid:.3g}: not vanishing"
    assert tanh > 5 * sigmoid, f"tanh's {tanh:.3g} vs sigmoid's {sigmoid:.3g}: the sigmoid's slope should make the difference"


def test_a_resumed_mlp_checkpoint_from_before_layers_existed_is_taken():
    from app.experiments.base import Checkpoint

    old = {k: v for k, v in MlpParams(epochs=4).model_dump(mode="json").items() if k != "layers"}
    saved = {}

    class SaveAt2:
        def boundary(self, step, epoch, params, save, *, epoch_end=True):
            if step == 2:
                saved["state"] = save()
            return params, None

    mlp.run(MlpParams(epochs=4), RunContext(seed=1, control=SaveAt2()))
    resumed = mlp.run(MlpParams(epochs=4), RunContext(seed=1, resume=Checkpoint("mlp", 2, 2, True, old, saved["state"])))
    assert resumed.status == RunStatus.SUCCEEDED and resumed.result["epochs_run"] == 4


# ----------------------------------------------------------------------------------------------
# cifar: at each epoch's end


def test_each_cifar_epoch_end_has_the_histograms_of_every_trained_layer(tiny_pickle):
    points = []
    ctx = RunContext(seed=0, emit=points.append, data_dir=tiny_pickle.root)
    outcome = cifar.run(CifarParams(model="conv", epochs=2, batch_size=16), ctx)
    assert outcome.status == RunStatus.SUCCEEDED, outcome.error
    ends = [p for p in points if "val_acc" in p]
    assert len(ends) == 2 and not any("histograms" in p for p in points if "val_acc" not in p)
    for point in ends:
        layers = point["histograms"]
        assert [l["layer"] for l in layers] == ["conv1", "conv2", "fc1", "fc2"]
        for layer in layers:
            assert_counts_every_value(layer["weights"], layer["shape"])
            assert_counts_every_value(layer["grads"], layer["shape"])
    # The last epoch's weights are the run's final weights.
    for layer in ends[-1]["histograms"]:
        assert layer["weights"] == histogram(outcome.state_dict[f"{layer['layer']}.weight"])


def test_a_frozen_layer_has_no_histogram_and_a_layer_without_gradients_says_none():
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    net[0].weight.requires_grad_(False)
    (layer,) = layer_histograms(net)
    assert layer["layer"] == "1" and layer["grads"] is None and layer["grad_norm"] is None


# ----------------------------------------------------------------------------------------------
# Over the API: stored, streamed, and replayable


def test_histograms_are_streamed_as_snapshots_and_replayed_from_the_api(server):
    with server.client() as client:
        job = post_job(client, "mlp", {"epochs": 300, "layers": 2, "hidden": 5, "activation": "sigmoid"}, seed=4)
        assert wait_for(client, job["id"], timeout=120)["status"] == "succeeded"
        stored = client.get(f"/api/jobs/{job['id']}/snapshots").json()["snapshots"]
    streamed = [e.data for e in read_events(server.url, job["id"]) if e.event == "snapshot"]
    assert stored and stored == streamed, "the replay reads what the stream sent"
    assert stored[-1]["step"] == 300
    for snapshot in stored:
        assert [l["layer"] for l in snapshot["histograms"]] == ["hidden_linear", "hidden_linear_2", "output_linear"]
        for layer in snapshot["histograms"]:
            assert_counts_every_value(layer["weights"], layer["shape"])
            assert_counts_every_value(layer["grads"], layer["shape"])
