"""The small network's hidden units on its run page (issue "Inside the model and back to code"):
the output drawn as the sum of each unit's bent line, the stretches beyond the data shaded."""

from __future__ import annotations

import json

import pytest

from tests.browser.helpers import create_job, screenshot, wait_for_job

pytestmark = pytest.mark.browser


def test_the_networks_output_is_drawn_as_its_hidden_units_add_up(page, api):
    job = create_job(api, "mlp", {"epochs": 2000, "optimizer": "adam", "lr": 0.01, "hidden": 6}, seed=3)
    assert wait_for_job(api, job["id"])["status"] == "succeeded"
    units = api.get(f"/api/jobs/{job['id']}").json()["result"]["hidden_units"]
    assert "hidden_units" not in api.get("/api/jobs").json()["items"][0].get("result", {}), "not in the list"
    page.goto(f"/jobs/{job['id']}")
    page.wait_for_selector("#job-view[data-ready=true]")
    chart = page.locator("[data-units-chart]")
    chart.wait_for()
    assert chart.get_attribute("data-units") == "6"
    page.wait_for_function(f"document.querySelector('[data-units-chart]').dataset.points === '{len(units['x'])}'")
    lo, hi = units["data_range"]
    assert json.loads(chart.get_attribute("data-bands")) == [[units["x"][0], lo], [hi, units["x"][-1]]]
    assert "Its 6 hidden units" in page.locator("[data-hidden-units]").inner_text()
    page.locator("[data-hidden-units]").scroll_into_view_if_needed()
    screenshot(page, "mlp-hidden-units")
