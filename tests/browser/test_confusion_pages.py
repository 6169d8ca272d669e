"""A confusion cell's pictures on a cifar run's page (issue 12), on a phone and from the keyboard:
first the few the result keeps (no request), then "Show all N" and Previous / Next over every test
image of the cell, the same as the API's pages; a paged picture still opens in Try it."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import screenshot
from tests.service.helpers import post_job, wait_for

pytestmark = pytest.mark.browser

CONV_RUN = {"dataset": "cifar2", "model": "conv", "epochs": 1, "batch_size": 16, "augment": False}
# The page asks for 24 pictures a page; the tiny data set's cells hold 8 at most, so the test has
# the server answer 3 a page (the page steps by the limit the answer says it used).
PAGE = 3


def api_pages(api: Any, job_id: str, i: int, j: int, count: int) -> list[list[str]]:
    pages = []
    for offset in range(0, count, PAGE):
        page = api.get(f"/api/jobs/{job_id}/confusion/{i}/{j}", params={"offset": offset, "limit": PAGE}).json()
        pages.append([image["image"] for image in page["images"]])
    return pages


def test_a_confusion_cell_pages_through_every_picture(phone, api, server) -> None:
    if server.env.get("PLAYGROUND_DATA_DIR") is None:
        pytest.skip("the session server has no tiny CIFAR data set (tests/conftest.py's tiny_cifar_env)")
    job = wait_for(api, post_job(api, "cifar", CONV_RUN, seed=1)["id"], timeout=180)
    assert job["status"] == "succeeded", job
    result = job["result"]
    classes, matrix = result["classes"], result["confusion_matrix"]
    # Two classes, 8 test images each: some cell holds 4 or more, more than one page of 3.
    i, j = max(((i, j) for i in range(2) for j in range(2)), key=lambda ij: matrix[ij[0]][ij[1]])
    count = matrix[i][j]
    assert count > PAGE
    expected = api_pages(api, job["id"], i, j, count)

    asked: list[str] = []

    def smaller_pages(route: Any) -> None:
        url = route.request.url.replace("limit=24", f"limit={PAGE}")
        asked.append(url)
        route.continue_(url=url)

    phone.route("**/api/jobs/*/confusion/**", smaller_pages)
    phone.goto(f"/jobs/{job['id']}")
    phone.wait_for_selector("#job-view[data-ready=true]")

    cell = phone.locator(f'button[data-true-class="{classes[i]}"][data-pred-class="{classes[j]}"]')
    cell.focus()
    phone.keyboard.press("Enter")
    detail = phone.locator("[data-cell-detail]")
    kept = result["confusion_examples"][i][j]
    expect(detail.locator("img")).to_have_count(len(kept))
    assert [img.get_attribute("src") for img in detail.locator("img").all()] == kept
    assert asked == [], "the first view is the result's own pictures"
    screenshot(phone, "confusion-cell-kept")

    show_all = detail.locator("[data-cell-show-all]")
    expect(show_all).to_have_text(f"Show all {count}")
    show_all.focus()
    phone.keyboard.press("Enter")
    shown_range = detail.locator("[data-cell-range]")
    for number, pictures in enumerate(expected):
        first = number * PAGE + 1
        expect(shown_range).to_have_text(f"{first}–{first + len(pictures) - 1} of {count}")
        assert [img.get_attribute("src") for img in detail.locator("img").all()] == pictures
        if number == 1:
            screenshot(phone, "confusion-cell-paged")
        if number < len(expected) - 1:
            # The keyboard stays on Next: Enter again turns the next page.
            assert phone.evaluate("document.activeElement.dataset.cellNext") == ""
            phone.keyboard.press("Enter")
    expect(detail.locator("[data-cell-next]")).to_be_disabled()
    assert len(asked) == len(expected)

    detail.locator("[data-cell-previous]").focus()
    phone.keyboard.press("Enter")
    last_but_one = (len(expected) - 2) * PAGE + 1
    expect(shown_range).to_have_text(f"{last_but_one}–{last_but_one + PAGE - 1} of {count}")
    assert phone.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0

    # A paged picture opens in Try it, where the model names the cell's column.
    detail.locator(".image-button").last.click()
    answer = phone.locator("[data-predicted-label]")
    answer.wait_for()
    assert answer.get_attribute("data-predicted-label") == classes[j]
