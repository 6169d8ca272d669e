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

from tests.browser.helpers import watched_tab

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
    with watched_tab(browser, server.url) as tab:
        yield tab
    assert not tab.watch.external, f"the page reached outside the app: {tab.watch.external}"


@pytest.fixture
def phone(browser: Any, server: Any) -> Iterator[Any]:
    """A tab the size of a phone screen (390 x 844 CSS pixels, touch)."""
    phone_screen = {"width": 390, "height": 844}
    with watched_tab(browser, server.url, phone_screen, device_scale_factor=2, is_mobile=True, has_touch=True) as tab:
        yield tab
