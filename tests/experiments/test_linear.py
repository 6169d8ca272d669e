"""Chapter 5: the book's numbers, divergence, seeds and cancellation for the linear fit."""

import math

import pytest

from app.experiments import linear
from app.experiments.base import RunContext, RunStatus
from app.experiments.params import LinearParams


def run_linear(seed: int = 0, **params):
    points = []
    outcome = linear.run(LinearParams(**params), RunContext(seed=seed, emit=points.append))
    return outcome, points


@pytest.mark.parametrize("optimizer", ["manual", "autograd", "sgd"])
def test_book_numbers_for_every_gradient_mode(optimizer):
    # The book: epochs=5000, lr=1e-2, t_un = 0.1 * t_u → tensor([5.3671, -17.3012]), Loss 2.927648.
    outcome, points = run_linear(optimizer=optimizer)
    assert outcome.status == RunStatus.SUCCEEDED
    assert round(outcome.result["w"], 4) == 5.3671
    assert round(outcome.result["b"], 4) == -17.3012
    assert round(outcome.result["train_loss"], 6) == pytest.approx(2.927648, abs=1.5e-6)
    assert outcome.result["epochs_run"] == 5000
    assert outcome.result["val_loss"] is None


def test_one_point_per_epoch_with_the_loss_before_the_update():
    outcome, points = run_linear(epochs=3)
    assert [p["epoch"] for p in points] == [1, 2, 3]
    # Epoch 1's forward pass uses the start w=1, b=0; the book prints loss 80.364342 for it.
    assert points[0]["w"] == 1.0 and points[0]["b"] == 0.0
    assert points[0]["train_loss"] == pytest.approx(80.364342, abs=1e-4)
    assert points[-1]["train_loss"] == outcome.result["train_loss"]


def test_adam_also_converges():
    outcome, _ = run_linear(optimizer="adam", lr=1e-1, epochs=2000)
    assert outcome.status == RunStatus.SUCCEEDED
    assert outcome.result["train_loss"] < 3.0


def test_raw_input_with_the_books_lr_diverges_with_advice():
    outcome, points = run_linear(input_scale=1.0)
    assert outcome.status == RunStatus.DIVERGED
    assert 1 < outcome.result["epochs_run"] < 5000
    assert len(points) == outcome.result["epochs_run"] - 1  # the non-finite epoch is not a point
    assert all(math.isfinite(p["train_loss"]) for p in points)
    assert "learning rate" in outcome.error and "input_scale" in outcome.error


def test_the_largest_stable_lr_is_computed_from_the_data_and_it_is_exact():
    # On the raw readings the bound is about 3.4e-4: the book's 1e-2 and a tenfold smaller 1e-3
    # both diverge, 1e-4 is the first tenfold step that converges.
    outcome, _ = run_linear(input_scale=1.0)
    stable, suggested = outcome.result["stable_lr"], outcome.result["suggested_lr"]
    assert stable == pytest.approx(3.4e-4, rel=0.01)
    assert suggested == 3e-4
    assert f"e.g. lr={suggested:g}" in outcome.error and "under 0.00034" in outcome.error
    # Just over the bound the error grows step by step; just under, it shrinks (exact for a quadratic).
    over, _ = run_linear(input_scale=1.0, lr=stable * 1.02, epochs=5000)
    assert over.status == RunStatus.DIVERGED
    under, points = run_linear(input_scale=1.0, lr=stable * 0.98, epochs=5000)
    assert under.status == RunStatus.SUCCEEDED and points[-1]["train_loss"] < points[0]["train_loss"]
    retried, points = run_linear(input_scale=1.0, lr=suggested)
    assert retried.status == RunStatus.SUCCEEDED and points[-1]["train_loss"] < 30
    # The book's scaled inputs: 1e-2 is well under the bound.
    book, _ = run_linear()
    assert book.result["stable_lr"] == pytest.approx(0.033, rel=0.01) and book.result["suggested_lr"] == 0.03
    adam, _ = run_linear(optimizer="adam", lr=0.1, epochs=10)
    assert adam.result["stable_lr"] is None, "no such bound for Adam"


def test_the_books_printed_results_the_run_page_compares_with_are_what_runs_give():
    from app.experiments.registry import get_experiment

    books = [book for book in get_experiment("linear").book_results if book.exact]
    assert len(books) == 2
    for book in books:
        for optimizer in book.settings["optimizer"]:
            params = {name: values[0] for name, values in book.settings.items() if name != "optimizer"}
            outcome, _ = run_linear(**params, optimizer=optimizer)
            for name, printed in book.printed.items():
                digits = len(printed.split(".")[1])
                # within a few units of the last printed digit (float32 sums in another order)
                tolerance = (book.tolerance_units + 0.01) * 10**-digits
                assert abs(outcome.result[name] - float(printed)) <= tolerance, (book.where, optimizer, name)


