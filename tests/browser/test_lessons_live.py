"""The Lessons page follows the server's event stream, and "Save as a lesson…" previews its
instructions as the class will see them (issue 16), in Chromium on the session's open server
(no users: everyone may make lessons there).

A lesson made or deleted elsewhere (here: through the API) appears or goes on an open Lessons page
without a reload and without the page reading the list again; keyboard focus in a row stays put
while others come and go. The dialog's preview is the server's rendering, asked for when typing
pauses, not at every key. Nothing here trains.
"""

from __future__ import annotations

import time

import pytest

from tests.browser.helpers import screenshot

pytestmark = pytest.mark.browser

LESSON = {"title": "Live list", "kind": "linear", "params": {"lr": 0.005}, "locked": ["lr"]}
TYPED = "**bold** [x](javascript:alert(1))"


def record_requests(page) -> list[tuple[str, str]]:
    log: list[tuple[str, str]] = []
    page.on("request", lambda request: log.append((request.method, request.url.split("//", 1)[1].split("/", 1)[1])))
    return log


def test_the_lessons_page_shows_lessons_made_and_deleted_elsewhere_without_reading_again(page, api):
    kept = api.post("/api/lessons", json={**LESSON, "title": "Kept while others change"}).json()
    log = record_requests(page)
    page.goto("/lessons")
    page.wait_for_selector("#lessons[data-ready=true]")
    kept_link = page.locator(f'tr[data-lesson-id="{kept["id"]}"]').get_by_role("link", name="Kept while others change", exact=True)
    kept_link.focus()
    stamp = f"{time.time_ns():x}"  # a title no other test's lesson has

    made = api.post("/api/lessons", json={**LESSON, "title": f"Made elsewhere {stamp}"}).json()
    row = page.locator(f'tr[data-lesson-id="{made["id"]}"]')
    row.get_by_role("link", name=f"Made elsewhere {stamp}", exact=True).wait_for()
    assert page.locator("[data-lessons-rows] tr").first.get_attribute("data-lesson-id") == str(made["id"]), "newest first"
    assert f"Lesson “Made elsewhere {stamp}” was added." in page.locator("[data-lessons-status]").inner_text()
    assert page.evaluate("document.activeElement.textContent") == "Kept while others change", "focus stays where it was"
    screenshot(page, "lessons-page-live")

    assert api.delete(f"/api/lessons/{made['id']}").status_code == 204
    row.wait_for(state="detached")
    assert "was deleted." in page.locator("[data-lessons-status]").inner_text()
    assert page.evaluate("document.activeElement.textContent") == "Kept while others change"
    api.delete(f"/api/lessons/{kept['id']}")
    page.locator(f'tr[data-lesson-id="{kept["id"]}"]').wait_for(state="detached")
    # One read of the list, after the stream said it was live; the rest came as events.
    reads = [url for method, url in log if method == "GET" and url.startswith("api/lessons")]
    assert reads == ["api/lessons"], reads
    assert page.locator("#lessons").get_attribute("data-reads") == "1"
    assert [url for _, url in log if url.startswith("api/events")] == ["api/events"]


def test_the_lesson_dialog_previews_the_instructions_as_the_class_will_see_them(page, api):
    log = record_requests(page)
    page.goto("/?kind=linear")
    page.wait_for_selector("#train-form[data-ready=true]")
    page.get_by_role("button", name="Save as a lesson…").click()
    dialog = page.get_by_role("dialog", name="Save as a lesson")
    dialog.wait_for()
    preview = dialog.locator("[data-instructions-preview]")
    assert "(no instructions)" in preview.inner_text()
    dialog.get_by_label("Instructions").focus()
    page.keyboard.type(TYPED)
    page.wait_for_selector(f"[data-instructions-preview][data-shown-for='{len(TYPED)}']:not([aria-busy])")
    assert preview.locator("strong").inner_text() == "bold"
    assert preview.locator("a").count() == 0, "a javascript: link is not made a link"
    assert "[x](javascript:alert(1))" in preview.inner_text()
    asked = [url for method, url in log if method == "POST" and url == "api/lessons/instructions/preview"]
    assert 1 <= len(asked) == int(preview.get_attribute("data-requests"))
    assert len(asked) <= len(TYPED) // 4, f"{len(asked)} requests for {len(TYPED)} keys: not one per key"
    screenshot(page, "lesson-dialog-preview")
    # The rendering is the one a saved lesson gets.
    served = api.post("/api/lessons/instructions/preview", json={"instructions": TYPED}).json()["html"]
    assert preview.inner_html() == served
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="hidden")
