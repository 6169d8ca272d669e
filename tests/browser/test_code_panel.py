"""The run as code on its page (issue "Inside the model and back to code"): the exported script,
highlighted, copied, downloaded; nothing fetched until it is opened."""

from __future__ import annotations

import pytest

from tests.browser.helpers import create_job, screenshot, wait_for_job

pytestmark = pytest.mark.browser


def test_the_script_is_shown_highlighted_and_copied(page, api):
    job = create_job(api, "linear", {"epochs": 300}, seed=2)
    wait_for_job(api, job["id"])
    asked = []
    page.on("request", lambda r: asked.append(r.url))
    page.goto(f"/jobs/{job['id']}")
    page.wait_for_selector("#job-view[data-ready=true]")
    assert not any("/script" in url or "/vendor/highlight/" in url for url in asked), "nothing before it is opened"

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Show the script").click()
    box = page.locator("[data-code]")
    box.wait_for(state="visible")
    script = api.get(f"/api/jobs/{job['id']}/script").text
    assert box.inner_text().strip() == script.strip()
    assert box.locator(".hljs-keyword").count() > 5, "highlighted as Python"
    assert page.get_by_role("button", name="Hide the script").get_attribute("aria-expanded") == "true"
    screenshot(page, "code-panel")

    page.get_by_role("button", name="Copy").click()
    page.wait_for_function("document.querySelector('[data-code-message]').textContent.startsWith('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == script

    assert page.locator("[data-code-py]").get_attribute("href") == f"/api/jobs/{job['id']}/script?format=py"
    with page.expect_download() as download:
        page.locator("[data-code-ipynb]").click()
    assert download.value.suggested_filename.endswith(".ipynb")