def test_fitted_line_is_in_data_units():
    outcome, _ = run_linear()
    (x0, y0), (x1, y1) = outcome.result["line"]
    assert (x0, x1) == (21.8, 81.9) or (x0, x1) == pytest.approx((21.8, 81.9))
    slope = outcome.result["w"] * 0.1
    assert y0 == pytest.approx(slope * x0 + outcome.result["b"], rel=1e-5)
    assert linear.predict(LinearParams(), outcome.state_dict, [x1]) == pytest.approx([y1], rel=1e-5)


def test_same_seed_same_curve_bit_for_bit():
    _, a = run_linear(seed=7, val_fraction=0.2, epochs=300, optimizer="adam")
    _, b = run_linear(seed=7, val_fraction=0.2, epochs=300, optimizer="adam")
    assert a == b


def test_different_seed_different_split():
    a, _ = run_linear(seed=1, val_fraction=0.3, epochs=10)
    b, _ = run_linear(seed=2, val_fraction=0.3, epochs=10)
    assert len(a.result["val_points"]) == 3
    assert a.result["val_points"] != b.result["val_points"]
    assert a.result["val_loss"] is not None


def test_own_data_replaces_the_books_points():
    data = [[x, 2.0 * x + 1.0] for x in range(10)]
    outcome, _ = run_linear(data=data, input_scale=1.0, lr=0.02, epochs=3000)
    assert outcome.result["w"] == pytest.approx(2.0, abs=1e-2)
    assert outcome.result["b"] == pytest.approx(1.0, abs=5e-2)


def test_cancellation_stops_within_one_epoch():
    points = []
    ctx = RunContext(seed=0, emit=points.append, should_stop=lambda: len(points) >= 10)
    outcome = linear.run(LinearParams(), ctx)
    assert outcome.status == RunStatus.CANCELLED
    assert len(points) == 10 and outcome.result["epochs_run"] == 10


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"lr": -1}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"val_fraction": 0.9}, "val_fraction"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"data": [[1.0, 2.0]]}, "data"),
        ({"learning_rate": 0.1}, "learning_rate"),
    ],
)
def test_bad_parameters_name_the_field(bad, field):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        LinearParams(**bad)
    assert info.value.errors()[0]["loc"][0] == field


def test_the_lr_range_test_suggests_a_rate_that_converges_on_the_raw_readings():
    from app.experiments import lr_finder

    outcome, points = run_linear(input_scale=1.0, lr_finder=True)
    finder = outcome.result["lr_finder"]
    assert outcome.status == RunStatus.SUCCEEDED and outcome.state_dict is None
    assert [p["lr"] for p in points] == finder["lrs"] == lr_finder.ramp()[: len(points)]
    assert [p["train_loss"] for p in points] == finder["losses"]
    assert finder["lrs"][0] == pytest.approx(1e-7) and finder["lrs"][-1] < 10, "it stopped when the loss blew up"
    suggested = finder["suggested_lr"]
    assert suggested < outcome.result["stable_lr"], "under the stable bound of plain gradient descent (3.4e-4)"
    trained, steps = run_linear(input_scale=1.0, lr=suggested)
    assert trained.status == RunStatus.SUCCEEDED and steps[-1]["train_loss"] < steps[0]["train_loss"] / 50


def test_the_lr_range_test_on_the_books_scaled_data_trains_to_the_books_loss():
    outcome, _ = run_linear(lr_finder=True)
    suggested = outcome.result["lr_finder"]["suggested_lr"]
    assert 1e-3 < suggested < outcome.result["stable_lr"]
    # Gradient descent gets as far in lr x epochs: the book's 5000 epochs at 1e-2, in proportion.
    epochs = math.ceil(5000 * 0.01 / suggested)
    trained, _ = run_linear(lr=suggested, epochs=min(epochs, 100_000))
    assert trained.result["train_loss"] == pytest.approx(2.927648, abs=2e-3)


def test_the_suggestion_rule_is_the_steepest_fall_of_the_smoothed_loss_before_its_minimum():
    from app.experiments.lr_finder import suggest

    lrs = [10.0**e for e in range(-7, 1)]  # 1e-7 .. 1
    losses = [10.0, 10.0, 9.9, 9.0, 4.0, 1.0, 0.9, 50.0]
    # smoothed (beta 0.8, debiased), the steepest fall is between 1e-3 and 1e-2
    assert suggest(lrs, losses) == 1e-3
    assert suggest(lrs, [5.0, 5.0, 5.1, 6.0]) is None, "a loss that never falls suggests nothing"
