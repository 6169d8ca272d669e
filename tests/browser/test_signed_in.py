"""The page header says who is signed in (GET /api/me), on a server with users (issue 16)."""

from __future__ import annotations

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
