"""Your own data (issue 13): a bad `data` is refused with a message naming the point and what is
allowed, at the place pydantic reports it (so the form shows it by the data box)."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from app.experiments.params import LinearParams, MlpParams


def data_errors(data):
    with pytest.raises(ValidationError) as caught:
        LinearParams(data=data)
    return [(error["loc"], error["msg"]) for error in caught.value.errors()]


@pytest.mark.parametrize("params_model", [LinearParams, MlpParams])
def test_good_points_are_kept_as_given(params_model):
    data = [[35.7, 0.5], [-1e-3, 1e6], [0, 2]]
    assert params_model(data=data).data == data


@pytest.mark.parametrize(
    ("data", "loc", "words"),
    [
        ([[35.7, 0.5]], ("data",), ["1 point", "at least 2", "100,000"]),
        ([], ("data",), ["0 points", "at least 2"]),
        ([[1, 2], [3, "abc"]], ("data", 1, 1), ["point 2", "data[1]", "y", "'abc'", "not a number", "finite"]),
        ([[1, 2], [math.nan, 3]], ("data", 1, 0), ["point 2", "its x", "NaN", "not finite"]),
        ([[1, 2], [3, math.inf]], ("data", 1, 1), ["point 2", "Infinity", "not finite"]),
        ([[1, 2], [3, 4, 5]], ("data", 1), ["point 2", "[3, 4, 5]", "3 numbers", "two numbers"]),
        ([[1, 2], 7], ("data", 1), ["point 2", "is 7", "not a pair"]),
        ("1, 2\n3, 4", ("data",), ["must be a list", "[[35.7, 0.5]"]),
    ],
)
def test_bad_data_names_the_point_and_what_is_allowed(data, loc, words):
    errors = dict(data_errors(data))
    assert loc in errors, errors
    for word in words:
        assert word in errors[loc], errors[loc]


def test_over_the_models_limit_says_how_many_and_the_limit():
    errors = dict(data_errors([[0.0, 0.0]] * 100_001))
    assert "100,001 points" in errors[("data",)] and "100,000" in errors[("data",)]


def test_many_bad_points_are_named_up_to_five_and_the_rest_counted():
    errors = data_errors([[i, math.nan] for i in range(1000)])
    assert [loc for loc, _ in errors] == [("data", i, 1) for i in range(5)]
    assert "995 more errors" in errors[-1][1]
