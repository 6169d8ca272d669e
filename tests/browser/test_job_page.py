"""The live view of a run in Chromium: streaming curves, cancel, divergence and retry, reconnects,
smoothing, downsampled histories, what the model learned, predictions."""

from __future__ import annotations

import math
import re
import time

import pytest

from tests.browser.helpers import (
    CuttableProxy,
    create_job,
    metric_rows,
    pause_job,
    screenshot,
    step_job,
    unlabelled_inputs,
    wait_for_api_status,
    wait_for_job,
    watched_tab,
)

pytestmark = pytest.mark.browser

JOB_URL = re.compile(r"/jobs/([0-9a-f]{32})$")


def open_job(page, job_id: str, query: str = ""):
    page.goto(f"/jobs/{job_id}{query}")
    page.wait_for_selector("#job-view[data-ready=true]")


def chart_points(page) -> int:
    return int(page.locator("[data-loss-chart]").get_attribute("data-points") or 0)


def wait_for_status(page, status: str, timeout_ms: int = 120_000) -> None:
    page.wait_for_selector(f"#job-view[data-status={status}]", timeout=timeout_ms)


def store_steps(page) -> list[int]:
    return page.evaluate("window.playgroundJob.store.steps.slice()")


def least_squares(points: list[tuple[float, float]]) -> tuple[float, float]:
    n = len(points)
    su = sum(u for u, _ in points)
    sy = sum(y for _, y in points)
    suu = sum(u * u for u, _ in points)
    suy = sum(u * y for u, y in points)
    det = suu * n - su * su
    return (suy * n - su * sy) / det, (suu * sy - su * suy) / det


def set_smoothing(page, value: float) -> None:
    page.locator("[data-smoothing]").evaluate(
        "(node, value) => { node.value = String(value); node.dispatchEvent(new Event('input', {bubbles: true})); }", value
    )


