"""The line fit's start (init_w, init_b; issue 13): where the run begins, what it is refused with,
and that checkpoints saved before it existed still resume."""

import pytest
import torch
from pydantic import ValidationError

from app.experiments import linear
from app.experiments._data import load_points
from app.experiments.base import Checkpoint, RunContext
from app.experiments.checkpoints import check_resume
from app.experiments.params import LinearParams


def run_linear(**params):
    points = []
    outcome = linear.run(LinearParams(**params), RunContext(seed=0, emit=points.append))
    return outcome, points


def test_the_first_step_starts_from_init_w_and_init_b_and_descent_still_finds_the_books_minimum():
    outcome, points = run_linear(init_w=-3.5, init_b=12.25, epochs=5000)
    assert (points[0]["w"], points[0]["b"]) == (-3.5, 12.25)
    # The loss is a quadratic with one minimum: any start ends where the book's does.
    assert outcome.result["w"] == pytest.approx(5.3671, abs=2e-3)
    assert outcome.result["b"] == pytest.approx(-17.3012, abs=1e-2)


def test_the_default_start_is_the_books():
    params = LinearParams()
    assert (params.init_w, params.init_b) == (1.0, 0.0)


@pytest.mark.parametrize("field", ["init_w", "init_b"])
@pytest.mark.parametrize("value", [2e6, -1e7, float("nan"), float("inf"), "abc"])
def test_a_start_out_of_range_or_not_finite_is_refused_naming_the_field_and_the_range(field, value):
    with pytest.raises(ValidationError) as info:
        LinearParams(**{field: value})
    error = info.value.errors()[0]
    assert error["loc"] == (field,)
    assert error["msg"].startswith(f"{field} is ")
    assert "from -1,000,000 to 1,000,000" in error["msg"]


def test_a_checkpoint_from_before_the_start_was_a_parameter_still_resumes():
    old = Checkpoint(kind="linear", step=3, epoch=3, epoch_end=True, params=LinearParams().model_dump(mode="json"), state={})
    del old.params["init_w"], old.params["init_b"]
    check_resume(linear.with_start(old), "linear", LinearParams())  # the book's start: the same run
    with pytest.raises(Exception, match="init_w"):
        check_resume(linear.with_start(old), "linear", LinearParams(init_w=2.0))


def test_the_lr_range_test_steps_from_the_runs_start():
    outcome, _ = run_linear(init_w=4.0, init_b=-10.0, lr_finder=True)
    t_u, t_c = load_points(None)
    expected = linear.loss_fn(linear.model(0.1 * t_u, torch.tensor(4.0), torch.tensor(-10.0)), t_c).item()
    assert outcome.result["lr_finder"]["losses"][0] == pytest.approx(expected, rel=1e-6)
