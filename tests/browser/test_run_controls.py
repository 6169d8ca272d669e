"""The run page as a playground, in Chromium against a real server: pause, step, change a live
parameter (marked on the chart), resume, and fork from a clicked point (issue 12, first slice).

Nothing races the clock: the mlp that the page pauses is 100,000 epochs long and is checked to be
running, far from its end, just before the click; every later command lands on a paused job.
"""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from tests.browser.helpers import (
    create_job,
    metric_rows,
    pause_job,
    screenshot,
    step_job,
    wait_for_api_status,
    wait_for_job,
    watched_tab,
)

pytestmark = pytest.mark.browser

JOB_URL = re.compile(r"/jobs/([0-9a-f]{32})$")


def open_job(page, job_id: str) -> None:
    page.goto(f"/jobs/{job_id}")
    page.wait_for_selector("#job-view[data-ready=true]")


def wait_for_status(page, status: str, timeout_ms: int = 60_000) -> None:
    try:
        page.wait_for_selector(f"#job-view[data-status={status}]", timeout=timeout_ms)
    except Exception as exc:
        # What the page knew when it gave up: its status, the controls' message, its stream's states.
        seen = page.evaluate(
            """() => ({
                status: document.querySelector('#job-view')?.dataset.status,
                message: document.querySelector('[data-control-message]')?.textContent,
                stream: window.playgroundJob?.stream?.states,
                received: window.playgroundJob?.stream?.received,
            })"""
        )
        raise AssertionError(f"the page never showed {status!r}: {seen}") from exc


def wait_for_points(page, n: int) -> None:
    page.wait_for_function(f"window.playgroundJob.store.steps.length === {n}")
    page.wait_for_function(f"Number(document.querySelector('[data-loss-chart]').dataset.points) === {n}")


def chart_markers(page) -> list[dict]:
    return json.loads(page.locator("[data-loss-chart]").get_attribute("data-markers") or "[]")


def next_event(api: httpx.Client, job_id: str, event_type: str, after: int, timeout: float = 30) -> dict:
    """The first ``event_type`` event after event id ``after`` (a paused job's stream stays open)."""
    deadline = time.monotonic() + timeout
    url = f"/api/jobs/{job_id}/events?last_event_id={after}"
    with api.stream("GET", url, timeout=httpx.Timeout(timeout)) as response:
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == event_type:
                return json.loads(line[6:])
            if time.monotonic() > deadline:
                break
    raise AssertionError(f"no {event_type} event after {after} within {timeout} s")


