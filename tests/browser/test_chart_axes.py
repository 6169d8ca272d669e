"""The loss chart's axes and help on the run page: a log axis zoomed within one decade keeps its
labels, and a touch screen is told to tap, not hover."""

from __future__ import annotations

import pytest

from tests.browser.helpers import create_job, metric_rows, wait_for_job

pytestmark = pytest.mark.browser


def y_labels(page) -> list[str]:
    # uPlot draws the axes on its canvas; the labels it chose are what its axis kept.
    return page.evaluate(
        """() => {
          const u = window.playgroundJob.lossChart.plot;
          const axis = u.axes[1];
          return (axis._values || []).filter((v) => v !== "" && v !== null);
        }"""
    )


def test_a_log_axis_zoomed_within_a_decade_keeps_labels(page, api):
    job = create_job(api, "linear", {"epochs": 5000}, seed=1)
    wait_for_job(api, job["id"])
    page.goto(f"/jobs/{job['id']}")
    page.wait_for_selector("#job-view[data-ready=true]")
    page.locator("[data-log]").check()
    page.wait_for_function("window.playgroundJob.lossChart.log === true")
    # The last 3000 epochs: the loss is between 2.9 and 3.1, far less than a decade.
    page.evaluate("window.playgroundJob.lossChart.plot.setScale('x', {min: 2000, max: 5000})")
    page.wait_for_function("window.playgroundJob.lossChart.plot.axes[1]._values !== null")
    labels = y_labels(page)
    assert len(labels) >= 2, f"the zoomed log axis has labels: {labels}"
    values = [float(v) for v in labels]
    assert all(2.5 < v < 3.5 for v in values), labels
    # Between one and three decades, 1, 2 and 5 of each (90 to 2.5: not only 10); more, decades.
    ticks = page.evaluate(
        """() => import("/static/js/charts.js").then(({ logSplits }) => [
          logSplits(Math.log10(2.5), Math.log10(90)).map((e) => Number((10 ** e).toPrecision(6))),
          logSplits(Math.log10(0.3), Math.log10(300)).map((e) => Number((10 ** e).toPrecision(6))),
          logSplits(-2.5, 3.5).map((e) => Number((10 ** e).toPrecision(6))),
        ])"""
    )
    assert ticks == [[5, 10, 20, 50], [0.5, 1, 2, 5, 10, 20, 50, 100, 200], [0.01, 0.1, 1, 10, 100, 1000]]


def test_a_touch_screen_is_told_to_tap(phone, api):
    job = create_job(api, "linear", {"epochs": 200}, seed=1)
    wait_for_job(api, job["id"])
    phone.goto(f"/jobs/{job['id']}")
    phone.wait_for_selector("#job-view[data-ready=true]")
    help_text = phone.locator("[data-pointer-help]").inner_text()
    assert "tap for the values" in help_text and "hover" not in help_text and "double-click" not in help_text


def test_a_loss_over_more_than_two_decades_opens_on_a_log_axis(page, api):
    # The small net's loss falls from about 200 to about 1: on a linear axis everything after its
    # first epochs, the validation loss rising again included, is a flat line at the bottom.
    mlp = create_job(api, "mlp", {"epochs": 2000, "optimizer": "adam", "lr": 0.01}, seed=1)
    book = create_job(api, "linear", {"epochs": 5000}, seed=1)  # 80 to 2.9: under two decades
    for job in (mlp, book):
        wait_for_job(api, job["id"])
    rows = metric_rows(api, mlp["id"])
    losses = [row[name] for row in rows for name in ("train_loss", "val_loss") if row.get(name)]
    assert max(losses) / min(losses) > 100, "premise: the mlp's loss spans more than two decades"

    page.goto(f"/jobs/{mlp['id']}")
    page.wait_for_selector("#job-view[data-ready=true]")
    page.wait_for_function("window.playgroundJob.lossChart.log === true")
    assert page.locator("[data-log]").is_checked(), "the box says the axis is logarithmic"
    page.locator("[data-log]").uncheck()
    page.wait_for_function("window.playgroundJob.lossChart.log === false")

    page.goto(f"/jobs/{book['id']}")
    page.wait_for_selector("#job-view[data-ready=true]")
    assert not page.locator("[data-log]").is_checked()
    assert page.evaluate("window.playgroundJob.lossChart.log") is False
