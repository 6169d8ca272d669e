"""A CIFAR run in Chromium, on the tiny test data set: accuracy curves, the confusion matrix and its
images, sample predictions, and an uploaded (and a dropped) image classified."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest

from tests.browser.helpers import hold_job, pause_job, screenshot, step_job

pytestmark = pytest.mark.browser

JOB_URL = re.compile(r"/jobs/([0-9a-f]{32})$")
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cifar_ready(server):
    if server.env.get("PLAYGROUND_DATA_DIR") is None or not (REPO_ROOT / "app/experiments/cifar.py").is_file():
        pytest.skip("the tiny CIFAR data set (tests/fixtures/tiny_cifar.py) or app/experiments/cifar.py is missing")


def png_bytes(color: tuple[int, int, int], size: int = 32) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, format="PNG")
    return out.getvalue()


def test_a_cifar_run_shows_its_confusion_matrix_and_classifies_an_upload(page, api, cifar_ready, tmp_path):
    page.goto("/?kind=cifar&dataset=cifar2&model=fc&epochs=2&batch_size=16&augment=false")
    page.wait_for_selector("#train-form[data-ready=true]")
    page.get_by_role("button", name="Train").click()
    page.wait_for_url(JOB_URL)
    job_id = JOB_URL.search(page.url).group(1)
    page.wait_for_selector("#job-view[data-ready=true]")
    page.wait_for_selector("#job-view[data-status=succeeded]", timeout=240_000)
    job = api.get(f"/api/jobs/{job_id}").json()
    result = job["result"]
    classes = result["classes"]

    # Loss per batch, validation loss and accuracies per epoch.
    page.locator("[data-accuracy-panel]").wait_for(state="visible")
    page.wait_for_function("document.querySelector('[data-accuracy-chart]').dataset.points === '2'")
    assert page.evaluate("window.playgroundJob.store.valAcc.at(-1)") == pytest.approx(result["val_acc"])

    # The confusion matrix: one row and one column per class, the counts of the result.
    matrix = page.locator("table.confusion")
    matrix.wait_for()
    assert matrix.locator("tbody tr").count() == len(classes)
    for i, row in enumerate(result["confusion_matrix"]):
        cells = matrix.locator("tbody tr").nth(i).locator("button.cell")
        assert [int(t) for t in cells.all_inner_texts()] == row
    # Clicking a cell shows its validation images.
    i, j = max(
        ((i, j) for i in range(len(classes)) for j in range(len(classes))),
        key=lambda ij: result["confusion_matrix"][ij[0]][ij[1]],
    )
    matrix.locator(f'button[data-true-class="{classes[i]}"][data-pred-class="{classes[j]}"]').click()
    detail = page.locator("[data-cell-detail]")
    detail.wait_for(state="visible")
    assert detail.locator("img").count() == len(result["confusion_examples"][i][j]) > 0
    assert classes[i] in detail.locator("h4").inner_text()

    assert page.locator(".per-class tr").count() >= len(classes)
    assert page.locator(".samples figure").count() == len(result["samples"])

    # Try it: upload an image, see the class probabilities, the same as the API's.
    image = tmp_path / "red.png"
    image.write_bytes(png_bytes((220, 30, 30)))
    page.locator("#predict-file").set_input_files(str(image))
    answer = page.locator("[data-predicted-label]")
    answer.wait_for()
    with image.open("rb") as handle:
        expected = api.post(f"/api/jobs/{job_id}/predict", files={"file": ("red.png", handle, "image/png")}).json()
    assert answer.get_attribute("data-predicted-label") == expected["label"]
    assert page.locator(".probabilities tr").count() == len(classes)
    screenshot(page, "job-cifar")

    # Or drop one onto the page.
    blue = base64.b64encode(png_bytes((30, 30, 220), size=48)).decode()
    page.evaluate(
        """async (b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], "blue.png", { type: "image/png" }));
            const zone = document.querySelector(".drop-zone");
            zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
        }""",
        blue,
    )
    page.wait_for_function("document.querySelector('.preview').alt === 'uploaded blue.png'")
    page.wait_for_function("document.querySelector('[data-predicted-label]') !== null")


def test_a_cifar_run_redraws_its_confusion_matrix_after_each_epoch(page, api, cifar_ready):
    job = api.post(
        "/api/jobs",
        json={"kind": "cifar", "params": {"model": "fc", "epochs": 200, "batch_size": 16, "augment": False}},
    ).json()
    # Held, so that the page's Cancel lands on a run that is not over (tests/browser/helpers.py's
    # hold_job): stepped 150 epochs, short of its 200, then paused before the click.
    hold_job(api, job["id"])
    page.goto(f"/jobs/{job['id']}")
    page.wait_for_selector("#job-view[data-ready=true]")
    step_job(api, job["id"], epochs=150)
    caption = page.locator("[data-snapshot-caption]")
    caption.wait_for(timeout=120_000)
    page.wait_for_function("/After epoch [2-9]/.test(document.querySelector('[data-snapshot-caption]').textContent)")
    # Not over: stepped short of its end, the run is running or has paused itself (no race with the clock).
    assert page.locator("#job-view").get_attribute("data-status") in ("running", "paused")
    assert "of 200" in caption.inner_text()
    matrix = page.locator("table.confusion")
    assert matrix.locator("tbody tr").count() == 10
    rows = [[int(t) for t in row.locator("button.cell").all_inner_texts()] for row in matrix.locator("tbody tr").all()]
    assert [sum(row) for row in rows] == [8] * 10  # every test image of the tiny set (8 a class), every epoch
    assert page.locator("table.per-class tr").count() == 10
    screenshot(page, "job-cifar-live")
    pause_job(api, job["id"])
    page.wait_for_selector("#job-view[data-status=paused]", timeout=30_000)
    page.get_by_role("button", name="Cancel", exact=True).click()
    page.wait_for_selector("#job-view[data-status=cancelled]", timeout=30_000)


def test_a_cifar_runs_progress_counts_batches_within_its_epoch(page, api, cifar_ready):
    # The tiny set: 160 training images, batches of 16, so 10 batches an epoch.
    job = api.post(
        "/api/jobs",
        json={"kind": "cifar", "params": {"dataset": "cifar10", "model": "conv", "epochs": 3, "batch_size": 16}, "seed": 1, "paused": True},
    ).json()
    page.goto(f"/jobs/{job['id']}")
    page.wait_for_selector("#job-view[data-ready=true]")
    progress = page.locator("[data-progress-text]")

    def paused_with(text: str) -> None:
        page.wait_for_function(
            "([text]) => document.querySelector('#job-view').dataset.status === 'paused'"
            " && document.querySelector('[data-progress-text]').textContent.startsWith(text)",
            arg=[text],
            timeout=60_000,
        )

    step_job(api, job["id"], steps=4)
    paused_with("paused in epoch 1 of 3 · batch 4")  # how many batches an epoch has is not known yet
    assert "of 10" not in progress.inner_text()
    step_job(api, job["id"], epochs=1)
    paused_with("paused in epoch 2 of 3 · batch 0 of 10")
    step_job(api, job["id"], steps=3)
    paused_with("paused in epoch 2 of 3 · batch 3 of 10")
    screenshot(page, "cifar-progress-in-batches")
    assert api.post(f"/api/jobs/{job['id']}/cancel").status_code == 202
    # Cancelled: what it finished, as the charts show it (one accuracy point, three batches after).
    page.wait_for_selector("#job-view[data-status=cancelled]")
    assert progress.inner_text().startswith("1 of 3 epochs done and 3 batches of epoch 2")
    assert page.evaluate("window.playgroundJob.store.accEpochs.slice()") == [1]