def test_pause_step_change_lr_and_resume_an_mlp_from_its_page(page, api):
    job = create_job(api, "mlp", {"epochs": 100_000}, seed=3, name="play with me")
    job_id = job["id"]
    open_job(page, job_id)
    wait_for_status(page, "running")
    page.wait_for_function("window.playgroundJob.store.steps.length > 0")
    screenshot(page, "controls-running")
    steps = []
    page.on("request", lambda r: steps.append(r.url) if r.method == "POST" and r.url.endswith("/step") else None)

    # Pause: the premise is a run that is going, far from its end, as the click lands.
    now = api.get(f"/api/jobs/{job_id}").json()
    assert now["status"] == "running" and (now["progress"]["step"] or 0) < 80_000, now["progress"]
    assert page.get_by_role("button", name="Resume", exact=True).is_disabled()
    assert page.get_by_role("button", name="Step", exact=True).is_disabled()
    page.get_by_role("button", name="Pause", exact=True).click()
    wait_for_status(page, "paused")
    paused = wait_for_api_status(api, job_id, "paused")
    n0 = paused["progress"]["step"]
    assert 0 < n0 < 100_000
    wait_for_points(page, n0)
    assert page.evaluate("window.playgroundJob.stream.closed") is False, "a paused job's stream stays open"
    assert page.get_by_role("button", name="Pause", exact=True).is_disabled()
    assert f"paused at epoch {n0} of 100000" in page.locator("[data-progress-text]").inner_text()
    screenshot(page, "controls-paused")

    # Step with the button, then with → (which does nothing while typing in a field).
    page.get_by_role("button", name="Step", exact=True).click()
    wait_for_points(page, n0 + 1)
    wait_for_status(page, "paused")
    page.wait_for_selector("[data-step]:not([disabled])")
    page.locator("[data-step-count]").press("ArrowRight")
    page.locator("#live-lr").press("ArrowRight")
    page.locator("#live-lr").press("Space")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("ArrowRight")
    wait_for_points(page, n0 + 2)
    wait_for_status(page, "paused")
    page.wait_for_selector("[data-step]:not([disabled])")
    assert len(steps) == 2, f"one step per click or →, none from keys typed into a field: {steps}"
    rows = metric_rows(api, job_id)
    assert [r["step"] for r in rows] == list(range(1, n0 + 3)), "exactly two more points, in /metrics too"
    assert page.evaluate("window.playgroundJob.store.steps.slice(-3)") == [n0, n0 + 1, n0 + 2]
    screenshot(page, "controls-stepped")

    # A new learning rate: PATCHed, applied after the current step, marked on the chart.
    last_event = api.get(f"/api/jobs/{job_id}/metrics").json()["last_event_id"]
    lr = page.locator("#live-lr")
    lr.fill("0.003")
    lr.press("Enter")
    page.wait_for_function("JSON.parse(document.querySelector('[data-loss-chart]').dataset.markers || '[]').length === 1")
    assert chart_markers(page) == [{"x": n0 + 2, "label": "lr 0.003"}]
    control = next_event(api, job_id, "control", after=last_event)
    assert control == {"step": n0 + 2, "params": {"lr": 0.003}}
    changed = api.get(f"/api/jobs/{job_id}").json()
    assert changed["params"]["lr"] == 0.003
    assert changed["changes"] == [{"step": n0 + 2, "params": {"lr": 0.003}, "before": {"lr": 0.001}}]
    assert "lr = 0.003 from step" in page.locator("[data-control-message]").inner_text()
    screenshot(page, "controls-lr-changed")

    # A refused value is said by its field, and nothing changes.
    lr.fill("50")
    lr.press("Enter")
    error = page.locator("#live-lr-error")
    error.wait_for(state="visible")
    assert "less than or equal to 10" in error.inner_text()
    assert api.get(f"/api/jobs/{job_id}").json()["params"]["lr"] == 0.003
    assert lr.input_value() == "0.003"

    # The markers come back on reload, from the job's changes.
    open_job(page, job_id)
    assert chart_markers(page) == [{"x": n0 + 2, "label": "lr 0.003"}]
    assert page.locator("#live-lr").input_value() == "0.003"

    # Resume (here: Space) goes on on the same page, with the next event ids; a change while it
    # runs comes back as a `control` event at the step where it took effect.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("Space")
    wait_for_status(page, "running")
    now = api.get(f"/api/jobs/{job_id}").json()
    assert now["status"] == "running" and (now["progress"]["step"] or 0) < 80_000, now["progress"]
    end = (now["progress"]["step"] or n0) + 3000
    epochs = page.locator("#live-epochs")
    epochs.fill(str(end))
    epochs.press("Enter")
    page.wait_for_function("window.playgroundJob.changesReceived.length === 1")
    live = page.evaluate("window.playgroundJob.changesReceived[0]")
    assert live["params"] == {"epochs": end} and n0 + 2 < live["step"] < end
    assert chart_markers(page) == [{"x": n0 + 2, "label": "lr 0.003"}, {"x": live["step"], "label": f"epochs {end}"}]
    wait_for_status(page, "succeeded", timeout_ms=300_000)  # 3000 epochs: long on a busy machine
    wait_for_points(page, end)
    assert page.evaluate("window.playgroundJob.store.steps.slice()") == [r["step"] for r in metric_rows(api, job_id)]
    assert page.locator("[data-cancel]").is_hidden()
    assert page.get_by_role("button", name="Train longer…").is_visible()
    screenshot(page, "controls-resumed-to-the-end")


