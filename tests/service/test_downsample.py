"""Min/max downsampling keeps every extreme, and no more rows than asked."""

from __future__ import annotations

import math
import random

import pytest

from app.jobs.downsample import downsample_min_max


def noisy_curve(n: int, seed: int = 0) -> list[list[float | None]]:
    rng = random.Random(seed)
    return [[i + 1, 80 / math.sqrt(i + 1) + rng.random(), None if i % 7 else 1 / (i + 1)] for i in range(n)]


def test_a_spike_anywhere_survives_downsampling():
    for spike_at in (0, 1, 1234, 4998, 4999):
        rows = noisy_curve(5000)
        rows[spike_at][1] = 1e6
        kept = downsample_min_max(rows, value_columns=[1, 2], max_points=100)
        assert spike_at in kept, f"the spike at row {spike_at} was dropped"


def test_a_dip_survives_downsampling():
    rows = noisy_curve(5000)
    rows[2500][1] = -5.0
    assert 2500 in downsample_min_max(rows, value_columns=[1], max_points=60)


@pytest.mark.parametrize("max_points", [2, 3, 10, 99, 500, 4999])
def test_never_more_rows_than_asked_and_in_order(max_points):
    rows = noisy_curve(5000)
    kept = downsample_min_max(rows, value_columns=[1, 2], max_points=max_points)
    assert 0 < len(kept) <= max_points
    assert kept == sorted(set(kept))


def test_uses_most_of_the_budget():
    # Monotone curves put both extremes of a bucket at its ends; the search for the bucket count
    # must still fill the budget instead of keeping a handful of rows.
    rows = [[i, 1.0 / (i + 1)] for i in range(10_000)]
    kept = downsample_min_max(rows, value_columns=[1], max_points=500)
    assert 450 <= len(kept) <= 500
    assert kept[0] == 0 and kept[-1] == 9999


def test_each_columns_extremes_are_kept():
    rows = noisy_curve(3000, seed=3)
    kept = set(downsample_min_max(rows, value_columns=[1, 2], max_points=200))
    for column in (1, 2):
        values = [(row[column], i) for i, row in enumerate(rows) if row[column] is not None]
        assert min(values)[1] in kept and max(values)[1] in kept


def test_few_rows_are_returned_untouched():
    rows = noisy_curve(40)
    assert downsample_min_max(rows, value_columns=[1], max_points=40) == list(range(40))


def test_columns_without_values_do_not_break_it():
    rows = [[i, None] for i in range(1000)]
    kept = downsample_min_max(rows, value_columns=[1], max_points=10)
    assert len(kept) == 10 and kept[0] == 0 and kept[-1] == 999
