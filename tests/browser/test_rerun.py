"""Edit and run again from the run page (issue "The run page becomes a playground"): the edited
run opens with the previous one drawn faintly underneath, and its address says so."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import create_job, screenshot, wait_for_job

pytestmark = pytest.mark.browser

RERUN_URL = re.compile(r"/jobs/([0-9a-f]{32})\?previous=([0-9a-f]{32})")


def open_job(page, path: str) -> None:
    page.goto(path)
    page.wait_for_selector("#job-view[data-ready=true]")


def wait_for_status(page, status: str) -> None:
    page.wait_for_selector(f"#job-view[data-status={status}]", timeout=120_000)


def test_edit_and_run_again_shows_the_new_run_over_the_old(page, api):
    old = create_job(api, "linear", {"epochs": 3000}, seed=7)
    old_done = wait_for_job(api, old["id"])
    open_job(page, f"/jobs/{old['id']}")
    page.locator("[data-rerun] summary").click()
    form = page.locator("[data-rerun-form]")
    assert form.locator("[name=lr]").input_value() == "0.01" and form.locator("[name=data]").count() == 0
    form.locator("[name=lr]").fill("0.02")
    screenshot(page, "rerun-form")
    form.get_by_role("button", name="Run again").click()
    page.wait_for_url(RERUN_URL)
    new_id, previous_id = RERUN_URL.search(page.url).groups()
    assert previous_id == old["id"] and new_id != old["id"]
    page.wait_for_selector("#job-view[data-ready=true]")
    new = api.get(f"/api/jobs/{new_id}").json()
    assert new["params"] == {**old_done["params"], "lr": 0.02} and new["seed"] == 7

    wait_for_status(page, "succeeded")
    note = page.locator("[data-previous-note]")
    assert "Drawn faintly underneath: the previous run" in note.inner_text() and "(lr 0.01 → 0.02)" in note.inner_text()
    assert note.locator("a").get_attribute("href") == f"/jobs/{old['id']}"
    legend = page.locator("[data-loss-chart] .u-legend").inner_text()
    assert "previous train" in legend
    page.wait_for_function("document.querySelector('[data-loss-chart]').dataset.points === '3000'")  # one x axis
    ghost = page.evaluate("window.playgroundJob.ghost")
    assert ghost["kind"] == "line" and ghost["slope"] == pytest.approx(old_done["result"]["slope"])
    assert int(page.locator("[data-surface]").get_attribute("data-ghost-points")) > 0
    screenshot(page, "rerun-new-over-old")

    # Reload and Back land on the same states.
    page.reload()
    page.wait_for_selector("#job-view[data-ready=true]")
    page.wait_for_function("window.playgroundJob.previous !== null")
    assert "previous train" in page.locator("[data-loss-chart] .u-legend").inner_text()
    page.go_back()
    page.wait_for_url(re.compile(f"/jobs/{old['id']}$"))
    page.wait_for_selector("#job-view[data-ready=true]")
    assert page.locator("[data-previous-note]").is_hidden()


def test_rerun_on_every_change_keeps_the_form_open_and_the_focus(page, api):
    old = create_job(api, "mlp", {"epochs": 300}, seed=8)
    wait_for_job(api, old["id"])
    open_job(page, f"/jobs/{old['id']}")
    page.locator("[data-rerun] summary").click()
    page.locator("[data-rerun-auto]").check()
    hidden = page.locator("[data-rerun-form] [name=hidden]")
    hidden.fill("5")
    hidden.press("Tab")  # the change event
    page.wait_for_url(RERUN_URL)
    new_id = RERUN_URL.search(page.url).group(1)
    assert "auto=1" in page.url and "focus=hidden" in page.url
    page.wait_for_selector("#job-view[data-ready=true]")
    assert api.get(f"/api/jobs/{new_id}").json()["params"]["hidden"] == 5
    page.wait_for_function("document.activeElement && document.activeElement.name === 'hidden'")
    assert page.locator("[data-rerun]").get_attribute("open") is not None
    assert page.locator("[data-rerun-auto]").is_checked()
    wait_for_status(page, "succeeded")
    assert page.evaluate("window.playgroundJob.ghost.kind") == "curve"


def test_a_rerun_with_a_bad_value_says_which_field_and_why(page, api):
    old = create_job(api, "linear", {"epochs": 100}, seed=9)
    wait_for_job(api, old["id"])
    open_job(page, f"/jobs/{old['id']}")
    page.locator("[data-rerun] summary").click()
    form = page.locator("[data-rerun-form]")
    form.locator("[name=epochs]").fill("0")
    form.get_by_role("button", name="Run again").click()
    error = form.locator("[data-field=epochs] .field-error")
    error.wait_for(state="visible")
    assert "greater than or equal to 1" in error.inner_text()
    assert page.url.endswith(f"/jobs/{old['id']}"), "no new run"
