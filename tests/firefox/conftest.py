"""A real Firefox (Debian's ``firefox-esr``), driven over Marionette, Firefox's own remote protocol.

Playwright's Firefox is a patched build from Playwright's download server, not the Firefox people
use; Mozilla's ``marionette_driver`` drives the stock browser directly (no geckodriver needed). As
with Chromium, a missing browser skips the tests on a developer machine and fails them in CI
(``CI=true``), where ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FIREFOX = os.environ.get("PLAYGROUND_FIREFOX", "/usr/bin/firefox-esr")
UI_TIMEOUT_S = 60.0  # how long a test waits for what a user would see; the machine may be busy


def _missing_browser(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the Firefox tests must run; .ci/run installs firefox-esr)")
    pytest.skip(f"{reason}; the Firefox tests need it (apt-get install firefox-esr)")


class Firefox:
    """The few things the tests do with the browser, over a Marionette session."""

    def __init__(self, client: Any, base_url: str) -> None:
        self.client = client
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.client.navigate(self.base_url + path)

    def js(self, script: str, *args: Any) -> Any:
        # sandbox=None: the page's own globals (window.playgroundJob), not Marionette's wrapped view.
        return self.client.execute_script(script, script_args=list(args), sandbox=None)

    def wait_for(self, script: str, *args: Any, timeout: float = UI_TIMEOUT_S) -> Any:
        """Polls ``script`` (a function body that returns a value) until the value is truthy."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(script, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"Firefox: waited {timeout:.0f} s for `{script}`; on {self.client.get_url()}")
            time.sleep(0.1)

    def find(self, css: str) -> Any:
        from marionette_driver.by import By

        return self.client.find_element(By.CSS_SELECTOR, css)

    def screenshot(self, name: str) -> None:
        folder = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"firefox-{name}.png").write_bytes(self.client.screenshot(format="binary", full=True))


@pytest.fixture(scope="package")
def firefox_session(tmp_path_factory) -> Iterator[Any]:
    try:
        from marionette_driver.marionette import Marionette
    except ImportError:
        _missing_browser("marionette_driver is not installed")
    if not (Path(FIREFOX).is_file() or shutil.which(FIREFOX)):
        _missing_browser(f"Firefox was not found at {FIREFOX}")
    log = tmp_path_factory.mktemp("firefox") / "gecko.log"
    # A busy machine (the suite runs on several workers) can take minutes to start Firefox.
    client = Marionette(bin=FIREFOX, headless=True, startup_timeout=300, gecko_log=str(log))
    client.start_session()
    client.timeout.page_load = UI_TIMEOUT_S
    try:
        yield client
    finally:
        client.cleanup()


@pytest.fixture
def firefox(firefox_session: Any, server: Any) -> Iterator[Firefox]:
    browser = Firefox(firefox_session, server.url)
    yield browser
    browser.open("/")  # leave no stream open into the next test
    browser.js("localStorage.clear()")

