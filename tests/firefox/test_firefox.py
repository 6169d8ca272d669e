"""The main paths of the pages in Firefox: the form, a live run to the end, cancel, a CIFAR run with
its confusion matrix and an upload. The full browser suite runs in Chromium (tests/browser); these
check that nothing in the pages is Chromium-only (ES modules, EventSource, <dialog>, uPlot, canvas)."""

from __future__ import annotations

import io
import re

import pytest

from tests.browser.helpers import create_job, metric_rows, pause_job, step_job, wait_for_job

pytestmark = pytest.mark.browser

JOB_PATH = re.compile(r"/jobs/([0-9a-f]{32})$")


def test_the_book_fit_from_the_form_streams_every_point_and_succeeds(firefox, api):
    firefox.open("/?kind=linear&epochs=3000&seed=3")
    firefox.wait_for("return document.querySelector('#train-form')?.dataset.ready === 'true'")
    assert firefox.find("#train-form [name=lr]").get_property("value") == "0.01"  # the default, from the schema
    firefox.find("#train-form button[type=submit]").click()
    firefox.wait_for("return /\\/jobs\\/[0-9a-f]{32}$/.test(location.pathname)")
    job_id = JOB_PATH.search(firefox.client.get_url()).group(1)
    firefox.wait_for("return document.querySelector('#job-view')?.dataset.status === 'succeeded'")
    firefox.wait_for("return document.querySelector('[data-loss-chart]').dataset.points === '3000'")
    assert firefox.js("return window.playgroundJob.store.steps.slice()") == list(range(1, 3001))
    job = api.get(f"/api/jobs/{job_id}").json()
    assert job["seed"] == 3 and job["result"]["epochs_run"] == 3000
    # The loss surface's readout names the least-squares minimum of the book's data.
    readout = firefox.wait_for("return document.querySelector('[data-surface-readout]').textContent.includes('minimum') && document.querySelector('[data-surface-readout]').textContent")
    assert "w = 5.36" in readout or "w = 5.37" in readout
    firefox.screenshot("job-linear")


def test_a_running_job_streams_live_and_cancel_stops_it(firefox, api):
    # Created paused, so that the page's Cancel lands on a run that is not over: stepped on (it
    # pauses again by itself, short of its end), paused before the click.
    job = create_job(api, "linear", {"epochs": 100_000, "lr": 0.001}, seed=1, name="firefox cancel", paused=True)
    firefox.open(f"/jobs/{job['id']}")
    firefox.wait_for("return document.querySelector('#job-view')?.dataset.ready === 'true'")
    first = int(firefox.js("return Number(document.querySelector('[data-loss-chart]').dataset.points || 0)"))
    step_job(api, job["id"], steps=90_000)
    firefox.wait_for(f"return Number(document.querySelector('[data-loss-chart]').dataset.points) > {first}")
    assert firefox.js("return document.querySelector('[data-connection]').dataset.state") == "live"
    assert firefox.js("return window.playgroundJob.stream.received") > 0  # EventSource, not polling
    pause_job(api, job["id"])
    firefox.wait_for("return document.querySelector('#job-view').dataset.status === 'paused'", timeout=30)
    firefox.find("[data-cancel]").click()
    firefox.wait_for("return document.querySelector('#job-view').dataset.status === 'cancelled'", timeout=30)
    steps = [row["step"] for row in metric_rows(api, job["id"])]
    firefox.wait_for(f"return window.playgroundJob.store.steps.length === {len(steps)}")
    assert firefox.js("return window.playgroundJob.store.steps.slice()") == steps  # nothing missed, nothing twice


