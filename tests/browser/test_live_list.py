"""The runs list, the header's counts and Compare's run picker follow GET /api/events (issue 13):
jobs made, run, paused, cancelled and deleted through the API show on the pages, and an idle page
repeats no request (its one EventSource stays open)."""

from __future__ import annotations

import time
from typing import Any

from tests.browser.helpers import (
    create_job,
    pause_job,
    wait_for_api_status,
    wait_for_job,
    wait_until_idle,
    watched_tab,
)

IDLE_S = 12
LONG_MLP = {"epochs": 100_000}  # minutes of work: running while the test looks, then paused
PAGE_SIZE = 25  # runs on a page of the runs list
PICKER_SIZE = 100  # runs in Compare's picker


def total_runs(api) -> int:
    return api.get("/api/jobs", params={"limit": 1}).json()["total"]


def record_requests(page) -> list[tuple[float, str]]:
    log: list[tuple[float, str]] = []
    page.on("request", lambda request: log.append((time.monotonic(), request.url)))
    return log


def api_requests(log: list[tuple[float, str]], since: float = 0.0) -> list[str]:
    return [url.split("//", 1)[1].split("/", 1)[1] for at, url in log if at >= since and "/api/" in url]


def assert_idle_page_repeats_nothing(page, log: list[tuple[float, str]]) -> None:
    quiet_from = time.monotonic()
    page.wait_for_timeout(IDLE_S * 1000)
    assert api_requests(log, quiet_from) == [], "an idle page made requests"
    streams = [url for url in api_requests(log) if url.startswith("api/events")]
    assert streams == ["api/events"], f"one EventSource, opened once: {streams}"


def status_of(page, job_id: str) -> Any:
    return page.locator(f'tr[data-job-id="{job_id}"] .badge')


def test_the_runs_list_and_header_follow_the_server_without_polling(page, api) -> None:
    wait_until_idle(api)
    log = record_requests(page)
    page.goto("/jobs")
    header = page.locator("#server-status")
    header.filter(has_text="0 running, 0 queued").wait_for()
    page.locator("[data-job-count]").filter(has_text="run").wait_for()

    long = create_job(api, "mlp", LONG_MLP, seed=1, name="live list long", paused=True)
    status_of(page, long["id"]).filter(has_text="paused").wait_for()
    try:
        assert api.post(f"/api/jobs/{long['id']}/resume").status_code == 202
        status_of(page, long["id"]).filter(has_text="running").wait_for()
        header.filter(has_text="1 running, 0 queued").wait_for()
        # its progress shows without a request
        page.locator(f'tr[data-job-id="{long["id"]}"] .job-result').filter(has_text="epoch").wait_for()
        pause_job(api, long["id"])
        status_of(page, long["id"]).filter(has_text="paused").wait_for()
        header.filter(has_text="0 running, 0 queued").wait_for()
    finally:
        api.post(f"/api/jobs/{long['id']}/cancel")
    status_of(page, long["id"]).filter(has_text="cancelled").wait_for()

    short = create_job(api, "linear", {"epochs": 200}, seed=1, name="live list short")
    wait_for_job(api, short["id"])
    status_of(page, short["id"]).filter(has_text="succeeded").wait_for()
    # A deleted row is taken off the page; the page reads the list again only to fill its place
    # when there are more runs than it shows (the session's server may hold runs of other tests).
    refills = 0
    for job in (short, long):
        refills += total_runs(api) > PAGE_SIZE
        assert api.delete(f"/api/jobs/{job['id']}").status_code == 204
        page.locator(f'tr[data-job-id="{job["id"]}"]').wait_for(state="detached")
        left = total_runs(api)
        page.locator("[data-job-count]").filter(has_text=f"of {left} run" if left else "No runs yet").wait_for()

    list_reads = [url for url in api_requests(log) if url.startswith("api/jobs")]
    assert len(list_reads) == 1 + refills, f"the list was read once, then kept by the events: {list_reads}"
    assert_idle_page_repeats_nothing(page, log)


