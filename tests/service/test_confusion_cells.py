"""Every picture of a confusion cell, a page at a time (``GET /api/jobs/{id}/confusion/{true}/{pred}``,
issue 12): a worker evaluates the run's test split again with its weights, so the pages of a cell
hold exactly the matrix's number of images, the first of them the ones the result kept."""

from __future__ import annotations

import base64

import pytest

from tests.service.helpers import field_errors, post_job, wait_for

CONV_RUN = {"dataset": "cifar2", "model": "conv", "epochs": 1, "batch_size": 16, "augment": False}
PAGE = 3  # small, so that the tiny data set's cells (8 test images a class) take several pages


@pytest.fixture(scope="module")
def conv_job(server):
    if server.env.get("PLAYGROUND_DATA_DIR") is None:
        pytest.skip("the session server has no tiny CIFAR data set (tests/conftest.py's tiny_cifar_env)")
    with server.client() as client:
        job = wait_for(client, post_job(client, "cifar", CONV_RUN, seed=0)["id"], timeout=180)
    assert job["status"] == "succeeded", job
    return job


def cell_pages(api, job_id: str, i: int, j: int) -> list[dict]:
    """The cell's pages of PAGE images, in order, until one comes back short."""
    pages = []
    while True:
        response = api.get(f"/api/jobs/{job_id}/confusion/{i}/{j}", params={"offset": PAGE * len(pages), "limit": PAGE})
        assert response.status_code == 200, response.text
        pages.append(response.json())
        if len(pages[-1]["images"]) < PAGE:
            return pages


def test_the_pages_of_every_cell_hold_the_matrix_count_and_start_with_the_kept_examples(api, conv_job) -> None:
    result = conv_job["result"]
    classes, matrix = result["classes"], result["confusion_matrix"]
    seen: list[int] = []
    for i in range(len(classes)):
        for j in range(len(classes)):
            pages = cell_pages(api, conv_job["id"], i, j)
            images = [image for page in pages for image in page["images"]]
            assert len(images) == matrix[i][j], (i, j, pages[0]["count"])
            assert {page["count"] for page in pages} == {matrix[i][j]}
            assert all((page["true"], page["pred"]) == (classes[i], classes[j]) for page in pages)
            indices = [image["index"] for image in images]
            assert indices == sorted(set(indices)), "in test-split order, none twice"
            # The result keeps the cell's first few: the first page starts with the same pictures.
            kept = result["confusion_examples"][i][j]
            assert [image["image"] for image in images[: len(kept)]] == kept
            assert all(1 / len(classes) <= image["confidence"] <= 1 for image in images)
            seen += indices
    # Together the cells hold the whole test split, each image once.
    assert sorted(seen) == list(range(result["test_images"]))


def test_a_cells_picture_is_predicted_as_its_column(api, conv_job) -> None:
    matrix = conv_job["result"]["confusion_matrix"]
    i, j = max(((i, j) for i in range(2) for j in range(2)), key=lambda ij: matrix[ij[0]][ij[1]])
    last = api.get(f"/api/jobs/{conv_job['id']}/confusion/{i}/{j}", params={"offset": matrix[i][j] - 1}).json()
    (image,) = last["images"]
    picture = base64.b64decode(image["image"].split(",", 1)[1])
    predicted = api.post(f"/api/jobs/{conv_job['id']}/predict", files={"file": ("x.png", picture, "image/png")}).json()
    assert predicted["label"] == last["pred"]
    assert predicted["probabilities"][last["pred"]] == pytest.approx(image["confidence"], abs=1e-4)
    # Past the end: an empty page that still says how many there are.
    for offset in (matrix[i][j], 2**53 - 1):
        beyond = api.get(f"/api/jobs/{conv_job['id']}/confusion/{i}/{j}", params={"offset": offset}).json()
        assert beyond["images"] == [] and beyond["count"] == matrix[i][j]


def test_a_cell_outside_the_run_or_the_limits_is_refused_by_name(api, conv_job) -> None:
    url = f"/api/jobs/{conv_job['id']}/confusion"
    errors = field_errors(api.get(f"{url}/2/0"))
    assert "true=2 is not a class of this run" in errors[("path", "true")]
    assert "1 (bird)" in errors[("path", "true")]
    assert ("path", "pred") in field_errors(api.get(f"{url}/0/5"))
    assert ("path", "pred") in field_errors(api.get(f"{url}/0/-1"))
    assert ("query", "limit") in field_errors(api.get(f"{url}/0/0", params={"limit": 0}))
    assert ("query", "limit") in field_errors(api.get(f"{url}/0/0", params={"limit": 101}))
    assert ("query", "offset") in field_errors(api.get(f"{url}/0/0", params={"offset": -1}))

    unknown = api.get(f"/api/jobs/{'0' * 32}/confusion/0/0")
    assert unknown.status_code == 404 and "0" * 32 in unknown.json()["detail"]


def test_a_run_without_a_classifiers_weights_has_no_cells_to_page(api) -> None:
    linear = post_job(api, "linear", {"epochs": 100}, paused=True)
    untrained = post_job(api, "cifar", CONV_RUN, paused=True)
    try:
        wrong_kind = api.get(f"/api/jobs/{linear['id']}/confusion/0/0")
        assert wrong_kind.status_code == 409 and "it is a linear run" in wrong_kind.json()["detail"]
        not_trained = api.get(f"/api/jobs/{untrained['id']}/confusion/0/0")
        assert not_trained.status_code == 409 and "has no trained weights" in not_trained.json()["detail"]
    finally:
        for job in (linear, untrained):
            api.post(f"/api/jobs/{job['id']}/cancel")