def test_step_change_lr_resume_replay_and_fork_from_the_run_page(firefox, api):
    job = create_job(api, "mlp", {"epochs": 300, "optimizer": "adam", "lr": 0.01}, seed=4, paused=True)
    firefox.open(f"/jobs/{job['id']}")
    firefox.wait_for("return document.querySelector('#job-view')?.dataset.ready === 'true'")
    firefox.wait_for("return !document.querySelector('[data-step]').disabled")
    # Step twice with the button: exactly two points.
    firefox.find("[data-step]").click()
    firefox.wait_for("return window.playgroundJob.store.steps.length === 1 && document.querySelector('#job-view').dataset.status === 'paused'")
    firefox.wait_for("return !document.querySelector('[data-step]').disabled")
    firefox.find("[data-step]").click()
    firefox.wait_for("return window.playgroundJob.store.steps.length === 2 && document.querySelector('#job-view').dataset.status === 'paused'")
    # A new lr while paused: recorded at once, marked on the chart.
    firefox.js(
        "const input = document.querySelector('#live-lr'); input.value = '0.003';"
        "input.dispatchEvent(new Event('input', {bubbles: true})); input.dispatchEvent(new Event('change', {bubbles: true}));"
    )
    firefox.wait_for("return (document.querySelector('[data-loss-chart]').dataset.markers || '').includes('lr 0.003')")
    assert api.get(f"/api/jobs/{job['id']}").json()["params"]["lr"] == 0.003
    firefox.find("[data-resume]").click()
    firefox.wait_for("return document.querySelector('#job-view').dataset.status === 'succeeded'", timeout=120)
    rows = metric_rows(api, job["id"])
    firefox.wait_for(f"return window.playgroundJob.store.steps.length === {len(rows)}")
    assert [r["lr"] for r in rows[:2]] == [0.01, 0.01] and {r["lr"] for r in rows[2:]} == {0.003}
    # Replay to step 100: the scrubber drives the chart's cursor, no request per position.
    firefox.js(
        "const s = document.querySelector('[data-replay-scrubber]'); s.value = '99';"
        "s.dispatchEvent(new Event('input', {bubbles: true}));"
    )
    firefox.wait_for("return document.querySelector('#job-view').dataset.replayStep === '100'")
    assert firefox.js("return document.querySelector('[data-loss-chart]').dataset.cursor") == "100"
    firefox.screenshot("run-controls")
    # Train longer: a fork at the last step, opened on its own page.
    firefox.find("[data-replay-exit]").click()
    firefox.find("[data-fork-open]").click()
    assert firefox.find("#fork-epochs").get_property("value") == "600"
    firefox.find("[data-fork-submit]").click()
    firefox.wait_for(f"return /\\/jobs\\/[0-9a-f]{{32}}$/.test(location.pathname) && !location.pathname.includes('{job['id']}')")
    child_id = JOB_PATH.search(firefox.client.get_url()).group(1)
    firefox.wait_for("return document.querySelector('#job-view')?.dataset.status === 'succeeded'", timeout=120)
    child = api.get(f"/api/jobs/{child_id}").json()
    assert (child["parent_id"], child["fork_step"], child["params"]["epochs"]) == (job["id"], 300, 600)


