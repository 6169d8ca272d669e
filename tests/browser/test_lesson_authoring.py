"""A teacher makes a lesson without the API (issue 16), in Chromium, on a server with a class.

The start page's "Save as a lesson…" (a teacher's, the admin's, anyone's on an open server; never
a student's) saves the form's values with a title, instructions, the board's metric and per
parameter editable / locked / hidden; the API's 422 shows by the field it names; the saved lesson's
link opens for a student with those values locked and hidden. The Lessons page lists the lessons,
and a teacher deletes one after a confirm. No run is started: nothing here waits on training.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.helpers import screenshot, unlabelled_inputs, watched_tab
from tests.browser.test_lessons import LESSON, Class

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Class]:
    room = Class(tmp_path_factory.mktemp("lesson-authoring"))
    yield room
    room.close()


@pytest.fixture
def tab_as(browser: Any, school: Class) -> Iterator[Any]:
    """tab_as(name, viewport=None): a tab signed in as ``name`` (its token in local storage)."""
    opened = []

    def open_tab(name: str, viewport: dict[str, int] | None = None) -> Any:
        tab = watched_tab(browser, school.server.url, *([viewport] if viewport else []))
        page = tab.__enter__()
        opened.append(tab)
        page.goto("/static/css/playground.css")  # the origin, to set its storage
        page.evaluate("token => localStorage.setItem('playground-token', token)", school.tokens[name])
        return page

    yield open_tab
    for tab in reversed(opened):
        tab.__exit__(None, None, None)


def open_form(page: Any, path: str) -> None:
    page.goto(path)
    page.wait_for_selector("#train-form[data-ready=true]")


def no_sideways_scroll(page: Any) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= innerWidth")


def test_a_teacher_saves_the_forms_values_and_a_student_gets_them_locked_and_hidden(tab_as, school: Class):
    kinds = {info["kind"]: info for info in school.api["tess"].get("/api/kinds").json()}
    teacher = tab_as("tess")
    open_form(teacher, "/?kind=linear&lr=0.002&epochs=150")
    button = teacher.get_by_role("button", name="Save as a lesson…")
    button.click()
    dialog = teacher.get_by_role("dialog", name="Save as a lesson")
    dialog.wait_for()
    assert teacher.evaluate("document.activeElement.id") == "lesson-title"  # typing starts at once
    assert unlabelled_inputs(teacher) == []
    assert dialog.locator('[data-field="lr"] .lesson-param-value').inner_text() == "0.002"
    teacher.keyboard.type("Locked step")
    dialog.get_by_label("Instructions").fill("Keep **lr**; change `epochs`. <i>no tags</i>")
    dialog.locator("#lesson-role-lr").select_option("locked")
    dialog.locator("#lesson-role-input_scale").select_option("hidden")
    dialog.get_by_role("button", name="Save the lesson").click()

    dialog = teacher.get_by_role("dialog", name="Lesson saved")
    saved = dialog.locator("[data-lesson-saved]")
    saved.wait_for(state="visible")
    lesson_id = int(saved.get_attribute("data-lesson-id"))
    link = dialog.get_by_label("The lesson's link").input_value()
    assert link == f"{school.server.url}/lessons/{lesson_id}"
    assert dialog.get_by_label("The class board's link").input_value() == f"{link}/board"
    shown = dialog.locator("[data-saved-instructions]")
    assert shown.locator("strong").inner_text() == "lr" and shown.locator("i").count() == 0
    assert "<i>no tags</i>" in shown.inner_text()
    screenshot(teacher, "lesson-saved-dialog")
    # The stored lesson holds exactly what the form had.
    lesson = school.api["ann"].get(f"/api/lessons/{lesson_id}").json()
    assert lesson["params"] == {**kinds["linear"]["defaults"], "lr": 0.002, "epochs": 150}
    assert (lesson["title"], lesson["locked"], lesson["hidden"], lesson["owner"]) == ("Locked step", ["lr"], ["input_scale"], "tess")
    teacher.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert teacher.evaluate("document.activeElement.id") == "lesson-button"

    student = tab_as("ann")
    student.goto(link)
    student.wait_for_selector("#lesson[data-ready=true]")
    assert student.locator("#param-lr").is_disabled() and student.locator("#param-lr").input_value() == "0.002"
    assert student.locator("#param-epochs").is_enabled() and student.locator("#param-epochs").input_value() == "150"
    assert student.locator('[data-field="input_scale"]').count() == 0
    assert "1 parameter it does not show" in student.locator("[data-hidden-note]").inner_text()


def test_the_apis_422_shows_by_the_field_it_names_on_a_phone(tab_as):
    teacher = tab_as("tess", PHONE)
    open_form(teacher, "/?kind=linear")  # val_fraction 0: no points held out
    teacher.get_by_role("button", name="Save as a lesson…").click()
    dialog = teacher.get_by_role("dialog", name="Save as a lesson")
    dialog.wait_for()
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    dialog.get_by_label("Title").fill("Held out")
    dialog.get_by_label("The class board ranks by").select_option("val_loss")
    dialog.locator("#lesson-role-val_fraction").select_option("locked")
    dialog.get_by_role("button", name="Save the lesson").click()
    error = dialog.locator('[data-field="metric"] .field-error')
    error.wait_for(state="visible")
    assert "fixes val_fraction at 0" in error.inner_text()
    assert dialog.locator("#lesson-metric").get_attribute("aria-invalid") == "true"
    assert dialog.locator("[data-lesson-saved]").is_hidden()
    screenshot(teacher, "lesson-dialog-error-phone")


def test_a_student_has_no_save_button_and_no_delete(tab_as, school: Class):
    lesson = school.api["tess"].post("/api/lessons", json={**LESSON, "title": "Read only"}).json()
    student = tab_as("ann")
    open_form(student, "/")
    student.wait_for_function("document.getElementById('signed-in').textContent.includes('ann')")
    assert student.locator("#lesson-button").is_hidden()
    student.goto("/lessons")
    student.locator(f'tr[data-lesson-id="{lesson["id"]}"]').wait_for()
    assert student.get_by_role("button", name="Delete").count() == 0


def test_an_open_server_offers_the_button(page):
    open_form(page, "/")
    page.get_by_role("button", name="Save as a lesson…").wait_for()


def test_the_lessons_page_lists_them_and_a_teacher_deletes_one_by_keyboard(tab_as, school: Class):
    lesson = school.api["tess"].post("/api/lessons", json={**LESSON, "title": "To delete"}).json()
    teacher = tab_as("tess", PHONE)
    teacher.goto("/")
    teacher.get_by_role("navigation", name="Main").get_by_role("link", name="Lessons").click()
    teacher.wait_for_url("**/lessons")
    assert teacher.get_by_role("link", name="Lessons").get_attribute("aria-current") == "page"
    row = teacher.locator(f'tr[data-lesson-id="{lesson["id"]}"]')
    row.get_by_role("link", name="To delete", exact=True).wait_for()
    assert row.get_by_role("link", name="To delete", exact=True).get_attribute("href") == f"/lessons/{lesson['id']}"
    assert row.get_by_role("link", name="Board").get_attribute("href") == f"/lessons/{lesson['id']}/board"
    assert "linear" in row.inner_text()
    delete = row.get_by_role("button", name="Delete")
    delete.wait_for()
    assert no_sideways_scroll(teacher)
    screenshot(teacher, "lessons-page-phone")

    # Escape keeps it; Delete in the confirm removes it.
    delete.focus()
    teacher.keyboard.press("Enter")
    confirm = teacher.get_by_role("dialog", name="Delete the lesson?")
    confirm.wait_for()
    assert "To delete" in confirm.inner_text()
    teacher.keyboard.press("Escape")
    confirm.wait_for(state="hidden")
    assert school.api["tess"].get(f"/api/lessons/{lesson['id']}").status_code == 200
    delete.focus()
    teacher.keyboard.press("Enter")
    confirm.get_by_role("button", name="Delete").click()
    row.wait_for(state="detached")
    assert f"Deleted “To delete”." in teacher.locator("[data-lessons-status]").inner_text()
    assert school.api["tess"].get(f"/api/lessons/{lesson['id']}").status_code == 404


def test_the_lessons_page_renders_and_loads_only_the_apps_files(server):
    from tests.browser import test_pages_served

    test_pages_served.test_every_page_renders_and_everything_it_loads_is_served_by_the_app(server, "/lessons")
