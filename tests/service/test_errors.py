"""Every 4xx of the API: the status, and a message that names the field and what is allowed."""

from __future__ import annotations

import uuid

import pytest

from tests.service.helpers import LONG_LINEAR, field_errors, post_job, wait_for


@pytest.fixture(scope="module")
def client(server):
    with server.client() as c:
        yield c


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        ({"kind": "resnet50"}, ("body", "kind"), ["'resnet50'", "cifar, linear, mlp"]),
        ({"kind": "linear", "params": {"learning_rate": 0.1}}, ("body", "params", "learning_rate"), ["Extra inputs"]),
        ({"kind": "linear", "params": {"epochs": "many"}}, ("body", "params", "epochs"), ["valid integer"]),
        ({"kind": "linear", "params": {"lr": 50}}, ("body", "params", "lr"), ["less than or equal to 10"]),
        ({"kind": "linear", "params": {"epochs": 0}}, ("body", "params", "epochs"), ["greater than or equal to 1"]),
        ({"kind": "mlp", "params": {"activation": "gelu"}}, ("body", "params", "activation"), ["'tanh'", "'relu'"]),
        ({"kind": "linear", "params": {"data": [[1, 2]]}}, ("body", "params", "data"), ["at least 2"]),
        ({"kind": "linear", "seed": -1}, ("body", "seed"), ["greater than or equal to 0"]),
        ({"params": {}}, ("body", "kind"), ["required"]),
    ],
)
def test_invalid_jobs_are_422_naming_the_field(client, body, loc, words):
    errors = field_errors(client.post("/api/jobs", json=body))
    assert loc in errors, errors
    for word in words:
        assert word in errors[loc], errors[loc]


def test_cuda_on_a_server_without_a_gpu_is_422_saying_so(client):
    if any(d.startswith("cuda") for d in client.get("/api/health").json()["devices"]):
        pytest.skip("this server has a GPU")
    for device in ("cuda", "cuda:1"):
        errors = field_errors(client.post("/api/jobs", json={"kind": "linear", "device": device}))
        assert "not available" in errors[("body", "device")] and "cpu" in errors[("body", "device")]
    errors = field_errors(client.post("/api/jobs", json={"kind": "linear", "device": "tpu"}))
    assert "'tpu'" in errors[("body", "device")]


def test_job_ids_are_validated_and_unknown_ones_are_404(client):
    unknown = uuid.uuid4().hex
    for method, path in [
        ("GET", ""),
        ("GET", "/metrics"),
        ("GET", "/events"),
        ("GET", "/model"),
        ("POST", "/cancel"),
        ("DELETE", ""),
    ]:
        response = client.request(method, f"/api/jobs/{unknown}{path}")
        assert response.status_code == 404, (method, path)
        assert unknown in response.json()["detail"]
        # Not a uuid4 in hex: refused before anything looks it up.
        assert client.request(method, f"/api/jobs/{unknown.upper()}{path}").status_code == 422
        assert client.request(method, f"/api/jobs/..%2F..%2Fetc%2Fpasswd{path}").status_code in (404, 422)


def test_conflicts_are_409(client):
    running = post_job(client, "linear", LONG_LINEAR)
    assert client.delete(f"/api/jobs/{running['id']}").status_code == 409
    no_model = client.get(f"/api/jobs/{running['id']}/model")
    assert no_model.status_code == 409 and "no trained weights" in no_model.json()["detail"]
    predict = client.post(f"/api/jobs/{running['id']}/predict", json={"inputs": [1.0]})
    assert predict.status_code == 409
    client.post(f"/api/jobs/{running['id']}/cancel")
    wait_for(client, running["id"], timeout=30)  # a deadline for a busy machine, not a timing
    second = client.post(f"/api/jobs/{running['id']}/cancel")
    assert second.status_code == 409 and "queued or running" in second.json()["detail"]


def test_bad_query_parameters_are_422(client):
    job = wait_for(client, post_job(client, "linear", {"epochs": 20})["id"])
    assert client.get(f"/api/jobs/{job['id']}/metrics", params={"max_points": 1}).status_code == 422
    assert client.get(f"/api/jobs/{job['id']}/metrics", params={"format": "xml"}).status_code == 422
    assert client.get("/api/jobs", params={"status": "sleeping"}).status_code == 422
    assert client.get("/api/jobs", params={"limit": 0}).status_code == 422
    assert client.get(f"/api/jobs/{job['id']}/events", headers={"Last-Event-ID": "soon"}).status_code == 422
