"""The defects found trying the pages as a new user (issue 13, "The defects found trying the pages"),
each pinned in Chromium: the numbers in the test names are the issue's."""

from __future__ import annotations

import json
import re

import pytest

from tests.browser.helpers import (
    create_job,
    pause_job,
    screenshot,
    wait_for_job,
    wait_until_idle,
    watched_tab,
)

pytestmark = pytest.mark.browser

JOB_URL = re.compile(r"/jobs/([0-9a-f]{32})$")
TINY_CIFAR = {"dataset": "cifar10", "model": "fc", "epochs": 1, "batch_size": 16, "augment": False}
PHONE = {"width": 390, "height": 844}


def open_form(page, path: str = "/"):
    page.goto(path)
    page.wait_for_selector("#train-form[data-ready=true]")
    return page.locator("#train-form")


def row(page, job_id: str):
    return page.locator(f'tr[data-job-id="{job_id}"]')


def in_view(page, selector: str) -> bool:
    """The element is inside the viewport and on top there (not covered by anything)."""
    return page.evaluate(
        """(selector) => {
          const node = document.querySelector(selector);
          const box = node.getBoundingClientRect();
          if (box.top < 0 || box.left < 0 || box.bottom > innerHeight || box.right > innerWidth) return false;
          const top = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
          return top === node || node.contains(top);
        }""",
        selector,
    )


# 1 -------------------------------------------------------------------------------------------


def test_1_the_runs_list_reads_small_summaries_without_pictures(page, api, server):
    if server.env.get("PLAYGROUND_DATA_DIR") is None:
        pytest.skip("the tiny CIFAR data set is missing")
    jobs = [create_job(api, "cifar", TINY_CIFAR, seed=seed, name=f"listed cifar {seed}") for seed in (1, 2)]
    for job in jobs:
        assert wait_for_job(api, job["id"])["status"] == "succeeded"
    assert api.get(f"/api/jobs/{job['id']}").json()["result"]["samples"], "premise: the run has pictures"

    bodies: list[bytes] = []
    page.on(
        "response",
        lambda response: bodies.append(response.body())
        if re.search(r"/api/jobs\?", response.url) and response.request.method == "GET"
        else None,
    )
    page.goto("/jobs")
    row(page, job["id"]).wait_for()
    # The list read again (a filter changed; it no longer polls): as small as its first.
    with page.expect_response(lambda r: "/api/jobs?" in r.url, timeout=30_000):
        page.select_option("#filter-kind", "cifar")
    assert len(bodies) >= 2
    for body in bodies:
        listing = json.loads(body)
        assert len(body) < 1_500 * max(1, len(listing["items"])), f"{len(body)} bytes for {len(listing['items'])} runs"
        for item in listing["items"]:
            pictures = {"samples", "confusion_examples", "confusion_matrix", "per_class_acc", "curve", "train_points"}
            assert not pictures & set(item["result"] or {}), item["result"].keys()


# 2 -------------------------------------------------------------------------------------------

def test_2_the_headers_running_and_queued_counts_follow_the_server(page, api, server):
    # A run long enough to be running while the test looks (paused as soon as the header shows it):
    # the tiny CIFAR set, the ResNet at batch 2, 200 epochs is minutes of work.
    if server.env.get("PLAYGROUND_DATA_DIR") is None:
        pytest.skip("the tiny CIFAR data set is missing")
    job = create_job(
        api, "cifar", {"dataset": "cifar10", "model": "resnet", "epochs": 200, "batch_size": 2}, seed=1, paused=True
    )
    header = page.locator("#server-status")
    try:
        wait_until_idle(api)
        page.goto("/compare")  # a page without the job list: the header keeps itself current
        header.filter(has_text="0 running, 0 queued").wait_for()
        assert api.post(f"/api/jobs/{job['id']}/resume").status_code == 202
        header.filter(has_text="1 running, 0 queued").wait_for()
        assert api.get(f"/api/jobs/{job['id']}").json()["status"] == "running", "premise: still running"
        pause_job(api, job["id"])
        header.filter(has_text="0 running, 0 queued").wait_for()
    finally:
        api.post(f"/api/jobs/{job['id']}/cancel")
        wait_for_job(api, job["id"])


# 3 -------------------------------------------------------------------------------------------


