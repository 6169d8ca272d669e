"""Chapter 6: the small network learns the temperatures; seeds, divergence, cancellation."""

import pytest

from app.experiments import mlp
from app.experiments.base import RunContext, RunStatus
from app.experiments.params import MlpParams


def run_mlp(seed: int = 0, **params):
    points = []
    outcome = mlp.run(MlpParams(**params), RunContext(seed=seed, emit=points.append))
    return outcome, points


def test_book_setup_learns_the_conversion():
    outcome, points = run_mlp(seed=1, epochs=5000)
    assert outcome.status == RunStatus.SUCCEEDED
    assert len(points) == 5000
    # The book's 13-unit tanh net with SGD lr=1e-3 gets the training loss to a few degrees².
    assert points[0]["train_loss"] > 50
    assert outcome.result["train_loss"] < 6
    assert outcome.result["val_loss"] is not None
    assert len(outcome.result["curve"]) >= 100
    # The default split holds out int(0.2 * 11) = 2 points, drawn from the seed.
    assert len(outcome.result["val_points"]) == 2 and len(outcome.result["train_points"]) == 9


def test_the_networks_curve_is_pictured_while_it_trains():
    outcome, points = run_mlp(seed=1, epochs=5000)
    pictured = [p for p in points if "curve" in p]
    # Epoch 1, every 100th (5000 // 50), and the last: 51 pictures, each on its epoch's point.
    assert [p["epoch"] for p in pictured] == [1] + list(range(100, 5001, 100))
    first, last = pictured[0]["curve"], pictured[-1]["curve"]
    assert len(first) == len(last) == 64
    assert first[0][0] == pytest.approx(21.8) and first[-1][0] == pytest.approx(81.9)  # the data's t_u range
    # The untrained net says about nothing (near 0 everywhere); later pictures come near the data.
    assert max(abs(y) for _, y in first) < 5
    assert last[0][1] == pytest.approx(-4.0, abs=4) and last[-1][1] == pytest.approx(28.0, abs=4)
    # The picture at epoch 100 is the network that epoch's loss was computed with: the one after 99
    # updates, which is what a 99-epoch run of the same seed ends with.
    after_99, _ = run_mlp(seed=1, epochs=99)
    xs = [x for x, _ in pictured[1]["curve"]]
    expected = mlp.predict(MlpParams(epochs=99), after_99.state_dict, xs)
    assert [y for _, y in pictured[1]["curve"]] == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_predict_matches_the_curve():
    outcome, _ = run_mlp(seed=1, epochs=500)
    x, y = outcome.result["curve"][50]
    assert mlp.predict(MlpParams(epochs=500), outcome.state_dict, [x]) == pytest.approx([y], rel=1e-5)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_other_activations_and_adam(activation):
    outcome, _ = run_mlp(seed=3, activation=activation, optimizer="adam", lr=1e-2, epochs=1500)
    assert outcome.status == RunStatus.SUCCEEDED
    assert outcome.result["train_loss"] < 20


def test_same_seed_same_curve_different_seed_different_curve():
    _, a = run_mlp(seed=5, epochs=200)
    _, b = run_mlp(seed=5, epochs=200)
    _, c = run_mlp(seed=6, epochs=200)
    assert a == b
    assert a != c


def test_huge_learning_rate_on_raw_input_diverges():
    outcome, _ = run_mlp(seed=1, lr=1.0, input_scale=1.0)
    assert outcome.status == RunStatus.DIVERGED
    assert "learning rate" in outcome.error
    assert outcome.result["epochs_run"] < 5000


def test_cancellation_stops_within_one_epoch():
    points = []
    ctx = RunContext(seed=0, emit=points.append, should_stop=lambda: len(points) >= 5)
    outcome = mlp.run(MlpParams(), ctx)
    assert outcome.status == RunStatus.CANCELLED
    assert outcome.result["epochs_run"] == 5


@pytest.mark.parametrize("hidden", [13, 40])
def test_the_output_is_the_bias_plus_each_hidden_units_contribution(hidden):
    import torch

    outcome, _ = run_mlp(seed=2, epochs=200, hidden=hidden, optimizer="adam", lr=0.01)
    units = outcome.result["hidden_units"]
    assert units["hidden"] == hidden and len(units["units"]) == min(hidden, mlp.UNITS_SHOWN)
    # Beyond the data on both sides: half the data's range again each way.
    (lo, hi), xs = units["data_range"], units["x"]
    assert xs[0] == pytest.approx(lo - 0.5 * (hi - lo)) and xs[-1] == pytest.approx(hi + 0.5 * (hi - lo))
    # The output over x is the network's own (its predict), and the units shown are the strongest.
    assert units["output"] == pytest.approx(mlp.predict(MlpParams(hidden=hidden), outcome.state_dict, xs), abs=1e-4)
    w1, b1 = outcome.state_dict["hidden_linear.weight"][:, 0], outcome.state_dict["hidden_linear.bias"]
    w2 = outcome.state_dict["output_linear.weight"][0]
    x = torch.tensor(xs) * 0.1
    each = torch.tanh(x[:, None] * w1 + b1) * w2  # [points, units], the book's tanh
    for j, values in zip(units["units"], units["contributions"]):
        assert values == pytest.approx(each[:, j].tolist(), abs=1e-5)
    strongest = set(each.abs().amax(dim=0).argsort(descending=True)[: mlp.UNITS_SHOWN].tolist())
    assert set(units["units"]) == strongest
    if hidden <= mlp.UNITS_SHOWN:  # all shown: they add up to the output
        total = [units["bias"] + sum(c[i] for c in units["contributions"]) for i in range(len(xs))]
        assert total == pytest.approx(units["output"], abs=1e-4)
