"""Browser fixtures: a real Chromium (Debian's ``chromium``) driven by Playwright, against the
session's real server (``server`` in tests/conftest.py).

On a developer machine without Chromium the browser tests skip and say why; in CI (``CI=true``) a
missing browser is a failure, since ``.ci/run`` installs it. Playwright's own browser download
(``playwright install``) is never used: the system Chromium is the one under test.

Every page a test opens is watched: a JavaScript error, or a request that leaves the server's
origin (the pages must work without the internet), fails the test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.helpers import PageWatch

CHROMIUM = os.environ.get("PLAYGROUND_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# How long a test waits for what a user would see; the machine may be busy training.
UI_TIMEOUT_MS = 60_000


def _missing_browser(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run; .ci/run installs chromium)")
    pytest.skip(f"{reason}; the browser tests need it (apt-get install chromium)")


# Package scope, not session: Playwright's sync API keeps an asyncio loop running on this thread
# until it stops, and the tests after tests/browser call asyncio.run().
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing_browser("Playwright for Python is not installed")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _missing_browser(f"Chromium was not found at {CHROMIUM}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, server: Any) -> Iterator[Any]:
    """A fresh tab (own storage) on a laptop-sized screen; fails the test on script errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server.url)
    context.set_default_timeout(UI_TIMEOUT_MS)
    tab = context.new_page()
    watch = PageWatch(server.url)
    watch.attach(tab)
    tab.watch = watch
    yield tab
    context.close()
    assert not watch.errors, "\n".join(watch.errors)
    assert not watch.external, f"the page reached outside the app: {watch.external}"


@pytest.fixture
def phone(browser: Any, server: Any) -> Iterator[Any]:
    """A tab the size of a phone screen (390 x 844 CSS pixels, touch)."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True, base_url=server.url
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    tab = context.new_page()
    watch = PageWatch(server.url)
    watch.attach(tab)
    yield tab
    context.close()
    assert not watch.errors, "\n".join(watch.errors)