def test_3_back_after_train_and_a_reload_keep_the_forms_edits(page):
    form = open_form(page, "/?kind=linear")
    form.locator("[name=epochs]").fill("300")
    form.locator("[name=lr]").fill("0.005")
    form.locator("[name=optimizer]").select_option("adam")
    page.get_by_label("also try").select_option("lr")
    page.get_by_label("other values to try").fill("0.05")
    # The address follows the form, so a reload keeps the edits.
    page.reload()
    page.wait_for_selector("#train-form[data-ready=true]")
    assert form.locator("[name=epochs]").input_value() == "300"
    assert form.locator("[name=optimizer]").input_value() == "adam"
    assert page.get_by_label("other values to try").input_value() == "0.05"
    page.get_by_label("also try").select_option("")
    page.get_by_role("button", name="Train").click()
    page.wait_for_url(JOB_URL)
    page.go_back()
    page.wait_for_selector("#train-form[data-ready=true]")
    assert form.locator("[name=epochs]").input_value() == "300"
    assert form.locator("[name=lr]").input_value() == "0.005"
    assert form.locator("[name=optimizer]").input_value() == "adam"


# 4 -------------------------------------------------------------------------------------------


def test_4_edit_these_settings_leaves_the_name_and_retry_names_do_not_pile_up(page, api):
    job = create_job(api, "linear", {"input_scale": 1, "epochs": 2000, "lr": 0.01}, seed=3, name="raw fit · lr=0.1")
    assert wait_for_job(api, job["id"])["status"] == "diverged"
    page.goto(f"/jobs/{job['id']}")
    page.wait_for_selector("#job-view[data-ready=true]")
    edit = page.get_by_role("link", name="Edit these settings")
    assert "name=" not in edit.get_attribute("href")
    assert "seed=3" in edit.get_attribute("href"), "the seed stays: the same settings give the same run"
    page.get_by_role("button", name=re.compile(r"Retry with lr")).first.click()
    page.wait_for_url(lambda url: JOB_URL.search(url) is not None and job["id"] not in url)
    retry = api.get(f"/api/jobs/{JOB_URL.search(page.url).group(1)}").json()
    assert retry["params"]["lr"] < 0.01
    assert retry["name"] == f"raw fit · lr={retry['params']['lr']}", "one lr in the name: the new one"
    api.post(f"/api/jobs/{retry['id']}/cancel")

    edit_page = open_form(page, "/?kind=linear&seed=3&lr=0.001&input_scale=1")
    assert edit_page.locator("[name=name]").input_value() == ""
    names = page.evaluate(
        """() => import("/static/js/format.js").then(({ variantName }) => [
          variantName("fit · lr=0.001", { lr: 0.0001 }),
          variantName("fit · epochs=10 · lr=0.1", { lr: 0.01 }),
          variantName("linear", { lr: 0.5 }),
        ])"""
    )
    assert names == ["fit · lr=0.0001", "fit · epochs=10 · lr=0.01", "linear · lr=0.5"]
    # A live change's label on the chart: a whole number as it is, a rate to 4 significant digits.
    labels = page.evaluate(
        """() => import("/static/js/lineage.js").then(({ changeLabel }) => [
          changeLabel({ epochs: 10243 }), changeLabel({ lr: 0.0123456, momentum: 0.9 }),
        ])"""
    )
    assert labels == ["epochs 10243", "lr 0.01235, momentum 0.9"]


# 5 -------------------------------------------------------------------------------------------


def test_5_defaults_resets_the_seed_the_name_and_the_address(page):
    form = open_form(page, "/?kind=linear&lr=0.5&seed=7&name=mine&device=cpu")
    assert form.locator("[name=seed]").input_value() == "7"
    page.get_by_role("button", name="Defaults").click()
    assert form.locator("[name=lr]").input_value() == "0.01"
    assert form.locator("[name=seed]").input_value() == ""
    assert form.locator("[name=name]").input_value() == ""
    assert form.locator("[name=device]").input_value() == "auto"
    assert page.url.endswith("/?kind=linear"), page.url


# 6 -------------------------------------------------------------------------------------------


def test_6_compares_run_picker_keeps_statuses_current_and_checkboxes_whole(page, api):
    long_name = "a run with a long name that wraps onto a second line in the picker " * 2
    job = create_job(api, "linear", {"epochs": 100_000}, seed=1, name=long_name.strip(), paused=True)
    short = create_job(api, "linear", {"epochs": 50}, seed=1, name="short")
    wait_for_job(api, short["id"])
    page.set_viewport_size(PHONE)
    page.goto("/compare")
    item = page.locator("[data-pick-list] li", has=page.locator(f'input[value="{job["id"]}"]'))
    item.locator(".badge", has_text="paused").wait_for()
    # Ticked, then the run changes elsewhere: the picker shows it, and the tick stays.
    item.get_by_role("checkbox").check()
    assert api.post(f"/api/jobs/{job['id']}/cancel").status_code == 202
    wait_for_job(api, job["id"])
    item.locator(".badge", has_text="cancelled").wait_for(timeout=60_000)
    assert item.get_by_role("checkbox").is_checked()

    widths = page.evaluate(
        "() => [...document.querySelectorAll('[data-pick-list] input')].map((box) => box.getBoundingClientRect().width)"
    )
    assert item.locator("label").bounding_box()["height"] > 30, "premise: the long label wraps"
    assert max(widths) - min(widths) < 0.5 and min(widths) >= 16, widths
    screenshot(page, "compare-picker-phone")


