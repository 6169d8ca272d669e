"""A lesson's page and its class board, in Chromium, on a server with a class (issue 16).

The page shows the lesson's instructions and its form with the lesson's values: locked parameters
disabled with a note, hidden ones absent; a locked value forced past the page is refused by the
server and named by its field. The board shows each student's best run and follows the server's
event stream: a better run that ends moves up without a reload. Runs are short line fits, waited
for by their status.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.helpers import create_job, screenshot, wait_for_job, watched_tab
from tests.service.test_users import start_class

LESSON = {
    "title": "Small steps",
    "instructions": "Change **epochs** and watch the loss; `lr` stays.\n\n- one\n- two <b>not bold</b>",
    "kind": "linear",
    "params": {"lr": 0.005, "epochs": 200},
    "locked": ["lr"],
    "hidden": ["input_scale", "optimizer"],
}


class Class:
    def __init__(self, tmp: Path) -> None:
        self.server, self.tokens = start_class(tmp / "home", {})
        self.api = {
            name: httpx.Client(base_url=self.server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            for name, token in self.tokens.items()
        }

    def close(self) -> None:
        for client in self.api.values():
            client.close()
        self.server.stop()


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Class]:
    room = Class(tmp_path_factory.mktemp("lesson-pages"))
    yield room
    room.close()


def signed_in_tab(browser: Any, school: Class, name: str) -> Any:
    tab = watched_tab(browser, school.server.url)
    page = tab.__enter__()
    page.goto("/static/css/playground.css")  # the origin, to set its storage
    page.evaluate("token => localStorage.setItem('playground-token', token)", school.tokens[name])
    return tab, page


def make_lesson(school: Class, **changes: Any) -> dict[str, Any]:
    response = school.api["tess"].post("/api/lessons", json={**LESSON, **changes})
    assert response.status_code == 201, response.text
    return response.json()


def test_the_lesson_page_shows_locked_fields_disabled_and_hidden_ones_not(browser, school: Class):
    lesson = make_lesson(school)
    tab, page = signed_in_tab(browser, school, "ann")
    try:
        page.goto(f"/lessons/{lesson['id']}")
        page.wait_for_selector("#lesson[data-ready=true]")
        assert page.locator("[data-lesson-title]").inner_text() == "Small steps"
        instructions = page.locator("[data-lesson-instructions]")
        assert instructions.locator("strong").inner_text() == "epochs"
        assert instructions.locator("li").count() == 2 and instructions.locator("b").count() == 0
        assert "<b>not bold</b>" in instructions.inner_text()
        lr = page.locator("#param-lr")
        assert lr.is_disabled() and lr.input_value() == "0.005"
        note = page.locator('[data-field="lr"] [data-lock-note]')
        assert note.is_visible() and "Locked by the lesson" in note.inner_text()
        epochs = page.locator("#param-epochs")
        assert epochs.is_enabled() and epochs.input_value() == "200"
        assert page.locator('[data-field="epochs"] [data-lock-note]').count() == 0
        for hidden in ("input_scale", "optimizer"):
            assert page.locator(f'[data-field="{hidden}"]').count() == 0
        assert "2 parameters it does not show" in page.locator("[data-hidden-note]").inner_text()
        screenshot(page, "lesson-page")

        # A locked value forced past the page: the server refuses it, and the page says so by the field.
        page.evaluate("document.getElementById('param-lr').disabled = false")
        lr.fill("0.5")
        page.get_by_role("button", name="Train").click()
        error = page.locator('[data-field="lr"] .field-error')
        error.wait_for(state="visible")
        assert f"locked at 0.005 by lesson {lesson['id']} ('Small steps')" in error.inner_text()
        assert page.url.endswith(f"/lessons/{lesson['id']}")
        screenshot(page, "lesson-locked-refused")

        # The student's own run: what the form shows, the lesson's lock and hidden values kept.
        page.reload()
        page.wait_for_selector("#lesson[data-ready=true]")
        page.locator("#param-epochs").fill("250")
        page.get_by_role("button", name="Train").click()
        page.wait_for_url("**/jobs/*")
        job = school.api["ann"].get(f"/api/jobs/{page.url.rsplit('/', 1)[1]}").json()
        assert (job["lesson_id"], job["owner"], job["name"]) == (lesson["id"], "ann", "Small steps")
        assert (job["params"]["lr"], job["params"]["epochs"], job["params"]["optimizer"]) == (0.005, 250, "manual")
    finally:
        tab.__exit__(None, None, None)


def test_the_board_shows_each_students_best_run_and_follows_new_ones(browser, school: Class):
    lesson = make_lesson(school, hidden=[])
    anns = create_job(school.api["ann"], "linear", {"epochs": 200}, lesson_id=lesson["id"], name="ann's first")
    bens = create_job(school.api["ben"], "linear", {"epochs": 300}, lesson_id=lesson["id"], name="ben's first")
    for job in (anns, bens):
        assert wait_for_job(school.api["ann"], job["id"])["status"] == "succeeded"
    tab, page = signed_in_tab(browser, school, "tess")
    try:
        page.goto(f"/lessons/{lesson['id']}/board")
        page.wait_for_selector(f'tr[data-owner="ann"][data-job-id="{anns["id"]}"]')
        page.wait_for_selector(f'tr[data-owner="ben"][data-job-id="{bens["id"]}"]')
        rows = page.locator("[data-board-rows] tr")
        # More epochs at this small lr: a lower loss, so ben's run ranks first.
        assert [rows.nth(i).get_attribute("data-owner") for i in range(2)] == ["ben", "ann"]
        assert rows.nth(0).get_by_role("link").inner_text() == "ben's first"
        assert "final train_loss (lower is better)" in page.locator("[data-metric-header]").inner_text()
        page.evaluate("window.boardStayed = true")  # gone if the page reloaded

        # Ann trains longer: when her run ends, it becomes her best and the first row.
        better = create_job(school.api["ann"], "linear", {"epochs": 900}, lesson_id=lesson["id"], name="ann's longer")
        page.wait_for_selector(
            f'[data-board-rows] tr:first-child[data-owner="ann"][data-job-id="{better["id"]}"][data-status="succeeded"]'
        )
        assert page.evaluate("window.boardStayed") is True
        ended = school.api["ann"].get(f"/api/jobs/{better['id']}").json()
        assert float(rows.nth(0).get_attribute("data-value")) == ended["result"]["train_loss"]
        assert rows.nth(0).locator("td").last.inner_text() == "2"  # her runs
        screenshot(page, "lesson-board")
    finally:
        tab.__exit__(None, None, None)