def test_fork_from_a_clicked_point_draws_the_parent_curve_on_the_childs_page(page, api):
    # A linear run with one live change (lr and epochs at step 500), made through the API.
    parent = create_job(api, "linear", {"epochs": 100_000, "lr": 0.01}, seed=3, name="parent", paused=True)
    parent_id = parent["id"]
    change_at = 500
    step_job(api, parent_id, steps=change_at)
    wait_for_api_status(api, parent_id, "paused")
    assert api.patch(f"/api/jobs/{parent_id}", json={"params": {"lr": 0.02, "epochs": 1500}}).status_code == 202
    assert api.post(f"/api/jobs/{parent_id}/resume").status_code == 202
    assert wait_for_job(api, parent_id)["status"] == "succeeded"

    open_job(page, parent_id)
    page.wait_for_function("window.playgroundJob.store.steps.length === 1500")
    assert chart_markers(page) == [{"x": change_at, "label": "lr 0.02, epochs 1500"}]
    assert page.locator("[data-surface]").get_attribute("data-kinks") == "1", "the kink on the loss-surface path"

    # A finished run: "Train longer" at its last step, with more epochs.
    page.get_by_role("button", name="Train longer…").click()
    assert page.locator("#fork-step").input_value() == "1500"
    assert page.locator("#fork-epochs").input_value() == "3000"
    assert page.locator("#fork-lr").input_value() == "0.02"
    screenshot(page, "fork-train-longer")
    page.get_by_role("button", name="Close").click()

    # A click on the loss chart picks the step; the form has the parameters in effect there.
    over = page.locator("[data-loss-chart] .u-over").bounding_box()
    page.mouse.click(over["x"] + over["width"] * 0.2, over["y"] + over["height"] * 0.5)
    page.wait_for_function("window.playgroundJob.fork.picked !== null")
    k = page.evaluate("window.playgroundJob.fork.picked")
    assert 1 <= k < change_at, f"premise: 20% across a 1500-step chart is before the change at {change_at}, not {k}"
    opener = page.get_by_role("button", name=f"Continue from step {k:,}…")
    assert {"x": k, "label": f"step {k:,}"} in chart_markers(page)
    opener.click()
    assert page.locator("#fork-step").input_value() == str(k)
    assert page.locator("#fork-lr").input_value() == "0.01", "the lr before the change"
    page.locator("#fork-lr").fill("0.005")
    page.locator("#fork-epochs").fill(str(k + 300))
    screenshot(page, "fork-form")
    page.get_by_role("button", name="Start the new run").click()
    page.wait_for_url(lambda url: JOB_URL.search(url) is not None and parent_id not in url)
    child_id = JOB_URL.search(page.url).group(1)
    page.wait_for_selector("#job-view[data-ready=true]")

    child = api.get(f"/api/jobs/{child_id}").json()
    assert (child["parent_id"], child["fork_step"]) == (parent_id, k)
    assert child["params"]["lr"] == 0.005 and child["params"]["epochs"] == k + 300
    assert child["seed"] == parent["seed"]
    wait_for_status(page, "succeeded")
    page.wait_for_function("window.playgroundJob.store.steps.length === 300")
    assert page.evaluate("window.playgroundJob.store.steps.slice()") == list(range(k + 1, k + 301))
    # The parent's curve up to k, faint, under the child's own.
    parent_rows = [r for r in metric_rows(api, parent_id) if r["step"] <= k]
    assert page.evaluate("window.playgroundJob.parent.steps.slice()") == [r["step"] for r in parent_rows]
    assert page.evaluate("window.playgroundJob.parent.train.slice()") == pytest.approx([r["train_loss"] for r in parent_rows])
    assert "parent train" in page.locator("[data-loss-chart] .u-legend").inner_text()
    # and the parent's (w, b) path up to k, faint on the loss surface
    assert page.locator("[data-surface]").get_attribute("data-ghost-points") == str(len(parent_rows))
    page.wait_for_function(f"document.querySelector('[data-loss-chart]').dataset.points === '{k + 300}'")  # one x axis
    assert {"x": k, "label": "forked here"} in chart_markers(page)
    assert page.locator("[data-parent-link]").get_attribute("href") == f"/jobs/{parent_id}"
    screenshot(page, "fork-child")

    # Back, forward and reload land on the same states.
    page.go_back()
    page.wait_for_url(re.compile(f"/jobs/{parent_id}$"))
    page.wait_for_selector("#job-view[data-ready=true]")
    wait_for_status(page, "succeeded")
    page.go_forward()
    page.wait_for_url(re.compile(f"/jobs/{child_id}$"))
    page.reload()
    page.wait_for_selector("#job-view[data-ready=true]")
    assert page.evaluate("window.playgroundJob.parent.steps.length") == len(parent_rows)