# 7 -------------------------------------------------------------------------------------------


def test_7_try_it_clears_an_old_answer_and_says_why_there_is_none(page, api):
    job = create_job(api, "linear", {"epochs": 200}, seed=1)
    wait_for_job(api, job["id"])
    page.goto(f"/jobs/{job['id']}")
    page.wait_for_selector("#job-view[data-ready=true][data-status=succeeded]")
    field = page.locator("#predict-input")
    output = page.locator("#predict-output")
    field.fill("80")
    page.get_by_role("button", name="Predict").click()
    page.wait_for_function("document.querySelector('#predict-output').dataset.value !== undefined")
    field.fill("")
    assert output.inner_text() == "", "the answer to 80 is not shown for an empty field"
    page.get_by_role("button", name="Predict").click()
    assert "number" in output.inner_text()
    field.fill("1e308")
    page.get_by_role("button", name="Predict").click()
    page.wait_for_function("document.querySelector('#predict-output').textContent.includes('overflow')")
    assert "3.4e38" in output.inner_text()


# 8, 9 ----------------------------------------------------------------------------------------


def test_8_a_link_value_that_does_not_parse_is_said_by_its_field(page):
    form = open_form(page, "/?kind=linear&lr=abc&optimizer=rmsprop&epochs=300")
    lr_error = form.locator('[data-field="lr"] .field-error')
    assert lr_error.is_visible() and '"abc" is not a number' in lr_error.inner_text()
    assert form.locator("[name=lr]").input_value() == "0.01", "the default, as the message says"
    assert "rmsprop" in form.locator('[data-field="optimizer"] .field-error').inner_text()
    assert form.locator("[name=epochs]").input_value() == "300", "the good values are used"
    general = form.locator("[data-form-error]")
    assert general.is_visible() and "lr" in general.inner_text()


def test_9_an_empty_limit_train_says_all(page):
    form = open_form(page, "/?kind=cifar")
    assert form.locator("[name=limit_train]").get_attribute("placeholder") == "empty: all"


# 10 ------------------------------------------------------------------------------------------


def test_10_keyboard_focus_moves_to_the_next_run_after_delete(page, api):
    older = create_job(api, "linear", {"epochs": 50}, seed=1, name="focus older")
    newer = create_job(api, "linear", {"epochs": 50}, seed=1, name="focus newer")
    for job in (older, newer):
        wait_for_job(api, job["id"])
    page.goto("/jobs")
    row(page, older["id"]).locator(".badge", has_text="succeeded").wait_for()
    row(page, newer["id"]).get_by_role("button", name="Delete focus newer").focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    row(page, newer["id"]).wait_for(state="detached")
    page.wait_for_function("document.activeElement && document.activeElement !== document.body")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Delete focus older"
    # And on from there: the next Delete from the keyboard works the same.
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    row(page, older["id"]).wait_for(state="detached")
    # The focus moves once the list is drawn again without the row: wait for it, do not race it.
    page.wait_for_function("document.activeElement && document.activeElement.closest('#job-list') !== null")


# 11 ------------------------------------------------------------------------------------------


def test_11_on_a_phone_matrix_row_labels_stay_and_the_differs_table_says_it_scrolls(browser, server, api):
    if server.env.get("PLAYGROUND_DATA_DIR") is None:
        pytest.skip("the tiny CIFAR data set is missing")
    jobs = [create_job(api, "cifar", {**TINY_CIFAR, "lr": lr}, seed=1, name=f"cifar with lr {lr}") for lr in (0.01, 0.02, 0.03)]
    for job in jobs:
        assert wait_for_job(api, job["id"])["status"] == "succeeded"
    with watched_tab(browser, server.url, PHONE, device_scale_factor=2, is_mobile=True, has_touch=True) as phone:
        phone.goto(f"/jobs/{jobs[0]['id']}")
        phone.wait_for_selector("#job-view[data-ready=true][data-status=succeeded]")
        matrix = phone.locator("table.confusion")
        matrix.wait_for()
        matrix.scroll_into_view_if_needed()
        box = phone.evaluate("""() => {
          const scroller = document.querySelector('table.confusion').closest('.table-scroll');
          scroller.scrollLeft = scroller.scrollWidth;
          const label = document.querySelector('table.confusion tbody th');
          return {scrolled: scroller.scrollLeft, scroller: scroller.getBoundingClientRect().left,
                  label: label.getBoundingClientRect().left};
        }""")
        assert box["scrolled"] > 0, "premise: the matrix is wider than a phone"
        assert abs(box["label"] - box["scroller"]) < 1, box
        screenshot(phone, "confusion-phone-scrolled")

        phone.goto(f"/compare?ids={','.join(job['id'] for job in jobs)}")
        phone.wait_for_selector("#compare-view[data-ready=true]")
        hint = phone.locator("[data-scroll-hint]")
        assert hint.is_visible() and "scroll" in hint.inner_text()
        assert "scrolls" in phone.locator("[data-diff-scroll]").get_attribute("class")
        screenshot(phone, "compare-differs-phone")


