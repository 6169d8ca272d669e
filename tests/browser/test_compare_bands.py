"""Compare in Chromium: a run repeated with other seeds drawn as one band, an lr sweep's result
against lr with a diverged run marked and clipped, and the one download of all their metrics.

What is drawn is read from the uPlot instance on each chart's container (`.uplot`): its series'
labels and data, the numbers a user sees in the legend when hovering.
"""

from __future__ import annotations

import statistics
from datetime import datetime

import pytest

from tests.browser.helpers import create_job, metric_rows, screenshot, unlabelled_inputs, wait_for_job

SEEDED = {"epochs": 30, "val_fraction": 0.2}  # the seed draws the validation split

DRAWN_JS = """(selector) => {
  const plot = document.querySelector(selector).uplot;
  return { labels: plot.series.map((s) => s.label), data: plot.data.map((column) => Array.from(column)) };
}"""


def drawn(page, selector: str) -> dict[str, list]:
    """{series label: [y at each x]} and "x", as the chart holds them."""
    chart = page.evaluate(DRAWN_JS, selector)
    return {("x" if i == 0 else label): column for i, (label, column) in enumerate(zip(chart["labels"], chart["data"]))}


# Pixels of the plot's canvas in a run's blue (PALETTE[0]: lines and the band's fill), not the grey grid.
BLUE_PIXELS_JS = """(selector) => {
  const plot = document.querySelector(selector).uplot;
  const { data } = plot.ctx.getImageData(0, 0, plot.ctx.canvas.width, plot.ctx.canvas.height);
  let count = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 0 && data[i + 2] > data[i] + 40) count++;
  return count;
}"""


def open_compare(page, ids: list[str]) -> None:
    page.goto(f"/compare?ids={','.join(ids)}")
    page.wait_for_selector("#compare-view[data-ready=true]")


def test_a_run_repeated_with_two_seeds_is_one_band_from_the_runs_min_to_max(page, api):
    original = wait_for_job(api, create_job(api, "linear", SEEDED, seed=3, name="fit")["id"])
    page.goto(f"/jobs/{original['id']}")
    seeds = page.get_by_label("seeds", exact=True)
    seeds.fill("11")
    page.get_by_role("button", name="Repeat with 11 seeds").click()
    assert "2 to 10 seeds" in page.locator("[data-repeat-error]").inner_text()
    seeds.fill("2")
    page.get_by_role("button", name="Repeat with 2 seeds").click()
    page.wait_for_url("**/compare?ids=*")
    ids = page.url.split("ids=")[1].split(",")
    assert ids[0] == original["id"] and len(ids) == 3
    jobs = [wait_for_job(api, job_id) for job_id in ids]
    assert [job["seed"] for job in jobs] == [3, 4, 5]
    open_compare(page, ids)  # read again now that all three have ended

    page.get_by_label("log scale (y)").uncheck()
    chart = page.locator("[data-compare-chart]")
    assert chart.get_attribute("data-groups") == "1" and chart.get_attribute("data-band-count") == "2"  # train, val
    page.wait_for_function(f"({BLUE_PIXELS_JS})('[data-compare-chart]') > 5000")  # the band is painted
    lines = drawn(page, "[data-compare-chart]")
    assert set(lines) == {"x"} | {f"fit (3 seeds) {curve} {edge}" for curve in ("train", "val") for edge in ("max", "min", "mean")}
    step = 17
    at = lines["x"].index(step)
    for curve, column in (("train", "train_loss"), ("val", "val_loss")):
        values = [next(row[column] for row in metric_rows(api, job_id) if row["step"] == step) for job_id in ids]
        assert lines[f"fit (3 seeds) {curve} max"][at] == max(values)
        assert lines[f"fit (3 seeds) {curve} min"][at] == min(values)
        assert lines[f"fit (3 seeds) {curve} mean"][at] == pytest.approx(statistics.mean(values), rel=1e-12)

    # The spread of the final metrics.
    cell = page.locator("[data-spread-table] td[data-metric=val_loss]")
    finals = [job["result"]["val_loss"] for job in jobs]
    assert float(cell.get_attribute("data-mean")) == pytest.approx(statistics.mean(finals), rel=1e-12)
    assert float(cell.get_attribute("data-sd")) == pytest.approx(statistics.stdev(finals), rel=1e-12)
    assert "±" in cell.inner_text()
    screenshot(page, "compare-bands")

    # Unticked, the runs are lines of their own again.
    page.get_by_label("runs that differ only in the seed as mean and band").uncheck()
    assert chart.get_attribute("data-band-count") == "0"
    assert "fit · seed 4 train" in drawn(page, "[data-compare-chart]")
    link = page.get_by_role("link", name="Download their metrics (CSV)")
    assert link.get_attribute("href") == f"/api/compare/metrics.csv?ids={','.join(ids)}"
    assert unlabelled_inputs(page) == []


