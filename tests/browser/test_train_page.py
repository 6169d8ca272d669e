"""The start page in Chromium: the form generated from /api/kinds, shared links, 422s by their field."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import hold_job, pause_job, screenshot, step_job, unlabelled_inputs, watched_tab

pytestmark = pytest.mark.browser


def open_form(page, path: str = "/"):
    page.goto(path)
    page.wait_for_selector("#train-form[data-ready=true]")
    return page.locator("#train-form")


# The start page's own defaults over the server's (static/js/presets.js): chapter 7 starts with the
# book's CIFAR-2 and convnet, trained with the fast recipe (bench/cifar_accuracy.py part 2).
PAGE_DEFAULTS = {
    "cifar": {
        "dataset": "cifar2",
        "model": "conv",
        "epochs": 6,
        "batch_size": 64,
        "lr": 0.05,
        "optimizer": "nesterov_onecycle",
        "weight_decay": 5e-4,
        "augment": True,
        "label_smoothing": 0,
    }
}


def test_form_is_generated_from_each_kinds_schema(page, api):
    kinds = api.get("/api/kinds").json()
    form = open_form(page)
    screenshot(page, "index")
    assert unlabelled_inputs(page) == []
    for info in kinds:
        page.locator(f"#kind-{info['kind']}").check()
        properties = info["params_schema"]["properties"]
        for name, prop in properties.items():
            field = form.locator(f'[name="{name}"]')
            assert field.count() == 1, f"{info['kind']}.{name} has {field.count()} inputs"
            # Labelled, described by the schema's description, and filled with the default.
            field_id = field.get_attribute("id")
            assert form.locator(f'label[for="{field_id}"]').count() == 1
            help_ids = field.get_attribute("aria-describedby").split()
            assert prop["description"] in page.locator(f"#{help_ids[0]}").inner_text()
            default = {**info["defaults"], **PAGE_DEFAULTS.get(info["kind"], {})}[name]
            tag = field.evaluate("node => node.tagName.toLowerCase()")
            if "enum" in prop:
                assert tag == "select"
                assert field.locator("option").all_inner_texts() == prop["enum"]
                assert field.input_value() == default
            elif prop.get("type") == "boolean":
                assert field.get_attribute("type") == "checkbox"
                assert field.is_checked() is default
            elif prop.get("type") in ("integer", "number"):
                assert field.get_attribute("type") == "number"
                assert float(field.input_value()) == default
                if "maximum" in prop:
                    assert float(field.get_attribute("max")) == prop["maximum"]
                if "minimum" in prop:
                    assert float(field.get_attribute("min")) == prop["minimum"]
            elif default is None:
                assert field.input_value() == ""
        assert form.locator("button[type=submit]").count() == 1, "the form has one submit button"
    # The run options: every device the server has, and auto.
    devices = api.get("/api/health").json()["devices"]
    assert form.locator("select[name=device] option").all_inner_texts()[: len(devices) + 1] == ["auto", *devices]


def test_bounds_are_enforced_before_anything_is_sent(page):
    form = open_form(page, "/?kind=linear")
    form.locator("[name=lr]").fill("0")  # the schema says lr > 0 (an exclusive bound)
    form.locator("[name=epochs]").fill("0")
    form.locator("button[type=submit]").click()
    assert page.url.endswith("/?kind=linear"), "an out-of-bounds form must not be submitted"
    assert form.locator("[name=lr]").evaluate("node => node.validationMessage") != ""
    assert form.locator("[name=epochs]").evaluate("node => node.validity.rangeUnderflow") is True


def test_a_shared_link_fills_the_form_and_the_form_makes_one(page):
    form = open_form(page, "/?kind=linear&lr=0.0001&input_scale=1&optimizer=adam&seed=7&name=raw%20adam")
    assert form.locator("#kind-linear").is_checked()
    assert form.locator("[name=lr]").input_value() == "0.0001"
    assert form.locator("[name=input_scale]").input_value() == "1"
    assert form.locator("[name=optimizer]").input_value() == "adam"
    assert form.locator("[name=seed]").input_value() == "7"
    assert form.locator("[name=name]").input_value() == "raw adam"

    form.locator("[name=epochs]").fill("1234")
    page.get_by_role("button", name="Copy a link to these settings").click()
    page.wait_for_url(re.compile(r"epochs=1234"))
    query = page.url.split("?", 1)[1]
    assert "kind=linear" in query and "lr=0.0001" in query and "optimizer=adam" in query
    assert "val_fraction" not in query, "defaults stay out of the link"
    # The link opens the same settings.
    form = open_form(page, f"/?{query}")
    assert form.locator("[name=epochs]").input_value() == "1234"
    assert form.locator("[name=lr]").input_value() == "0.0001"


def test_the_server_422_is_shown_next_to_the_field_it_names(page, api):
    form = open_form(page, "/?kind=linear")
    total_before = api.get("/api/jobs").json()["total"]
    # One [x, y] pair: the page names the field before sending (the server would too: 2 at least).
    form.locator("[name=data]").fill("[[35.7, 0.5]]")
    form.locator("button[type=submit]").click()
    error = form.locator('[data-field="data"] .field-error')
    error.wait_for(state="visible")
    assert "at least 2" in error.inner_text()
    assert form.locator("[name=data]").get_attribute("aria-invalid") == "true"
    assert form.locator('[data-field="lr"] .field-error').is_hidden()

    # A value the page would have stopped, sent anyway (as an old page might): the server's
    # message lands by that field too.
    form.locator("[name=data]").fill("")
    form.evaluate("node => { node.noValidate = true; }")
    form.locator("[name=lr]").evaluate("node => { node.setCustomValidity(''); node.value = '-1'; }")
    form.locator("button[type=submit]").click()
    lr_error = form.locator('[data-field="lr"] .field-error')
    lr_error.wait_for(state="visible")
    assert "greater than 0" in lr_error.inner_text()
    assert form.locator('[data-field="data"] .field-error').is_hidden(), "old errors are cleared"
    screenshot(page, "index-422")
    assert api.get("/api/jobs").json()["total"] == total_before, "nothing was created"


def test_the_form_works_from_the_keyboard(page):
    form = open_form(page, "/?kind=linear")
    page.locator("[name=epochs]").focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("300")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "lr"
    page.keyboard.press("Enter")  # submits the form: the one submit button is its default
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f]{32}$"))
    assert form.count() == 0


def test_the_page_and_the_form_fit_a_phone_screen(phone):
    phone.goto("/")
    phone.wait_for_selector("#train-form[data-ready=true]")
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the phone's screen"
    # Form and job list stack: the list starts below the form.
    form_box = phone.locator("#train-form").bounding_box()
    list_box = phone.locator(".jobs-panel").bounding_box()
    assert list_box["y"] >= form_box["y"] + form_box["height"]
    screenshot(phone, "index-phone")


def test_a_shared_link_fills_selects_checkboxes_and_empty_numbers(page):
    # cifar's parameters include `dataset` and `model`, names a <form> also has as properties.
    form = open_form(page, "/?kind=cifar&dataset=cifar2&model=conv&augment=false&limit_train=500&device=cpu")
    assert form.locator("#kind-cifar").is_checked()
    assert form.locator("[name=dataset]").input_value() == "cifar2"
    assert form.locator("[name=model]").input_value() == "conv"
    assert form.locator("[name=augment]").is_checked() is False
    assert form.locator("[name=limit_train]").input_value() == "500"
    assert form.locator("[name=device]").input_value() == "cpu"
    # Switching the experiment brings that experiment's defaults.
    page.locator("#kind-mlp").check()
    assert form.locator("[name=hidden]").input_value() == "13"
    assert form.locator("[name=dataset]").count() == 0


def test_a_server_with_a_token_asks_for_it_once_and_the_page_keeps_it(browser, server_factory):
    token_server = server_factory(env={"PLAYGROUND_API_TOKEN": "s3cret-token"}, workers=1)
    with watched_tab(browser, token_server.url) as page:
        form = open_form(page, "/?kind=linear&epochs=100")
        form.locator("button[type=submit]").click()
        # The 401 opens the token dialog; the request goes through once the token is saved.
        dialog = page.get_by_role("dialog", name="Access token")
        dialog.wait_for()
        assert "Bearer" in dialog.inner_text(), "the server's message says what it needs"
        dialog.get_by_label("Token").fill("s3cret-token")
        dialog.get_by_role("button", name="Save").click()
        page.wait_for_url(re.compile(r"/jobs/[0-9a-f]{32}$"))
        assert page.evaluate("localStorage.getItem('playground-token')") == "s3cret-token"
        # The next write (cancel, retry, another run) just sends it.
        open_form(page, "/?kind=linear&epochs=100").locator("button[type=submit]").click()
        page.wait_for_url(re.compile(r"/jobs/[0-9a-f]{32}$"))
        assert dialog.count() == 0 or not dialog.is_visible()


def test_with_reads_protected_too_the_run_page_still_streams_live(browser, server_factory):
    # EventSource cannot send the Authorization header: the page hands the token over as a cookie.
    env = {"PLAYGROUND_API_TOKEN": "s3cret-token", "PLAYGROUND_AUTH_READS": "true"}
    token_server = server_factory(env=env, workers=1)
    with watched_tab(browser, token_server.url) as page:
        page.goto("/?kind=linear&epochs=100000&lr=0.001")
        dialog = page.get_by_role("dialog", name="Access token")  # even the form's schema is a read
        dialog.get_by_label("Token").fill("s3cret-token")
        # Another read gets its 401 while the user is typing: it waits for the same answer, and
        # what was typed stays.
        page.evaluate("import('/static/js/api.js').then((m) => { window.laterRead = m.api.listJobs(); })")
        page.wait_for_timeout(500)
        assert dialog.get_by_label("Token").input_value() == "s3cret-token"
        dialog.get_by_role("button", name="Save").click()
        page.wait_for_selector("#train-form[data-ready=true]")
        assert page.evaluate("window.laterRead.then((jobs) => Array.isArray(jobs.items))")
        page.locator("#train-form button[type=submit]").click()
        page.wait_for_url(re.compile(r"/jobs/[0-9a-f]{32}$"))
        # Held, so that the page's Cancel lands on a run that is not over (created paused).
        job_id = page.url.rsplit("/", 1)[1]
        with token_server.client(headers={"Authorization": "Bearer s3cret-token"}) as api:
            hold_job(api, job_id)
            page.wait_for_selector("#job-view[data-ready=true][data-status=paused]")
            first = int(page.locator("[data-loss-chart]").get_attribute("data-points") or 0)
            step_job(api, job_id, steps=90_000)
            page.wait_for_function(f"Number(document.querySelector('[data-loss-chart]').dataset.points) > {first}")
            assert page.locator("[data-connection]").get_attribute("data-state") == "live"
            cookie = [c for c in page.context.cookies() if c["name"] == "playground_token"]
            assert cookie and cookie[0]["sameSite"] == "Strict" and cookie[0]["path"] == "/api"
            pause_job(api, job_id)
        page.wait_for_selector("#job-view[data-status=paused]", timeout=30_000)
        page.get_by_role("button", name="Cancel", exact=True).click()
        page.wait_for_selector("#job-view[data-status=cancelled]", timeout=30_000)