def png_bytes(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(out, format="PNG")
    return out.getvalue()


def test_a_cifar_run_shows_its_confusion_matrix_and_classifies_an_upload(firefox, api, server, tmp_path):
    if server.env.get("PLAYGROUND_DATA_DIR") is None:
        pytest.skip("the session server has no tiny CIFAR data set (tests/fixtures/tiny_cifar.py)")
    params = {"dataset": "cifar2", "model": "fc", "epochs": 2, "batch_size": 16, "augment": False}
    job = create_job(api, "cifar", params, seed=0)
    finished = wait_for_job(api, job["id"])
    assert finished["status"] == "succeeded", finished["error"]
    firefox.open(f"/jobs/{job['id']}")
    firefox.wait_for("return document.querySelectorAll('table.confusion tbody tr').length === 2")
    cells = firefox.js("return [...document.querySelectorAll('table.confusion button.cell')].map((b) => Number(b.textContent))")
    assert cells == [n for row in finished["result"]["confusion_matrix"] for n in row]

    image = tmp_path / "red.png"
    image.write_bytes(png_bytes((220, 30, 30)))
    firefox.find("#predict-file").send_keys(str(image))
    label = firefox.wait_for("return document.querySelector('[data-predicted-label]')?.dataset.predictedLabel")
    with image.open("rb") as handle:
        expected = api.post(f"/api/jobs/{job['id']}/predict", files={"file": ("red.png", handle, "image/png")}).json()
    assert label == expected["label"]
    firefox.screenshot("job-cifar")


def test_dragging_the_start_previews_the_path_the_run_then_takes(firefox, api):
    firefox.open("/?kind=linear&epochs=300&lr=0.01")
    firefox.wait_for("return document.querySelector('[data-start-surface]')?.dataset.pathPoints === '301'")
    firefox.js("document.querySelector('[data-start-surface] canvas').scrollIntoView({block: 'center'})")
    # Where the handle is and where it goes (30% across and down the map), in the window's pixels.
    handle, target = firefox.js(
        "const map = window.playgroundStart.map; const rect = map.canvas.getBoundingClientRect();"
        "const [x, y] = map.toPx(map.start.w, map.start.b);"
        "return [[Math.round(rect.left + x), Math.round(rect.top + y)], [Math.round(rect.left + rect.width * 0.3), Math.round(rect.top + rect.height * 0.3)]];"
    )
    mouse = firefox.client.actions.sequence("pointer", "mouse", {"pointerType": "mouse"})
    mouse.pointer_move(*handle).pointer_down().pointer_move(*target, duration=100).pointer_up().perform()
    start = (float(firefox.find("#param-init_w").get_property("value")), float(firefox.find("#param-init_b").get_property("value")))
    assert start != (1.0, 0.0), "the drag moved the start"
    preview = firefox.js("const p = window.playgroundStart.preview; return [p.ws[0], p.bs[0], p.final.w, p.final.b];")
    assert preview[:2] == pytest.approx(list(start), rel=1e-6), "the preview starts where the form says"
    firefox.find("#train-button").click()
    firefox.wait_for("return /\\/jobs\\/[0-9a-f]{32}$/.test(location.pathname)")
    job_id = JOB_PATH.search(firefox.client.get_url()).group(1)
    firefox.wait_for("return document.querySelector('#job-view')?.dataset.status === 'succeeded'")
    apart = firefox.wait_for("return document.querySelector('[data-run-preview-note]')?.dataset.apart")
    job = api.get(f"/api/jobs/{job_id}").json()
    assert (job["params"]["init_w"], job["params"]["init_b"]) == start
    # The run page's preview is the start page's, and it ends where the server's run ended.
    assert firefox.js("const p = window.playgroundRunPreview.run; return [p.final.w, p.final.b];") == preview[2:]
    assert preview[2:] == [pytest.approx(job["result"]["w"], rel=1e-4), pytest.approx(job["result"]["b"], rel=1e-4)]
    assert float(apart) <= 1e-4
    assert firefox.js("return !document.querySelector('[data-surface-legend]').hidden")
    firefox.screenshot("run-preview")


def test_a_lesson_page_locks_its_field_and_its_board_follows_a_new_run(firefox, api):
    lesson = api.post(
        "/api/lessons",
        json={"title": "Firefox lesson", "kind": "linear", "params": {"lr": 0.005, "epochs": 50}, "locked": ["lr"], "hidden": ["input_scale"]},
    ).json()
    try:
        firefox.open(f"/lessons/{lesson['id']}")
        firefox.wait_for("return document.querySelector('#lesson')?.dataset.ready === 'true'")
        assert firefox.js("const lr = document.querySelector('#param-lr'); return [lr.disabled, lr.value];") == [True, "0.005"]
        assert firefox.js("return document.querySelector('#param-epochs').disabled") is False
        assert firefox.js("return document.querySelectorAll('[data-field=\"input_scale\"]').length") == 0
        firefox.screenshot("lesson-page")

        firefox.open(f"/lessons/{lesson['id']}/board")
        firefox.wait_for("return Number(document.querySelector('#board')?.dataset.reads) >= 1")
        job = create_job(api, "linear", {"epochs": 50}, lesson_id=lesson["id"], name="firefox board run")
        # Shown, ended, without a reload: the board read again because the event stream said so.
        firefox.wait_for(f"return document.querySelector('[data-board-rows] tr[data-job-id=\"{job['id']}\"][data-status=\"succeeded\"]')")
        assert wait_for_job(api, job["id"])["status"] == "succeeded"
        firefox.screenshot("lesson-board")
    finally:
        api.delete(f"/api/lessons/{lesson['id']}")


def test_points_clicked_onto_the_chart_are_the_jobs_data(firefox, api):
    # Issue 13's own data in Firefox: clear the book's readings, click three points onto the chart
    # with the mouse, fit them; the job's data is what the form holds, and the run page says x and y.
    firefox.open("/?kind=linear&epochs=200")
    firefox.wait_for("return document.querySelector('[data-point-chart]')?.dataset.points === '11'")
    firefox.js("[...document.querySelectorAll('button')].find((b) => b.textContent.trim() === 'Remove all').click()")
    firefox.wait_for("return document.querySelector('[data-point-chart]').dataset.points === '0'")
    firefox.js("document.querySelector('[data-point-chart] .u-over').scrollIntoView({block: 'center'})")
    spots = firefox.js(
        "const r = document.querySelector('[data-point-chart] .u-over').getBoundingClientRect();"
        "return [[0.2, 0.7], [0.5, 0.5], [0.8, 0.2]].map(([fx, fy]) => [Math.round(r.left + fx * r.width), Math.round(r.top + fy * r.height)]);"
    )
    for x, y in spots:
        mouse = firefox.client.actions.sequence("pointer", "mouse", {"pointerType": "mouse"})
        mouse.pointer_move(x, y).pointer_down().pointer_up().perform()
    firefox.wait_for("return document.querySelector('[data-point-chart]').dataset.points === '3'")
    drawn = [
        [float(v) for v in line.split(",")]
        for line in firefox.find("[name=data]").get_property("value").splitlines()
        if line.strip()
    ]
    assert len(drawn) == 3 and drawn[0][0] < drawn[1][0] < drawn[2][0] and drawn[0][1] < drawn[1][1] < drawn[2][1], drawn
    firefox.js("[...document.querySelectorAll('button')].find((b) => b.textContent.trim() === 'Fit these points').click()")
    firefox.wait_for("return /\\/jobs\\/[0-9a-f]{32}$/.test(location.pathname)")
    job_id = JOB_PATH.search(firefox.client.get_url()).group(1)
    assert api.get(f"/api/jobs/{job_id}").json()["params"]["data"] == drawn
    firefox.wait_for("return document.querySelector('#job-view')?.dataset.status === 'succeeded'")
    firefox.wait_for("return document.querySelector('label[for=predict-input]')?.textContent === 'Input x'")
    firefox.screenshot("own-data-fitted")
