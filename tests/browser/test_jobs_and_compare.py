"""The list of runs and the compare view in Chromium."""

from __future__ import annotations

import pytest

from tests.browser.helpers import (
    create_job,
    pause_job,
    screenshot,
    step_job,
    unlabelled_inputs,
    wait_for_job,
)

pytestmark = pytest.mark.browser


def row(page, job_id: str):
    return page.locator(f'tr[data-job-id="{job_id}"]')


def test_the_job_list_updates_without_a_reload_filters_cancels_and_deletes(page, api):
    page.goto("/jobs")
    page.wait_for_selector("[data-job-count]:not(:empty)")
    # A run started elsewhere (a script, another tab) shows up by itself.
    # Held, so that the Cancel click lands on a run that is not over (created paused): stepped
    # on (it pauses again by itself, short of its end) to be seen running, paused before the click.
    running = create_job(api, "linear", {"epochs": 100_000, "lr": 0.001}, seed=1, name="long in the list", paused=True)
    row(page, running["id"]).wait_for()
    assert "long in the list" in row(page, running["id"]).inner_text()
    step_job(api, running["id"], steps=90_000)
    row(page, running["id"]).locator(".badge", has_text="running").wait_for()
    pause_job(api, running["id"])
    row(page, running["id"]).locator(".badge", has_text="paused").wait_for()

    row(page, running["id"]).get_by_role("button", name="Cancel long in the list").click()
    row(page, running["id"]).locator(".badge", has_text="cancelled").wait_for(timeout=30_000)

    done = create_job(api, "linear", {"epochs": 100}, seed=1, name="short in the list")
    wait_for_job(api, done["id"])
    row(page, done["id"]).locator(".badge", has_text="succeeded").wait_for()
    assert "loss" in row(page, done["id"]).locator(".job-result").inner_text(), "the key result is shown"

    # Filters: by status, then by kind.
    page.select_option("#filter-status", "cancelled")
    row(page, done["id"]).wait_for(state="detached")
    assert row(page, running["id"]).is_visible()
    assert "filter_status=cancelled" in page.url, "the filter is kept in the address"
    page.select_option("#filter-status", "")
    page.select_option("#filter-kind", "mlp")
    row(page, running["id"]).wait_for(state="detached")
    page.select_option("#filter-kind", "")
    row(page, done["id"]).wait_for()
    screenshot(page, "jobs")
    assert unlabelled_inputs(page) == []

    # Delete takes two clicks; the run is gone from the list and from the API.
    delete = row(page, done["id"]).get_by_role("button", name="Delete short in the list")
    delete.click()
    assert row(page, done["id"]).is_visible(), "one click only arms the button"
    row(page, done["id"]).get_by_role("button", name="Really delete short in the list?").click()
    row(page, done["id"]).wait_for(state="detached")
    assert api.get(f"/api/jobs/{done['id']}").status_code == 404


def test_compare_overlays_two_runs_and_lists_what_differs(page, api):
    slow = create_job(api, "linear", {"epochs": 600, "lr": 0.002}, seed=1, name="lr 0.002")
    fast = create_job(api, "linear", {"epochs": 600, "lr": 0.01}, seed=1, name="lr 0.01")
    for job in (slow, fast):
        wait_for_job(api, job["id"])

    # Picked in the job list, compared on their own page.
    page.goto("/jobs")
    for job in (slow, fast):
        row(page, job["id"]).get_by_role("checkbox").check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url("**/compare?ids=*")
    page.wait_for_selector("#compare-view[data-ready=true]")
    chart = page.locator("[data-compare-chart]")
    assert chart.get_attribute("data-runs") == "2"
    legend = chart.locator(".u-legend").inner_text()
    assert "lr 0.002 train" in legend and "lr 0.01 train" in legend
    # The chart holds every epoch of both runs (600 each, on one shared step axis).
    assert int(chart.get_attribute("data-points")) == 600

    table = page.locator("[data-diff-table]")
    assert table.locator('tr[data-setting="lr"]').count() == 1
    lr_row = table.locator('tr[data-setting="lr"]').inner_text()
    assert "0.002" in lr_row and "0.01" in lr_row
    for same in ("epochs", "optimizer", "input_scale", "seed"):
        assert table.locator(f'tr[data-setting="{same}"]').count() == 0, f"{same} is the same in both"
    assert "epochs = 600" in page.locator("[data-same]").inner_text()
    screenshot(page, "compare")
    assert unlabelled_inputs(page) == []

    # A run of another kind joins the same chart.
    mlp = create_job(api, "mlp", {"epochs": 200}, seed=1, name="a network")
    wait_for_job(api, mlp["id"])
    page.goto(f"/compare?ids={slow['id']},{fast['id']},{mlp['id']}")
    page.wait_for_selector("#compare-view[data-ready=true]")
    assert chart.get_attribute("data-runs") == "3"
    assert page.locator('[data-diff-table] tr[data-setting="kind"]').count() == 1
    assert page.locator('[data-diff-table] tr[data-setting="hidden"]').count() == 1


