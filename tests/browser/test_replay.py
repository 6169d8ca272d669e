"""Replay on the run page (issue "The run page becomes a playground"): a scrubber and Play drive
every picture together, from what the page holds (no request per frame)."""

from __future__ import annotations

import pytest

from tests.browser.helpers import create_job, metric_rows, screenshot, wait_for_job

pytestmark = pytest.mark.browser


def open_job(page, job_id: str) -> None:
    page.goto(f"/jobs/{job_id}")
    page.wait_for_selector("#job-view[data-ready=true]")


def scrub_to(page, index: int) -> None:
    page.locator("[data-replay-scrubber]").fill(str(index))
    page.wait_for_function(f"window.playgroundJob.replay.shown === {index}")


def replay_step(page) -> int:
    return int(page.locator("#job-view").get_attribute("data-replay-step"))


def test_replaying_a_finished_linear_run_draws_each_epochs_line_and_point(page, api):
    job = create_job(api, "linear", {}, seed=1)  # the book's 5000 epochs
    assert wait_for_job(api, job["id"])["status"] == "succeeded"
    rows = {r["step"]: r for r in metric_rows(api, job["id"])}
    open_job(page, job["id"])
    panel = page.locator("[data-replay]")
    panel.wait_for(state="visible")
    requests = []
    page.on("request", lambda r: requests.append(r.url))

    scrub_to(page, 999)  # epoch 1000
    assert replay_step(page) == 1000
    row = rows[1000]
    fit = page.evaluate("window.playgroundJob.fit")
    assert fit["kind"] == "line"
    assert fit["slope"] == pytest.approx(row["w"] * 0.1) and fit["intercept"] == pytest.approx(row["b"])
    assert page.locator("[data-surface]").get_attribute("data-up-to") == "999"
    assert page.locator("[data-loss-chart]").get_attribute("data-cursor") == "1000"
    readout = page.locator("[data-replay-readout]").inner_text()
    assert readout.startswith("step 1,000 · train loss ") and f"w {row['w']:.4g}" in readout
    assert "epoch 1,000: w = " in page.locator("[data-surface-readout]").inner_text()
    screenshot(page, "replay-linear-epoch-1000")

    # The keyboard: the scrubber takes the arrow keys (the run's own → step is not for a finished run).
    page.locator("[data-replay-scrubber]").press("ArrowLeft")
    page.wait_for_function("window.playgroundJob.replay.shown === 998")
    assert replay_step(page) == 999

    # Play the whole run in about 5 s; it stops at the last epoch.
    page.locator("[data-replay-speed]").select_option("whole")
    page.get_by_role("button", name="▶ Replay").click()
    page.wait_for_function("window.playgroundJob.replay.playing === false", timeout=60_000)
    assert replay_step(page) == 5000
    asked = [url for url in requests if "/api/jobs" in url]
    assert asked == [], f"the replay asks the server for nothing: {asked}"

    # Back to the run: the final pictures, no cursor.
    page.get_by_role("button", name="Back to the run").click()
    assert page.locator("[data-loss-chart]").get_attribute("data-cursor") == ""
    assert page.locator("[data-surface]").get_attribute("data-up-to") == ""
    final = api.get(f"/api/jobs/{job['id']}").json()["result"]
    fit = page.evaluate("window.playgroundJob.fit")
    assert fit["slope"] == pytest.approx(final["slope"]) and fit["intercept"] == pytest.approx(final["intercept"])


def test_replaying_an_mlp_run_shows_the_networks_curve_of_that_time(page, api):
    job = create_job(api, "mlp", {"epochs": 3000}, seed=2)
    assert wait_for_job(api, job["id"])["status"] == "succeeded"
    shots = api.get(f"/api/jobs/{job['id']}/snapshots").json()["snapshots"]
    assert len(shots) >= 3 and all("curve" in s for s in shots)
    assert [s["step"] for s in shots] == sorted(s["step"] for s in shots)
    assert api.get(f"/api/jobs/{job['id']}/snapshots", params={"limit": 2}).json()["snapshots"] == [shots[0], shots[-1]]
    open_job(page, job["id"])
    page.locator("[data-replay]").wait_for(state="visible")
    middle = shots[len(shots) // 2]
    target = middle["step"] + 1  # a step just after a picture: that picture is the newest then
    scrub_to(page, target - 1)
    page.wait_for_function("/Replay: the network's output at epoch/.test(document.querySelector('[data-fit-caption]').textContent)")
    assert f"at epoch {middle['epoch']:,} " in page.locator("[data-fit-caption]").inner_text()
    curve = page.evaluate("window.playgroundJob.fit.points")
    assert curve == middle["curve"]
    screenshot(page, "replay-mlp")


def test_replaying_a_cifar_run_shows_each_epochs_confusion_matrix(page, api):
    job = create_job(
        api, "cifar", {"dataset": "cifar10", "model": "conv", "epochs": 3, "batch_size": 16}, seed=3
    )
    assert wait_for_job(api, job["id"])["status"] == "succeeded"
    shots = api.get(f"/api/jobs/{job['id']}/snapshots").json()["snapshots"]
    assert [s["epoch"] for s in shots] == [1, 2, 3]
    open_job(page, job["id"])
    page.locator("[data-replay]").wait_for(state="visible")
    steps = page.evaluate("window.playgroundJob.store.steps.slice()")
    index = steps.index(shots[0]["step"])  # the last batch of epoch 1
    scrub_to(page, index)
    caption = page.locator("[data-snapshot-caption]")
    caption.wait_for()
    assert caption.inner_text().startswith("Replay: after epoch 1 of 3")
    matrix = page.locator("table.confusion")
    cells = [[int(t) for t in row.locator("button.cell").all_inner_texts()] for row in matrix.locator("tbody tr").all()]
    assert cells == shots[0]["confusion_matrix"]
    screenshot(page, "replay-cifar-epoch-1")


def test_snapshots_of_an_unknown_job_are_404(api):
    response = api.get(f"/api/jobs/{'0' * 32}/snapshots")
    assert response.status_code == 404 and "0" * 32 in response.text