def test_the_controls_fit_a_phone_screen(phone, api):
    job = create_job(api, "mlp", {"epochs": 100_000}, seed=4, paused=True)
    phone.goto(f"/jobs/{job['id']}")
    phone.wait_for_selector("#job-view[data-ready=true]")
    phone.locator("#live-lr").wait_for()
    wait_for_status(phone, "paused")
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the phone's screen"
    assert phone.get_by_role("button", name="Resume", exact=True).is_enabled()
    screenshot(phone, "controls-phone")
    assert api.post(f"/api/jobs/{job['id']}/cancel").status_code == 202


def test_an_interrupted_run_resumes_from_its_checkpoint_on_its_page(browser, server_factory):
    srv = server_factory(workers=1)
    with srv.client() as api:
        job = create_job(api, "mlp", {"epochs": 100_000}, seed=5, name="to interrupt", paused=True)
        # A checkpoint first (a pause writes one), so that the run has one whenever the stop lands.
        step_job(api, job["id"], steps=500)
        wait_for_api_status(api, job["id"], "paused")
        step_job(api, job["id"], steps=90_000)
        running = wait_for_api_status(api, job["id"], "running")
        assert running["progress"]["step"] is None or running["progress"]["step"] < 80_000, "premise: still going"
        srv.restart()  # SIGTERM: the run is interrupted; it keeps its newest checkpoint
        stopped = api.get(f"/api/jobs/{job['id']}").json()
        assert stopped["status"] == "interrupted" and stopped["resumable"], stopped
        k = stopped["checkpoint_step"]
        with watched_tab(browser, srv.url) as page:
            open_job(page, job["id"])
            resume = page.get_by_role("button", name=f"Resume from step {k:,}")
            assert page.locator("[data-cancel]").is_hidden()
            screenshot(page, "controls-interrupted")
            resume.click()
            # The same page follows it again: its stream reopens after the events it had.
            wait_for_status(page, "running")
            page.wait_for_function(f"window.playgroundJob.store.steps.at(-1) > {k}")
            pause_job(api, job["id"])
            wait_for_status(page, "paused")
            held = api.get(f"/api/jobs/{job['id']}").json()["progress"]["step"]
            page.wait_for_function(f"window.playgroundJob.store.steps.at(-1) === {held}")
            assert page.evaluate("window.playgroundJob.store.steps.slice()") == [r["step"] for r in metric_rows(api, job["id"])]
            page.get_by_role("button", name="Cancel", exact=True).click()
            wait_for_status(page, "cancelled")


def test_a_run_started_paused_from_the_form_steps_from_its_first_epoch(page, api):
    page.goto("/?kind=linear&epochs=300")
    page.wait_for_selector("#train-form[data-ready=true]")
    page.get_by_label("start paused").check()
    page.wait_for_function("new URLSearchParams(location.search).get('paused') === 'true'")  # a link keeps it
    page.get_by_role("button", name="Train").click()
    page.wait_for_url(JOB_URL)
    job_id = JOB_URL.search(page.url).group(1)
    page.wait_for_selector("#job-view[data-ready=true]")
    wait_for_status(page, "paused")
    assert api.get(f"/api/jobs/{job_id}").json()["started_at"] is None, "it has not started: no worker held"
    page.get_by_role("button", name="Step", exact=True).click()
    wait_for_points(page, 1)
    wait_for_status(page, "paused")
    rows = metric_rows(api, job_id)
    assert [(r["step"], r["w"], r["b"]) for r in rows] == [(1, 1.0, 0.0)], "the book's start, one epoch"
    page.get_by_role("button", name="Resume", exact=True).click()
    wait_for_status(page, "succeeded")
    wait_for_points(page, 300)
