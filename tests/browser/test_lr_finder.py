"""The learning-rate range test on the run page (issue "Inside the model and back to code"): the
loss against the learning rate, the suggestion marked, and "Train with this lr"."""

from __future__ import annotations

import json
import math
import re

import pytest

from tests.browser.helpers import create_job, screenshot, wait_for_job

pytestmark = pytest.mark.browser

JOB_URL = re.compile(r"/jobs/([0-9a-f]{32})$")


@pytest.mark.parametrize(
    "kind,params",
    [
        ("linear", {"input_scale": 1}),
        ("mlp", {}),
        ("cifar", {"dataset": "cifar10", "model": "conv", "epochs": 2, "batch_size": 16}),  # the tiny set
    ],
)
def test_a_range_test_suggests_an_lr_and_trains_with_it(page, api, kind, params):
    job = create_job(api, kind, {**params, "lr_finder": True}, seed=4)
    done = wait_for_job(api, job["id"])
    assert done["status"] == "succeeded" and not done["has_model"]
    finder = done["result"]["lr_finder"]
    suggested = finder["suggested_lr"]
    shown = format(float(f"{suggested:.2g}"), "f").rstrip("0")  # 2.6e-05 is written 0.000026
    assert api.get(f"/api/jobs/{job['id']}/script").status_code == 409, "a range test is not a run to export"

    page.goto(f"/jobs/{job['id']}")
    page.wait_for_selector("#job-view[data-ready=true]")
    chart = page.locator("[data-finder-chart]")
    chart.wait_for()
    page.wait_for_function(f"document.querySelector('[data-finder-chart]').dataset.points === '{len(finder['lrs'])}'")
    markers = json.loads(chart.get_attribute("data-markers"))
    assert markers == [{"x": pytest.approx(math.log10(suggested)), "label": f"suggested {shown}"}]
    assert f"Suggested lr {shown}: the learning rate where the smoothed loss falls fastest" in page.locator("[data-verdict]").inner_text()
    assert page.locator("[data-progress-text]").inner_text().startswith(f"range test: {len(finder['lrs'])} of at most 100 steps")
    assert page.locator("[data-fork]").is_hidden(), "no fork of a range test"
    screenshot(page, f"lr-finder-{kind}")

    page.get_by_role("button", name=f"Train with lr = {shown}").click()
    page.wait_for_url(lambda url: JOB_URL.search(url) is not None and job["id"] not in url)
    trained_id = JOB_URL.search(page.url).group(1)
    trained = wait_for_job(api, trained_id)
    assert trained["params"] == {**done["params"], "lr_finder": False, "lr": suggested}
    assert trained["seed"] == 4 and trained["status"] == "succeeded", "the suggested lr converges"
