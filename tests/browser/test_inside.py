"""Inside the convnet on a cifar run's page (issue 14): a picture of a confusion cell opens in Try it
with the model's answer, its saliency map and beside it its Grad-CAM, the first layer's filters and
each convolution's strongest maps: the same as the API says for that picture."""

from __future__ import annotations

import base64

import pytest

from tests.browser.helpers import screenshot
from tests.service.helpers import post_job, wait_for

pytestmark = pytest.mark.browser

CONV_RUN = {"dataset": "cifar2", "model": "conv", "epochs": 1, "batch_size": 16, "augment": False}


def test_a_confusion_cells_picture_is_seen_from_inside_the_net(page, api, server) -> None:
    if server.env.get("PLAYGROUND_DATA_DIR") is None:
        pytest.skip("the session server has no tiny CIFAR data set (tests/conftest.py's tiny_cifar_env)")
    job = wait_for(api, post_job(api, "cifar", CONV_RUN, seed=0)["id"], timeout=180)
    assert job["status"] == "succeeded", job
    result = job["result"]
    page.goto(f"/jobs/{job['id']}")
    page.wait_for_selector("#job-view[data-ready=true]")

    # The cell with the most pictures, then its first picture.
    classes = result["classes"]
    i, j = max(
        ((i, j) for i in range(len(classes)) for j in range(len(classes))),
        key=lambda ij: len(result["confusion_examples"][ij[0]][ij[1]]),
    )
    page.locator(f'button[data-true-class="{classes[i]}"][data-pred-class="{classes[j]}"]').click()
    page.locator("[data-cell-detail] .image-button").first.click()

    inside = page.locator("[data-inside][data-state=shown]")
    inside.wait_for(timeout=120_000)
    picture = base64.b64decode(result["confusion_examples"][i][j][0].split(",", 1)[1])
    files = {"file": ("cell.png", picture, "image/png")}
    expected = api.post(f"/api/jobs/{job['id']}/inside", files=files).json()
    assert page.locator("[data-predicted-label]").get_attribute("data-predicted-label") == expected["label"]
    assert expected["label"] == classes[j], "the cell's picture is one the run predicted as the cell's column"
    for layer in expected["layers"]:
        row = inside.locator(f'[data-layer="{layer["name"]}"] img')
        assert row.count() == len(layer["channels"]) == 8
        assert row.first.get_attribute("src") == layer["channels"][0]["png"]
    assert inside.locator("[data-filters] img").count() == len(expected["filters"]) == 16
    assert inside.locator('img[alt^="saliency map"]').get_attribute("src") == expected["saliency"]["png"]
    # Grad-CAM, the map and the picture lit by it, in the saliency's row, with a line on what it is.
    cam = expected["grad_cam"]
    beside_saliency = inside.locator('.inside-row:has(img[alt^="saliency map"])')
    assert beside_saliency.locator('img[alt^="Grad-CAM map"]').get_attribute("src") == cam["png"]
    assert beside_saliency.locator('img[alt^="the picture lit by its Grad-CAM"]').get_attribute("src") == cam["overlay"]
    explanation = inside.locator(f'[data-grad-cam="{cam["layer"]}"]')
    assert cam["layer"] == "conv2" and explanation.is_visible() and "Grad-CAM" in explanation.inner_text()
    # Every picture loaded (a broken data URI would have no width).
    assert page.evaluate(
        "[...document.querySelectorAll('[data-inside] img')].every((img) => img.complete && img.naturalWidth > 0)"
    )
    screenshot(page, "inside-the-net")
