"""Helpers of the browser tests: screenshots and jobs made through the API."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"


def screenshot(page: Any, name: str) -> Path:
    """Saves the whole page as test-artifacts/screenshots/<name>.png (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def create_job(api: httpx.Client, kind: str, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = api.post("/api/jobs", json={"kind": kind, "params": params, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def wait_for_job(api: httpx.Client, job_id: str, timeout: float = 180) -> dict[str, Any]:
    """Polls until the job has ended; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/api/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


def wait_for_api_status(api: httpx.Client, job_id: str, status: str, timeout: float = 180) -> dict[str, Any]:
    """Polls until the job has ``status`` (e.g. ``paused``, which ``wait_for_job`` takes for an end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/api/jobs/{job_id}").json()
        if job["status"] == status:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} is {job['status']} after {timeout} s, not {status}: {job}")


# No test races a job to its end with a click: a long job is held with pause as soon as it is made,
# moved on with step (which runs that much, short of the job's end, and pauses again by itself), and
# paused again before the page clicks Cancel. A paused job is never over by itself; Cancel ends it.


def wait_until_idle(api: httpx.Client, timeout: float = 300) -> None:
    """Until no job of the session's server runs or waits (the jobs of earlier tests have ended)."""
    deadline = time.monotonic() + timeout
    while True:
        health = api.get("/api/health").json()
        if health["running"] == 0 and health["queued"] == 0:
            return
        assert time.monotonic() < deadline, f"the server is still busy after {timeout} s: {health}"
        time.sleep(0.5)


def hold_job(api: httpx.Client, job_id: str) -> dict[str, Any]:
    """Pause a long job just made: a queued one at once, a running one at its next step boundary."""
    response = api.post(f"/api/jobs/{job_id}/pause")
    assert response.status_code == 202, f"premise: a long job just made is not over yet: {response.text}"
    return wait_for_api_status(api, job_id, "paused")


def step_job(api: httpx.Client, job_id: str, **amount: int) -> None:
    """Run a paused job on for ``steps=n`` or ``epochs=n``; it pauses again by itself after that."""
    response = api.post(f"/api/jobs/{job_id}/step", json=amount)
    assert response.status_code == 202, response.text


def pause_job(api: httpx.Client, job_id: str) -> dict[str, Any]:
    """Pause a job that runs a step; a 409 says it has paused by itself already (or is about to)."""
    response = api.post(f"/api/jobs/{job_id}/pause")
    assert response.status_code in (202, 409), response.text
    return wait_for_api_status(api, job_id, "paused")


def metric_rows(api: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    table = api.get(f"/api/jobs/{job_id}/metrics", params={"format": "json"}).json()
    return [dict(zip(table["columns"], row)) for row in table["rows"]]


class CuttableProxy:
    """A TCP proxy in front of the server whose connections a test can cut, as a network would.

    ``cut()`` closes every open connection at once (the browser sees its streams end mid-way);
    new connections are accepted as before. ``requests`` keeps the head of each request that went
    through, so a test can see what a reconnecting browser sent (e.g. ``Last-Event-ID``).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[str] = []
        self._open: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._open.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_browser: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if from_browser and chunk[:4] in (b"GET ", b"POST", b"DELE", b"PUT "):
                    self.requests.append(chunk.split(b"\r\n\r\n", 1)[0].decode("latin-1"))
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> int:
        """Closes every open connection; returns how many there were."""
        with self._lock:
            pairs, self._open = self._open, []
        for pair in pairs:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
        return len(pairs)

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        self.cut()


class PageWatch:
    """What went wrong on a page: script errors, failed requests, requests to other origins."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.errors: list[str] = []
        self.external: list[str] = []

    def attach(self, page: Any) -> None:
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on(
            "console",
            lambda msg: self.errors.append(f"console error: {msg.text}")
            if msg.type == "error" and not _expected_console_error(msg.text)
            else None,
        )
        page.on("request", self._on_request)

    def _on_request(self, request: Any) -> None:
        url = request.url
        if not (url.startswith(self.origin) or url.startswith(("data:", "blob:", "about:"))):
            self.external.append(url)


def _expected_console_error(text: str) -> bool:
    # Chromium logs every non-2xx answer as a console error; the tests provoke some on purpose
    # (a 422 from the form, an SSE connection dropped by the test). Script errors are not these.
    return "Failed to load resource" in text or "EventSource" in text


UNLABELLED_JS = """() => [...document.querySelectorAll("input, select, textarea")]
    .filter((node) => node.type !== "hidden" && !node.closest("dialog:not([open])"))
    .filter((node) => !(node.labels && node.labels.length) && !node.getAttribute("aria-label")
                      && !node.getAttribute("aria-labelledby"))
    .map((node) => node.outerHTML.slice(0, 120))"""


def unlabelled_inputs(page: Any) -> list[str]:
    """The form controls on the page that have no label (a screen reader would not name them)."""
    return page.evaluate(UNLABELLED_JS)


# How long a test waits for what a user would see; the machine may be busy training.
UI_TIMEOUT_MS = 60_000
LAPTOP = {"width": 1280, "height": 900}


@contextmanager
def watched_tab(browser: Any, base_url: str, viewport: dict[str, int] = LAPTOP, **options: Any) -> Iterator[Any]:
    """A tab in a fresh browser context (its own storage) on ``base_url``; when the block ends
    without an error of its own, a script error on the page fails it. ``tab.watch`` has the rest.

    The pages' Content-Security-Policy forbids evaluating strings, which Playwright's
    ``wait_for_function("...")`` does in the page: tabs bypass the policy unless a test passes
    ``bypass_csp=False`` (tests/browser/test_cross_site.py checks the pages under it)."""
    options.setdefault("bypass_csp", True)
    context = browser.new_context(viewport=viewport, base_url=base_url, **options)
    context.set_default_timeout(UI_TIMEOUT_MS)
    tab = context.new_page()
    tab.watch = PageWatch(base_url)
    tab.watch.attach(tab)
    try:
        yield tab
    finally:
        context.close()
    assert not tab.watch.errors, "\n".join(tab.watch.errors)