def test_an_lr_sweep_charts_each_run_s_result_against_lr_and_clips_the_diverged_one(page, api):
    lrs = [0.1, 0.001, 0.01]  # 0.1 is over this data's stable lr (about 0.033): it diverges
    jobs = [create_job(api, "linear", {"epochs": 50, "lr": lr}, seed=1, name=f"lr={lr}") for lr in lrs]
    jobs = [wait_for_job(api, job["id"]) for job in jobs]
    assert [job["status"] for job in jobs] == ["diverged", "succeeded", "succeeded"]
    open_compare(page, [job["id"] for job in jobs])

    sweep = page.locator("[data-sweep]")
    assert "training loss against lr" in sweep.inner_text()
    assert page.locator("[data-sweep-chart]").get_attribute("data-log-x") == "true"
    points = drawn(page, "[data-sweep-chart]")
    assert points["x"] == [0.001, 0.01, 0.1]
    by_lr = {job["params"]["lr"]: job for job in jobs}
    assert points["final training loss"] == [by_lr[0.001]["result"]["train_loss"], by_lr[0.01]["result"]["train_loss"], None]
    assert points["best training loss"][:2] == [min(r["train_loss"] for r in metric_rows(api, by_lr[lr]["id"])) for lr in (0.001, 0.01)]
    diverged_at = metric_rows(api, by_lr[0.1]["id"])[-1]["step"] + 1
    row = page.locator(f"[data-sweep-table] tr[data-job-id='{by_lr[0.1]['id']}']")
    assert f"diverged at step {diverged_at}" in row.inner_text()

    # The loss chart: the diverged run is marked where it diverged, and its blow-up left out.
    chart = page.locator("[data-compare-chart]")
    assert f"lr=0.1 diverged at step {diverged_at}" in chart.get_attribute("data-markers")
    assert f"(at step {diverged_at})" in page.locator("[data-clip-note]").inner_text()
    page.get_by_label("log scale (y)").uncheck()
    lines = drawn(page, "[data-compare-chart]")
    healthy = max(v for lr in (0.001, 0.01) for v in lines[f"lr={lr} train"] if v is not None)
    blown = [v for v in lines["lr=0.1 train"] if v is not None]
    assert blown and max(blown) <= 2 * healthy
    assert max(r["train_loss"] for r in metric_rows(api, by_lr[0.1]["id"])) > 2 * healthy, "premise: it blew up"

    # The x axis by epoch or by time, and smoothing, redraw the same runs.
    # By time, each run spans the seconds it ran (its worker's clock, to the millisecond the page
    # reads): the axis ends where the longest one did. (A run that diverged at its first steps can
    # have run for under a millisecond, so no point is asserted to sit after 0.)
    page.get_by_label("x axis").select_option("time")
    times = drawn(page, "[data-compare-chart]")["x"]
    took = {job["params"]["lr"]: seconds_between(job["started_at"], job["finished_at"]) for job in jobs}
    assert times == sorted(times)
    assert max(took[0.001], took[0.01]) - 0.002 <= times[-1] <= max(took.values()) + 0.002
    assert took[0.001] > 0, "premise: 50 epochs take a measurable while"
    page.get_by_label("x axis").select_option("step")
    page.get_by_label("smoothing").fill("0.9")
    smoothed = drawn(page, "[data-compare-chart]")["lr=0.01 train"]
    raw = lines["lr=0.01 train"]
    assert smoothed[0] == raw[0] and smoothed[5] != raw[5]
    screenshot(page, "compare-sweep")


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