def test_a_linear_run_from_the_form_streams_its_curve_and_succeeds(page, api):
    page.goto("/?kind=linear&val_fraction=0.2")
    page.wait_for_selector("#train-form[data-ready=true]")
    page.locator("[name=epochs]").fill("3000")
    page.locator("[name=seed]").fill("3")
    page.locator("[name=name]").fill("from the form")
    page.get_by_role("button", name="Train").click()
    page.wait_for_url(JOB_URL)
    job_id = JOB_URL.search(page.url).group(1)
    page.wait_for_selector("#job-view[data-ready=true]")
    page.wait_for_function("Number(document.querySelector('[data-loss-chart]').dataset.points) > 0")
    wait_for_status(page, "succeeded")
    page.wait_for_function("Number(document.querySelector('[data-loss-chart]').dataset.points) === 3000")

    job = api.get(f"/api/jobs/{job_id}").json()
    assert job["name"] == "from the form" and job["seed"] == 3 and job["params"]["epochs"] == 3000
    assert store_steps(page) == list(range(1, 3001)), "every epoch once, in order"
    # Both curves are on the chart, train and validation, with the server's values.
    rows = metric_rows(api, job_id)
    train = page.evaluate("window.playgroundJob.store.train.slice()")
    val = page.evaluate("window.playgroundJob.store.val.slice()")
    assert train == pytest.approx([r["train_loss"] for r in rows])
    assert val == pytest.approx([r["val_loss"] for r in rows])
    legend = page.locator("[data-loss-chart] .u-legend").inner_text()
    assert "train loss" in legend and "val loss" in legend
    assert "epoch 3000 of 3000" in page.locator("[data-progress-text]").inner_text()

    # What it learned: the data with the fitted line, and the loss surface with the whole path.
    fit = page.locator("[data-fit-chart]")
    fit.wait_for(state="visible")
    assert int(fit.get_attribute("data-points")) == len(job["result"]["train_points"]) + len(job["result"]["val_points"])
    assert page.locator("[data-surface]").get_attribute("data-path-points") == "3000"
    # The surface's minimum is the least-squares line through the training points (model units).
    w_min, b_min = least_squares([(job["params"]["input_scale"] * x, y) for x, y in job["result"]["train_points"]])
    readout = page.locator("[data-surface-readout]").inner_text()
    shown = re.search(r"minimum: w = (\S+), b = (\S+),", readout)
    assert float(shown.group(1)) == pytest.approx(w_min, rel=1e-3)
    assert float(shown.group(2)) == pytest.approx(b_min, rel=1e-3)

    # Try it: a number in, the model's prediction out, the same as the API's.
    page.locator("#predict-input").fill("80")
    page.get_by_role("button", name="Predict").click()
    page.wait_for_function("document.querySelector('#predict-output').dataset.value !== undefined")
    expected = api.post(f"/api/jobs/{job_id}/predict", json={"inputs": [80]}).json()["outputs"][0]
    assert float(page.locator("#predict-output").get_attribute("data-value")) == pytest.approx(expected)

    # Downloads point at the API.
    links = page.locator("[data-downloads] a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert f"/api/jobs/{job_id}/metrics?format=csv" in hrefs
    assert f"/api/jobs/{job_id}/metrics?format=json" in hrefs
    assert f"/api/jobs/{job_id}/model" in hrefs
    with page.expect_download() as download:
        page.get_by_role("link", name="Metrics (CSV)").click()
    assert download.value.path().read_text().splitlines()[0].startswith("step,")
    screenshot(page, "job-linear")
    assert unlabelled_inputs(page) == []


def test_points_arrive_live_and_cancel_stops_the_run(page, api):
    # Held, so that the page's Cancel lands on a run that is not over (created paused): opened mid-run
    # at step 3000, then stepped on (it pauses again by itself long before its end), paused, cancelled.
    job = create_job(api, "linear", {"epochs": 100_000, "lr": 0.001}, seed=1, name="to cancel", paused=True)
    step_job(api, job["id"], steps=3000)
    wait_for_api_status(api, job["id"], "paused")
    open_job(page, job["id"])
    # The history came from /metrics; the stream starts after its last event instead of replaying it.
    assert page.evaluate("window.playgroundJob.stream.startedAfter") > 3
    page.wait_for_function("Number(document.querySelector('[data-loss-chart]').dataset.points) > 0")
    first = chart_points(page)
    assert first >= 3000
    step_job(api, job["id"], steps=90_000)
    page.wait_for_function(f"Number(document.querySelector('[data-loss-chart]').dataset.points) > {first}")
    assert page.locator("[data-connection]").get_attribute("data-state") == "live"
    # Not over: stepped short of its end, the run is running or has paused itself (no race with the clock).
    assert page.locator("#job-view").get_attribute("data-status") in ("running", "paused")
    # The book's 11 points and the loss surface are drawn while the run goes, not only at the end.
    assert page.locator("[data-fit-chart]").get_attribute("data-points") == "11"
    assert page.locator("[data-fit-placeholder]").is_hidden()
    # The surface over the book's points: its minimum is the book's answer, w=5.3671, b=-17.3012.
    page.wait_for_function("document.querySelector('[data-surface-readout]').textContent.includes('minimum')")
    shown = re.search(r"minimum: w = (\S+), b = (\S+),", page.locator("[data-surface-readout]").inner_text())
    assert (float(shown.group(1)), float(shown.group(2))) == (pytest.approx(5.3671, rel=1e-3), pytest.approx(-17.3012, rel=1e-3))  # 4 digits shown
    # The window takes in the path's start (w=1, b=0) as well as the minimum, though it was framed
    # when the points came, before the path.
    frames_both = "([w0, w1, b0, b1]) => w0 < 1 && w1 > 5.37 && b0 < -17.3 && b1 > 0"
    page.wait_for_function(
        f"({frames_both})((document.querySelector('[data-surface]').dataset.view || 'NaN').split(' ').map(Number))",
        timeout=10_000,
    )
    screenshot(page, "job-running")

    pause_job(api, job["id"])
    wait_for_status(page, "paused", timeout_ms=30_000)
    page.get_by_role("button", name="Cancel", exact=True).click()
    wait_for_status(page, "cancelled", timeout_ms=30_000)
    assert page.locator("[data-cancel]").is_hidden()
    # The chart holds exactly the points the server kept: nothing missed, nothing twice.
    steps = [r["step"] for r in metric_rows(api, job["id"])]
    assert 0 < len(steps) < 100_000
    page.wait_for_function(f"window.playgroundJob.store.steps.length === {len(steps)}")
    assert store_steps(page) == steps


# A job's stream, not the server-wide one (/api/events) that the header also keeps open.
JOB_STREAM = re.compile(r"/api/jobs/[^/ ]+/events")


def is_resume(request_head: str) -> bool:
    first_line, _, headers = request_head.partition("\r\n")
    return JOB_STREAM.search(first_line) is not None and "last-event-id:" in headers.lower()


def test_a_cut_connection_resumes_with_last_event_id_and_no_gap(browser, server, api):
    """The network drops every connection mid-run; EventSource reconnects by itself, sends
    Last-Event-ID, and the curve has every epoch exactly once. Then the page's own reconnect (a new
    EventSource after the browser gave up) also leaves no gap and no duplicate."""
    proxy = CuttableProxy(server.port)
    try:
        with watched_tab(browser, proxy.url) as page:
            # Held (created paused), so that the cuts land on a run that is not over: stepped to 5000
            # before the first cut, to 10,000 while cut off, resumed to its end after the second.
            epochs = 20_000
            job = create_job(api, "linear", {"epochs": epochs, "lr": 0.001}, seed=2, name="hiccups", paused=True)
            open_job(page, job["id"])
            # Cut once the stream itself has delivered events (the first points may come from the
            # metrics history), so that there is a last event id to resume after.
            step_job(api, job["id"], steps=5000)
            page.wait_for_function("window.playgroundJob.stream && window.playgroundJob.stream.received > 5")
            held = wait_for_api_status(api, job["id"], "paused")
            page.wait_for_function(f"window.playgroundJob.store.steps.length === {held['progress']['step']}")
            assert proxy.cut() >= 1
            step_job(api, job["id"], steps=5000)  # the points the page misses while it is cut off
            page.wait_for_function("window.playgroundJob.stream.reconnects >= 1")
            # EventSource's own retry (after about 3 s) asks to resume after the last event it had.
            deadline = time.monotonic() + 30
            while not any(is_resume(r) for r in proxy.requests) and time.monotonic() < deadline:
                page.wait_for_timeout(200)
            states = page.evaluate("window.playgroundJob.stream.states")
            assert any(is_resume(r) for r in proxy.requests), (states, [r for r in proxy.requests if JOB_STREAM.search(r)])
            # The first connection started after the history the page had loaded, not from event 1.
            first_events = next(r for r in proxy.requests if JOB_STREAM.search(r.partition("\r\n")[0]))
            assert re.search(r"/events\?last_event_id=[1-9]", first_events), first_events
            held = wait_for_api_status(api, job["id"], "paused")
            page.wait_for_function(f"window.playgroundJob.store.steps.length === {held['progress']['step']}")
            page.evaluate("window.playgroundJob.stream.drop()")
            assert api.post(f"/api/jobs/{job['id']}/resume").status_code == 202  # runs while it reopens
            wait_for_status(page, "succeeded", timeout_ms=240_000)
            page.wait_for_function(f"window.playgroundJob.store.steps.length === {epochs}")
            assert store_steps(page) == list(range(1, epochs + 1))
    finally:
        proxy.close()


def test_a_diverged_run_shows_its_first_steps_and_retries_with_an_lr_that_converges(page, api):
    page.goto("/?kind=linear&input_scale=1&epochs=2000")
    page.wait_for_selector("#train-form[data-ready=true]")
    page.get_by_role("button", name="Train").click()
    page.wait_for_url(JOB_URL)
    job_id = JOB_URL.search(page.url).group(1)
    page.wait_for_selector("#job-view[data-ready=true]")
    wait_for_status(page, "diverged")
    problem = page.locator("[data-problem]")
    problem.wait_for(state="visible")
    job = api.get(f"/api/jobs/{job_id}").json()
    assert job["error"] in problem.inner_text(), "the server's reason is shown"
    assert "learning rate" in problem.inner_text()
    assert page.locator("[data-log]").is_checked(), "a diverged loss is shown on a log axis"

    # How it blew up: w, b and the loss at the first steps and the last finite ones.
    rows = metric_rows(api, job_id)
    table = page.locator("[data-first-steps]")
    table.wait_for(state="visible")
    cells = [[c.strip() for c in row.locator("td").all_inner_texts()] for row in table.locator("tr").all()]
    assert cells[0][:5] == ["1", "2", "3", "4", "5"] and cells[0][-1] == f"{rows[-1]['step']:,}"
    assert cells[1][0] == "1" and cells[2][0] == "0", "the book's start: w = 1, b = 0"
    assert float(cells[1][1]) == pytest.approx(rows[1]["w"], rel=1e-3), "w after the first step"
    assert float(cells[3][-1]) == pytest.approx(rows[-1]["train_loss"], rel=1e-3)
    screenshot(page, "job-diverged")

    # The first retry converges: a round lr under 2 / the largest eigenvalue of the Hessian (3.4e-4
    # on the raw readings); a tenth of the book's 1e-2 (1e-3) would diverge too, so it is not offered.
    assert job["result"]["stable_lr"] == pytest.approx(3.4e-4, rel=0.01)
    buttons = page.locator("[data-retry-buttons] button").all_inner_texts()
    assert buttons[0] == "Retry with lr = 0.0003 (stable below 0.00034)"
    assert not any("÷ 10" in b for b in buttons)
    page.get_by_role("button", name=re.compile(r"Retry with lr = 0.0003")).click()
    page.wait_for_url(lambda url: JOB_URL.search(url) is not None and job_id not in url)
    retry_id = JOB_URL.search(page.url).group(1)
    retry = api.get(f"/api/jobs/{retry_id}").json()
    assert retry["params"]["lr"] == 3e-4
    assert {k: v for k, v in retry["params"].items() if k != "lr"} == {k: v for k, v in job["params"].items() if k != "lr"}
    assert retry["seed"] == job["seed"]
    page.wait_for_selector("#job-view[data-ready=true]")
    wait_for_status(page, "succeeded")
    assert page.locator("[data-problem]").is_hidden()

    # The other way out: scale the inputs as the book does.
    open_job(page, job_id)
    page.get_by_role("button", name=re.compile(r"Retry with input scaling")).click()
    page.wait_for_url(lambda url: JOB_URL.search(url) is not None and job_id not in url and retry_id not in url)
    scaled_id = JOB_URL.search(page.url).group(1)
    page.wait_for_selector("#job-view[data-ready=true]")
    wait_for_status(page, "succeeded")
    assert api.get(f"/api/jobs/{scaled_id}").json()["params"]["input_scale"] == 0.1


def test_a_diverged_network_offers_a_tenth_of_its_lr(page, api):
    job = create_job(api, "mlp", {"optimizer": "sgd", "lr": 1, "input_scale": 1, "epochs": 500}, seed=1)
    done = wait_for_job(api, job["id"])
    assert done["status"] == "diverged", f"premise: sgd with lr 1 on the raw readings diverges: {done['status']}"
    open_job(page, job["id"])
    page.locator("[data-problem]").wait_for(state="visible")
    buttons = page.locator("[data-retry-buttons] button").all_inner_texts()
    assert buttons[0] == "Retry with lr ÷ 10 (lr = 0.1)", "no stable bound for a network: the plain retry first"
    assert page.locator("[data-first-steps]").is_hidden(), "no (w, b) to show"


def test_smoothing_is_a_debiased_ema_of_the_full_resolution_points(page, api):
    job = create_job(api, "linear", {"epochs": 400, "val_fraction": 0.3}, seed=4)
    wait_for_job(api, job["id"])
    open_job(page, job["id"])
    set_smoothing(page, 0.9)
    legend = page.locator("[data-loss-chart] .u-legend")
    legend.get_by_text("train (smoothed)").wait_for()
    smoothed = page.evaluate("window.playgroundJob.store.smoothTrain.slice()")
    losses = [r["train_loss"] for r in metric_rows(api, job["id"])]
    expected, ema = [], 0.0
    for n, loss in enumerate(losses, start=1):
        ema = 0.9 * ema + 0.1 * loss
        expected.append(ema / (1 - 0.9**n))
    assert smoothed == pytest.approx(expected, rel=1e-9)
    assert smoothed[0] == pytest.approx(losses[0]), "debiased: the first value is not pulled to 0"


def test_a_long_history_is_downsampled_and_says_so(page, api):
    job = create_job(api, "linear", {"epochs": 2000}, seed=5)
    wait_for_job(api, job["id"])
    open_job(page, job["id"], "?history_limit=300")  # as if 2000 points were a long run
    note = page.locator("[data-downsampled]")
    note.wait_for(state="visible")
    assert "2,000" in note.inner_text() and "downsampled" in note.inner_text()
    points = chart_points(page)
    assert 0 < points <= 300
    # Smoothing is not computed over thinned-out points.
    set_smoothing(page, 0.5)
    assert all(v is None for v in page.evaluate("window.playgroundJob.store.smoothTrain.slice()"))
    note.get_by_role("button", name="Load every point").click()
    page.wait_for_function("Number(document.querySelector('[data-loss-chart]').dataset.points) === 2000")
    assert note.is_hidden()
    assert None not in page.evaluate("window.playgroundJob.store.smoothTrain.slice()")


def test_an_mlp_run_shows_the_networks_curve_and_predicts(page, api):
    job = create_job(api, "mlp", {"epochs": 300, "optimizer": "adam", "lr": 0.01}, seed=1, name="small net")
    finished = wait_for_job(api, job["id"])
    assert finished["status"] == "succeeded", finished["error"]
    open_job(page, job["id"])
    fit = page.locator("[data-fit-chart]")
    fit.wait_for(state="visible")
    result = finished["result"]
    assert int(fit.get_attribute("data-points")) == len(result["train_points"]) + len(result["val_points"]) + len(result["curve"])
    assert "network output" in fit.locator(".u-legend").inner_text()
    page.locator("#predict-input").fill("60")
    page.get_by_role("button", name="Predict").click()
    page.wait_for_function("document.querySelector('#predict-output').dataset.value !== undefined")
    expected = api.post(f"/api/jobs/{job['id']}/predict", json={"inputs": [60]}).json()["outputs"][0]
    assert float(page.locator("#predict-output").get_attribute("data-value")) == pytest.approx(expected)
    screenshot(page, "job-mlp")


def test_an_mlp_run_shows_its_curve_bending_to_the_data_while_it_trains(page, api):
    # Held (created paused): opened at epoch 2500 (a picture at 2000), stepped on, paused, cancelled.
    job = create_job(api, "mlp", {"epochs": 100_000}, seed=2, name="watch it bend", paused=True)
    step_job(api, job["id"], steps=2500)
    wait_for_api_status(api, job["id"], "paused")
    open_job(page, job["id"])
    caption = page.locator("[data-fit-caption]")
    # The book's 11 points (the split is known at the end: "data points" until then), and the
    # newest picture of the network, which came with the history, before any live event.
    fit = page.locator("[data-fit-chart]")
    fit.wait_for(state="visible")
    assert "data points" in fit.locator(".u-legend").inner_text()
    first = re.search(r"at epoch ([0-9,]+)", caption.inner_text()).group(1)
    assert int(first.replace(",", "")) >= 2000
    assert int(fit.get_attribute("data-points")) == 11 + 64  # the points and the network's 64-point curve
    step_job(api, job["id"], steps=90_000)
    page.wait_for_function(f"!document.querySelector('[data-fit-caption]').textContent.includes('epoch {first} ')")
    # Not over: stepped short of its end, the run is running or has paused itself (no race with the clock).
    assert page.locator("#job-view").get_attribute("data-status") in ("running", "paused")
    screenshot(page, "job-mlp-live")
    pause_job(api, job["id"])
    wait_for_status(page, "paused", timeout_ms=30_000)
    page.get_by_role("button", name="Cancel", exact=True).click()
    wait_for_status(page, "cancelled", timeout_ms=30_000)


def test_a_missing_run_says_so(page):
    page.goto(f"/jobs/{'0' * 32}")
    page.get_by_role("heading", name="Run not found").wait_for()


def test_the_job_page_fits_a_phone_screen(phone, api):
    job = create_job(api, "linear", {"epochs": 200}, seed=1)
    wait_for_job(api, job["id"])
    phone.goto(f"/jobs/{job['id']}")
    phone.wait_for_selector("#job-view[data-ready=true]")
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the phone's screen"
    chart = phone.locator("[data-loss-chart] canvas").first.bounding_box()
    assert chart["width"] <= 390
    assert not math.isnan(chart["height"])
    screenshot(phone, "job-phone")