def test_also_try_starts_a_run_per_value_and_compares_them_as_they_train(page, api):
    page.goto("/?kind=linear&epochs=20000&lr=0.001")
    page.wait_for_selector("#train-form[data-ready=true]")
    # Started paused, so that the view cannot race them to their ends; let go below.
    page.get_by_label("start paused").check()
    page.get_by_label("also try").select_option("lr")
    page.get_by_label("other values to try").fill("0.0001, 0.01")
    page.get_by_role("button", name="Train 3 runs").click()
    page.wait_for_url("**/compare?ids=*")
    ids = page.url.split("ids=")[1].split(",")
    jobs = [api.get(f"/api/jobs/{job_id}").json() for job_id in ids]
    assert [job["params"]["lr"] for job in jobs] == [0.001, 0.0001, 0.01]
    assert len({job["seed"] for job in jobs}) == 1, "one seed for all: only lr differs"
    assert [job["name"] for job in jobs] == ["linear · lr=0.001", "linear · lr=0.0001", "linear · lr=0.01"]

    # While they are not over, the view says so and keeps updating.
    assert [job["status"] for job in jobs] == ["paused"] * 3
    page.wait_for_selector("#compare-view[data-ready=true]")
    live = page.locator("[data-compare-live]")
    assert "3 of these runs are still going" in live.inner_text()
    for job_id in ids:
        assert api.post(f"/api/jobs/{job_id}/resume").status_code == 202
    for job_id in ids:
        assert wait_for_job(api, job_id)["status"] == "succeeded"
    live.wait_for(state="hidden", timeout=30_000)
    chart = page.locator("[data-compare-chart]")
    assert chart.get_attribute("data-runs") == "3"
    assert "status = succeeded" in page.locator("[data-same]").inner_text()  # refreshed to the end
    lr_row = page.locator('[data-diff-table] tr[data-setting="lr"]').inner_text()
    assert "0.0001" in lr_row and "0.01" in lr_row and "0.001" in lr_row
    assert page.locator('[data-diff-table] tr[data-setting="seed"]').count() == 0


def test_also_try_with_a_value_out_of_bounds_says_so_by_the_field_and_starts_nothing(page, api):
    before = api.get("/api/jobs").json()["total"]
    page.goto("/?kind=linear&epochs=100")
    page.wait_for_selector("#train-form[data-ready=true]")
    page.get_by_label("also try").select_option("lr")
    page.get_by_label("other values to try").fill("0.1, 20")
    page.get_by_role("button", name="Train").click()
    error = page.locator("#run-sweep-error")
    error.wait_for()
    assert "lr = 20 is not allowed" in error.inner_text() and "≤ 10" in error.inner_text()
    assert api.get("/api/jobs").json()["total"] == before

    # Twelve runs at most: the run and 11 other values.
    page.get_by_label("other values to try").fill(", ".join(str(k / 1000) for k in range(1, 13)))
    page.get_by_role("button", name="Train 13 runs").click()
    error.filter(has_text="12 values of lr is too many").wait_for()
    assert "at most 11 other values (12 runs at once)" in error.inner_text()
    assert api.get("/api/jobs").json()["total"] == before
