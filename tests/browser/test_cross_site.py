"""Another origin in a real Chromium: a page there cannot change anything on the server (issue 10,
item 10); and the Content-Security-Policy blocks nothing that ``/docs`` needs (item 13).

The other origin is a tiny ``http.server`` on another port of 127.0.0.1: to the browser that is
another origin of the same site (``Sec-Fetch-Site: same-site``, ``Origin: http://127.0.0.1:<port>``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.browser.helpers import UI_TIMEOUT_MS, create_job, wait_for_job, watched_tab

pytestmark = pytest.mark.browser

LONG = {"epochs": 100_000}  # a linear job that runs for many seconds


@contextmanager
def other_origin(html: str) -> Iterator[str]:
    """Serves ``html`` at ``/`` of a fresh port on 127.0.0.1; yields the page's URL."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_form_on_another_origin_cannot_cancel_a_job(browser, server, api):
    job = create_job(api, "linear", LONG, paused=True)  # it cannot end by itself while the other origin tries
    cancel = f"{server.url}/api/jobs/{job['id']}/cancel"
    html = f"""<!doctype html><title>Win a prize</title>
        <form method="post" action="{cancel}"><input type="hidden" name="x" value="1">
        <button id="prize">Claim</button></form>
        <button id="quiet" type="button">Quietly</button>
        <script>
          document.getElementById("quiet").onclick = () =>
            fetch("{cancel}", {{method: "POST", mode: "no-cors"}}).then(() => (document.title = "sent"));
        </script>"""
    with other_origin(html) as url, watched_tab(browser, url) as tab:
        tab.goto(url)
        # A script's request first: its answer is opaque to the page, the server's decision is not.
        with tab.expect_response(lambda r: r.url == cancel) as fetched:
            tab.click("#quiet")
        assert fetched.value.status == 403
        assert api.get(f"/api/jobs/{job['id']}").json()["status"] == "paused"
        # Then the form, as a person would submit it: the browser navigates to the server's answer.
        with tab.expect_response(lambda r: r.url == cancel) as submitted:
            tab.click("#prize")
        response = submitted.value
        assert response.status == 403
        request_headers = response.request.all_headers()
        assert request_headers["origin"] == url.rstrip("/")  # what the browser said, and was refused for
        assert "cross-site" in response.json()["detail"]
    assert api.get(f"/api/jobs/{job['id']}").json()["status"] == "paused"
    assert api.post(f"/api/jobs/{job['id']}/cancel").status_code == 202  # the server's own client may
    assert wait_for_job(api, job["id"])["status"] == "cancelled"


@contextmanager
def tab_under_csp(browser: Any, base_url: str) -> Iterator[Any]:
    """A watched tab that does not bypass the policy; fails when the browser reports a violation."""
    violations: list[str] = []
    with watched_tab(browser, base_url, bypass_csp=False) as tab:
        tab.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
        yield tab
        assert not tab.watch.external, f"the page reached outside the app: {tab.watch.external}"
    assert not violations, violations


def test_the_pages_run_under_the_content_security_policy(browser, server, api):
    jobs = [create_job(api, "linear", {"epochs": 200, "lr": lr}, seed=1) for lr in (0.01, 0.001)]
    for job in jobs:
        assert wait_for_job(api, job["id"])["status"] == "succeeded"
    ids = ",".join(job["id"] for job in jobs)
    with tab_under_csp(browser, server.url) as tab:
        tab.goto("/")
        tab.wait_for_selector("#train-form[data-ready=true]")
        tab.goto("/jobs")
        tab.wait_for_selector("[data-job-count]:not(:empty)")
        tab.goto(f"/jobs/{jobs[0]['id']}")
        tab.wait_for_selector("[data-loss-chart] canvas")
        tab.goto(f"/compare?ids={ids}")
        tab.wait_for_selector("#compare-view[data-ready=true]")
        # The colour swatches are style attributes, which the policy allows (and nothing else inline).
        swatch = tab.locator(".swatch").first
        assert swatch.evaluate("node => getComputedStyle(node).backgroundColor") not in ("", "rgba(0, 0, 0, 0)")


def test_docs_run_under_the_content_security_policy(browser, server):
    with tab_under_csp(browser, server.url) as tab:
        tab.goto("/docs")
        # Swagger UI has fetched /openapi.json and drawn the operations.
        tab.wait_for_selector(".opblock-summary-path", timeout=UI_TIMEOUT_MS)
        paths = tab.locator(".opblock-summary-path").all_inner_texts()
        assert any("cancel" in path for path in paths) and len(paths) >= 10, paths