def test_full_lists_show_a_new_run_first_and_fill_a_deleted_runs_place(page, api) -> None:
    # More runs than the runs list's page (25) and Compare's picker (100) show.
    wait_until_idle(api)
    filler = [
        create_job(api, "linear", {"epochs": 10}, seed=i, name=f"filler {i}", paused=True)["id"]
        for i in range(max(0, PICKER_SIZE + 1 - total_runs(api)))
    ]
    try:
        page.goto("/compare")
        picker = page.locator("[data-pick-list]")
        picker.and_(page.locator("[data-updated]")).wait_for()
        rows = picker.locator("li[data-job-id]")
        assert rows.count() == PICKER_SIZE
        oldest_shown = rows.last.get_attribute("data-job-id")
        newest = create_job(api, "linear", {"epochs": 10}, seed=1, name="newest of many", paused=True)
        filler.append(newest["id"])
        rows.first.filter(has_text="newest of many").wait_for()
        picker.locator(f'li[data-job-id="{oldest_shown}"]').wait_for(state="detached")
        assert rows.count() == PICKER_SIZE

        page.goto("/jobs")
        table = page.locator("tr[data-job-id]")
        table.first.filter(has_text="newest of many").wait_for()
        assert table.count() == PAGE_SIZE
        next_one = api.get("/api/jobs", params={"limit": 1, "offset": PAGE_SIZE}).json()["items"][0]["id"]
        assert api.delete(f"/api/jobs/{filler.pop()}").status_code == 204
        page.locator(f'tr[data-job-id="{newest["id"]}"]').wait_for(state="detached")
        page.locator(f'tr[data-job-id="{next_one}"]').wait_for()  # the next page's first run fills the place
        assert table.count() == PAGE_SIZE
    finally:
        for job_id in filler:
            api.delete(f"/api/jobs/{job_id}")


def test_compares_picker_and_header_follow_the_server_without_polling(page, api) -> None:
    wait_until_idle(api)
    log = record_requests(page)
    page.goto("/compare")
    header = page.locator("#server-status")
    header.filter(has_text="0 running, 0 queued").wait_for()
    picker = page.locator("[data-pick-list]")
    picker.and_(page.locator("[data-updated]")).wait_for()

    job = create_job(api, "mlp", LONG_MLP, seed=2, name="live picker", paused=True)
    item = picker.locator(f'li[data-job-id="{job["id"]}"]')
    item.filter(has_text="live picker").wait_for()
    item.locator(".badge", has_text="paused").wait_for()
    try:
        assert api.post(f"/api/jobs/{job['id']}/resume").status_code == 202
        item.locator(".badge", has_text="running").wait_for()
        header.filter(has_text="1 running, 0 queued").wait_for()
        pause_job(api, job["id"])
        item.locator(".badge", has_text="paused").wait_for()
    finally:
        api.post(f"/api/jobs/{job['id']}/cancel")
    wait_for_api_status(api, job["id"], "cancelled")
    item.locator(".badge", has_text="cancelled").wait_for()
    header.filter(has_text="0 running, 0 queued").wait_for()
    assert api.delete(f"/api/jobs/{job['id']}").status_code == 204
    item.wait_for(state="detached")

    assert_idle_page_repeats_nothing(page, log)


def test_after_a_server_restart_the_list_reads_itself_again_once(browser, server_factory) -> None:
    """The page's Last-Event-ID is from the server's previous run: the server answers ``reset``
    and the list is read again (one read), with what happened meanwhile."""
    srv = server_factory(workers=1)
    with watched_tab(browser, srv.url) as page:
        log = record_requests(page)
        page.goto("/jobs")
        page.locator("[data-job-count]").filter(has_text="run").wait_for()  # read after the stream is live
        with srv.client() as api:
            before = create_job(api, "linear", {}, name="before the restart", paused=True)
        page.locator(f'tr[data-job-id="{before["id"]}"]').wait_for()
        last_id = page.evaluate("import('/static/js/serverevents.js').then((m) => m.serverEvents.lastId)")
        assert last_id, "premise: the page has an event id to resume after"
        srv.restart()
        with srv.client() as api:
            after = create_job(api, "mlp", {}, name="after the restart", paused=True)
        page.locator(f'tr[data-job-id="{after["id"]}"]').wait_for(timeout=60_000)
        page.locator(f'tr[data-job-id="{before["id"]}"]').wait_for()
        list_reads = [url for url in api_requests(log) if url.startswith("api/jobs")]
        assert len(list_reads) == 2, f"read at the start and once after the reset: {list_reads}"
