"""The page header says who is signed in (GET /api/me), on a server with users (issue 16)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.browser.helpers import screenshot, watched_tab
from tests.service.test_users import start_class


def test_the_header_shows_the_signed_in_user_after_the_token_prompt(browser, tmp_path: Path):
    server, tokens = start_class(tmp_path / "home", {})
    try:
        with watched_tab(browser, server.url) as page:
            page.goto("/jobs")
            # The page's first read is a 401: it asks for the token; the header says nobody yet.
            dialog = page.get_by_role("dialog", name="Access token")
            dialog.wait_for()
            signed_in = page.locator("#signed-in")
            page.wait_for_function("document.getElementById('signed-in').textContent === '· not signed in'")
            dialog.get_by_label("Token").fill(tokens["ann"])
            dialog.get_by_role("button", name="Save").click()
            page.wait_for_function("document.getElementById('signed-in').textContent.includes('ann')")
            assert signed_in.inner_text() == "· ann (student)" and signed_in.is_visible()
            screenshot(page, "signed-in-header")
            page.reload()
            page.wait_for_function("document.getElementById('signed-in').textContent.includes('ann')")
    finally:
        server.stop()


def test_an_open_server_shows_nobody(page):
    page.goto("/")
    page.wait_for_function("document.getElementById('server-status').textContent !== ''")
    assert page.locator("#signed-in").is_hidden()


def test_a_student_has_the_controls_of_their_own_runs_only(browser, tmp_path: Path):
    import httpx

    server, tokens = start_class(tmp_path / "home", {})
    try:
        ann = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens['ann']}"}, timeout=30)
        job = ann.post("/api/jobs", json={"kind": "linear", "params": {"epochs": 500}, "paused": True}).json()
        assert job["owner"] == "ann"
        for name, mine in (("ben", False), ("ann", True)):
            with watched_tab(browser, server.url) as page:
                page.goto("/")
                page.evaluate("token => localStorage.setItem('playground-token', token)", tokens[name])
                page.goto(f"/jobs/{job['id']}")
                page.wait_for_selector("#job-view[data-ready=true]")
                note = page.locator("[data-owner-note]")
                if mine:
                    page.wait_for_selector("[data-step]:not([disabled])")
                    assert note.is_hidden()
                else:
                    note.wait_for(state="visible")
                    assert note.inner_text().startswith("This is ann's run: only ann or a teacher can pause")
                    assert page.locator("[data-step]").is_disabled() and page.locator("[data-resume]").is_disabled()
                    assert page.locator("[data-cancel]").is_hidden()
                    assert page.locator("[data-live-params]").is_hidden()
                    screenshot(page, "controls-of-someone-elses-run")
                # The runs list says whose run it is, and offers Cancel on one's own runs only.
                page.goto("/jobs")
                row = page.locator(f'tr[data-job-id="{job["id"]}"]')
                row.locator(".job-sub").filter(has_text="by ann").wait_for()
                assert re.fullmatch(r"by ann · \d+ s ago", row.locator(".job-sub").inner_text().strip()), row.inner_text()
                page.wait_for_selector(f'tr[data-job-id="{job["id"]}"][data-actions="paused {str(mine).lower()}"]')
                assert row.get_by_role("button", name="Cancel").count() == (1 if mine else 0)
        with watched_tab(browser, server.url) as page:  # a teacher changes every run
            page.goto("/")
            page.evaluate("token => localStorage.setItem('playground-token', token)", tokens["tess"])
            page.goto("/jobs")
            page.locator(f'tr[data-job-id="{job["id"]}"]').get_by_role("button", name="Cancel").wait_for()
        ann.close()
    finally:
        server.stop()