# 12 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("screen", [{"width": 1280, "height": 800}, PHONE], ids=["desktop", "phone"])
def test_12_the_train_button_stays_in_view(browser, server, screen):
    with watched_tab(browser, server.url, screen) as page:
        for kind in ("linear", "cifar"):
            open_form(page, f"/?kind={kind}")
            assert in_view(page, "#train-button"), f"{kind}: Train is out of view on load"
            # Half-way down the form, too.
            page.evaluate("scrollTo(0, document.getElementById('param-fields').getBoundingClientRect().top + scrollY)")
            assert in_view(page, "#train-button"), f"{kind}: Train is out of view half-way down the form"
        screenshot(page, f"index-train-in-view-{screen['width']}")


# The chapter-7 card ----------------------------------------------------------------------------


def test_chapter_7_starts_with_the_books_cifar2_and_offers_cifar10_with_a_time_estimate(page, api):
    form = open_form(page, "/?kind=cifar")
    assert form.locator("[name=dataset]").input_value() == "cifar2"
    assert form.locator("[name=model]").input_value() == "conv"
    assert form.locator("[name=epochs]").input_value() == "6"
    estimate = page.locator("#train-estimate")
    assert estimate.is_visible() and "Estimate" in estimate.inner_text()
    assert re.search(r"about \d+ s of training", estimate.inner_text()), estimate.inner_text()
    assert page.get_by_role("button", name=re.compile("CIFAR-2")).get_attribute("aria-pressed") == "true"

    page.get_by_role("button", name=re.compile("CIFAR-10")).click()
    assert form.locator("[name=dataset]").input_value() == "cifar10"
    assert form.locator("[name=model]").input_value() == "resnet"
    assert re.search(r"about \d+ min of training", estimate.inner_text()), estimate.inner_text()
    assert "dataset=cifar10" in page.url and "model=resnet" in page.url
    # The estimate follows the form.
    form.locator("[name=epochs]").fill("16")
    assert "16 epochs" in estimate.inner_text()
    screenshot(page, "index-cifar10-preset")

    # The link opens the same settings; Defaults comes back to CIFAR-2.
    open_form(page, "/?" + page.url.split("?", 1)[1])
    assert form.locator("[name=dataset]").input_value() == "cifar10"
    assert form.locator("[name=epochs]").input_value() == "16"
    page.get_by_role("button", name="Defaults").click()
    assert form.locator("[name=dataset]").input_value() == "cifar2"
    # Train sends the book's recipe.
    page.get_by_role("button", name="Train").click()
    page.wait_for_url(JOB_URL)
    job = api.get(f"/api/jobs/{JOB_URL.search(page.url).group(1)}").json()
    assert {k: job["params"][k] for k in ("dataset", "model", "epochs", "optimizer", "label_smoothing")} == {
        "dataset": "cifar2",
        "model": "conv",
        "epochs": 6,
        "optimizer": "nesterov_onecycle",
        "label_smoothing": 0,
    }
    api.post(f"/api/jobs/{job['id']}/cancel")



def test_the_90_percent_preset_sets_airbenchs_recipe_and_estimates_it_in_bfloat16(page, api):
    form = open_form(page, "/?kind=cifar")
    page.get_by_role("button", name=re.compile("90% on all ten")).click()
    values = {name: form.locator(f"[name={name}]").input_value() for name in ("model", "epochs", "batch_size", "momentum", "bias_lr_scale")}
    assert values == {"model": "airbench", "epochs": "12", "batch_size": "1024", "momentum": "0.85", "bias_lr_scale": "64"}
    assert "momentum=0.85" in page.url and "bias_lr_scale=64" in page.url
    estimate = page.locator("#train-estimate").inner_text()
    assert re.search(r"about \d+ min of training", estimate) and "1,100 images/s" in estimate and "bfloat16" in estimate, estimate
    screenshot(page, "index-airbench-preset")
    # The ResNet preset after it sets the switches back: it is not airbench's optimiser on a resnet.
    page.get_by_role("button", name=re.compile("CIFAR-10: all ten")).click()
    assert form.locator("[name=model]").input_value() == "resnet"
    assert form.locator("[name=momentum]").input_value() == "0.9"
    assert form.locator("[name=bias_lr_scale]").input_value() == "1"
    assert form.locator("[name=lookahead]").is_checked() is False
