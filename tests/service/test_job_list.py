"""The job list returns summaries (no pictures, no curves), gzip-compressed when the client asks,
while event streams stay uncompressed and arrive as they happen.

Against the session's real server (tests/conftest.py: 2 workers, the tiny CIFAR set).
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest

from app.models import HEAVY_RESULT_KEYS, SUMMARY_LEAVES_OUT
from tests.service.helpers import post_job, wait_for
from tests.service.sse import iter_sse

# The tiny set: 160 training images, 10 steps of 16 an epoch; each run has a full CIFAR result
# (confusion matrix, per-class accuracy, example images as base64 PNGs).
TINY_CIFAR = {"dataset": "cifar10", "model": "conv", "epochs": 1, "batch_size": 16}
LIST_LIMIT_BYTES = 20_000


@pytest.fixture(scope="module")
def client(server: Any) -> Any:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def ten_cifar_runs(client: httpx.Client) -> list[dict[str, Any]]:
    jobs = [post_job(client, "cifar", TINY_CIFAR, seed=i, name=f"tiny cifar {i}") for i in range(10)]
    finished = [wait_for(client, job["id"], timeout=300) for job in jobs]
    assert all(job["status"] == "succeeded" for job in finished), [j["status"] for j in finished]
    return finished


def test_a_list_of_ten_finished_cifar_runs_is_under_20_kb(client: httpx.Client, ten_cifar_runs) -> None:
    whole = ten_cifar_runs[0]["result"]
    assert whole["samples"] and whole["confusion_examples"], "premise: a run's own read has its pictures"
    assert len(json.dumps(whole)) > 5_000, "premise: a whole CIFAR result is large"

    ids = {job["id"] for job in ten_cifar_runs}
    response = client.get("/api/jobs", params={"kind": "cifar", "limit": 10}, headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    items = response.json()["items"]
    assert {item["id"] for item in items} == ids, "premise: the newest ten cifar runs are these"
    assert len(response.content) < LIST_LIMIT_BYTES, f"the list of ten CIFAR runs is {len(response.content)} bytes"

    for item in items:
        assert not (item["result"].keys() & SUMMARY_LEAVES_OUT), item["result"].keys()
        assert item["result_abridged"] is True
        # The final metrics and the facts the pages show are there.
        assert {"val_acc", "val_loss", "train_loss", "epochs_run", "images_per_second"} <= item["result"].keys()
        for key in ("id", "kind", "name", "status", "progress", "params", "created_at", "started_at",
                    "finished_at", "train_seconds", "running_since", "parent_id", "seed", "device"):
            assert key in item, key
        assert "changes" not in item and "confusion_matrix" not in json.dumps(item)


def test_the_whole_job_still_has_its_pictures(client: httpx.Client, ten_cifar_runs) -> None:
    job = client.get(f"/api/jobs/{ten_cifar_runs[0]['id']}").json()
    assert HEAVY_RESULT_KEYS & job["result"].keys() and job["result"]["confusion_matrix"]
    assert job["result_abridged"] is False


def test_the_list_is_gzip_compressed_when_the_client_asks(client: httpx.Client, ten_cifar_runs) -> None:
    plain = client.get("/api/jobs", params={"kind": "cifar", "limit": 10}, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    with httpx.Client(base_url=str(client.base_url), headers={"Accept-Encoding": "gzip"}) as raw:
        with raw.stream("GET", "/api/jobs", params={"kind": "cifar", "limit": 10}) as response:
            body = b"".join(response.iter_raw())
            assert response.headers["content-encoding"] == "gzip"
            assert "accept-encoding" in response.headers["vary"].lower()
    assert len(body) < len(plain.content) / 3, (len(body), len(plain.content))
    assert json.loads(gzip.decompress(body))["total"] == plain.json()["total"]


def test_event_streams_are_not_compressed_and_arrive_as_they_happen(client: httpx.Client) -> None:
    # A job held at step 0: its stream stays open. A compressing middleware would hold the first
    # events in its buffer (nothing arrives until the stream ends); this one must see them at once.
    job = post_job(client, "linear", {"epochs": 100_000}, seed=1, paused=True)
    try:
        with httpx.Client(base_url=str(client.base_url), timeout=60) as sse:
            headers = {"Accept-Encoding": "gzip"}
            with sse.stream("GET", f"/api/jobs/{job['id']}/events", headers=headers) as response:
                assert "content-encoding" not in response.headers
                assert response.headers["content-type"].startswith("text/event-stream")
                events = iter_sse(response)
                first = next(events)
                assert first.event == "status" and first.data["status"] == "paused"
                # Stepped: its points arrive while the stream is still open.
                assert client.post(f"/api/jobs/{job['id']}/step", json={"steps": 50}).status_code == 202
                for event in events:
                    if event.event == "metric":
                        break
                else:
                    raise AssertionError("the stream ended before any metric event")
    finally:
        client.post(f"/api/jobs/{job['id']}/cancel")
        wait_for(client, job["id"])


def test_pages_and_scripts_are_compressed_metrics_are_not(client: httpx.Client, ten_cifar_runs) -> None:
    headers = {"Accept-Encoding": "gzip"}
    for path in ("/", "/static/js/joblist.js", "/static/vendor/uplot/uPlot.iife.min.js"):
        response = client.get(path, headers=headers)
        assert response.status_code == 200
        assert response.headers.get("content-encoding") == "gzip", path
    metrics = client.get(f"/api/jobs/{ten_cifar_runs[0]['id']}/metrics", headers=headers)
    assert metrics.status_code == 200 and "content-encoding" not in metrics.headers


def test_an_unchanged_list_answers_304_to_if_none_match(client: httpx.Client, ten_cifar_runs) -> None:
    query = {"kind": "cifar", "limit": 10}
    first = client.get("/api/jobs", params=query)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache" and etag.startswith('W/"')
    again = client.get("/api/jobs", params=query, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    # A change (a new run of that kind) is a new answer with a new tag.
    job = post_job(client, "cifar", TINY_CIFAR, seed=99, paused=True)
    try:
        changed = client.get("/api/jobs", params=query, headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        assert changed.json()["items"][0]["id"] == job["id"]
    finally:
        client.post(f"/api/jobs/{job['id']}/cancel")
        wait_for(client, job["id"])
