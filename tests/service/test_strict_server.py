"""A server with an API token and tight limits: 401, 422 naming the limit, 429, 413; then a restart.

One dedicated server (one worker) for the module; the last test stops and restarts it.
"""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from app.models import HEAVY_RESULT_KEYS

from tests.service.helpers import field_errors, post_job, wait_for, wait_until_step
from tests.service.sse import SseEvent, iter_sse, metric_points, read_events

TOKEN = "s3cret-token-for-tests"
LONG_EPOCHS = 50_000  # the server's limit; a linear job of this many runs for many seconds
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMITS = {
    "PLAYGROUND_API_TOKEN": TOKEN,
    "PLAYGROUND_MAX_QUEUED": "2",
    "PLAYGROUND_MAX_EPOCHS": "50000",
    "PLAYGROUND_MAX_DATA_POINTS": "50",
    "PLAYGROUND_MAX_UPLOAD_BYTES": "20000",
}


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    from tests.service.server_process import Server

    srv = Server(tmp_path_factory.mktemp("strict-home"), env=LIMITS, workers=1).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(strict):
    with strict.client(headers=AUTH) as c:
        yield c


@pytest.fixture(scope="module")
def anonymous(strict):
    with strict.client() as c:
        yield c


def test_changes_need_the_token_and_reads_do_not(client, anonymous):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = anonymous.post("/api/jobs", json={"kind": "linear"}, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in response.json()["detail"]

    response = client.post("/api/jobs", json={"kind": "linear", "params": {"epochs": 100}})
    assert response.status_code == 201
    job = wait_for(anonymous, response.json()["id"])  # reads are open
    job_id = job["id"]
    assert anonymous.get(f"/api/jobs/{job_id}/metrics").status_code == 200
    assert anonymous.get("/api/kinds").status_code == 200

    assert anonymous.post(f"/api/jobs/{job_id}/predict", json={"inputs": [1.0]}).status_code == 401
    assert client.post(f"/api/jobs/{job_id}/predict", json={"inputs": [1.0]}).status_code == 200
    assert anonymous.post(f"/api/jobs/{job_id}/cancel").status_code == 401
    assert anonymous.delete(f"/api/jobs/{job_id}").status_code == 401
    assert client.delete(f"/api/jobs/{job_id}").status_code == 204


def test_limits_are_422_naming_the_field_and_the_limit(client):
    errors = field_errors(client.post("/api/jobs", json={"kind": "linear", "params": {"epochs": 50001}}))
    message = errors[("body", "params", "epochs")]
    assert "50000" in message and "PLAYGROUND_MAX_EPOCHS" in message

    data = [[float(i), 2.0 * i] for i in range(51)]
    errors = field_errors(client.post("/api/jobs", json={"kind": "mlp", "params": {"data": data}}))
    message = errors[("body", "params", "data")]
    assert "51" in message and "50" in message and "PLAYGROUND_MAX_DATA_POINTS" in message

    schema = {k["kind"]: k["params_schema"] for k in client.get("/api/kinds").json()}
    assert schema["linear"]["properties"]["epochs"]["maximum"] == LONG_EPOCHS  # the form shows the server's limit


def test_a_full_queue_is_429(client):
    long_params = {"epochs": LONG_EPOCHS}  # seconds each: the queue stays full while the test looks
    running = client.post("/api/jobs", json={"kind": "linear", "params": long_params}).json()
    wait_until_step(client, running["id"], 1)
    queued = [client.post("/api/jobs", json={"kind": "linear", "params": long_params}) for _ in range(2)]
    assert [r.status_code for r in queued] == [201, 201]
    full = client.post("/api/jobs", json={"kind": "linear", "params": long_params})
    assert full.status_code == 429
    assert "PLAYGROUND_MAX_QUEUED=2" in full.json()["detail"] and full.headers["retry-after"]
    for job in [running] + [r.json() for r in queued]:
        client.post(f"/api/jobs/{job['id']}/cancel")
        wait_for(client, job["id"], timeout=30)


def test_an_upload_over_the_limit_is_413(client):
    job = wait_for(client, client.post("/api/jobs", json={"kind": "linear", "params": {"epochs": 10}}).json()["id"])
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * (200_000)
    response = client.post(f"/api/jobs/{job['id']}/predict", files={"file": ("big.png", big, "image/png")})
    assert response.status_code == 413


# ----------------------------------------------------------------------------------------------
# Stop and start again: nothing lost


class Watcher(threading.Thread):
    """Reads a job's stream in the background until the server ends it."""

    def __init__(self, url: str, job_id: str) -> None:
        super().__init__(daemon=True)
        self.url, self.job_id = url, job_id
        self.events: list[SseEvent] = []
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with (
                httpx.Client(base_url=self.url, timeout=60, headers=AUTH) as client,
                client.stream("GET", f"/api/jobs/{self.job_id}/events") as response,
            ):
                for event in iter_sse(response):
                    self.events.append(event)
        except httpx.HTTPError as exc:  # the stream may end abruptly: recorded for the test to see
            self.error = exc


def test_restart_keeps_history_interrupts_running_jobs_and_runs_queued_ones(strict):
    srv = strict
    with srv.client(headers=AUTH) as client:
        finished = wait_for(client, post_job(client, "linear", {"epochs": 300})["id"])
        running = post_job(client, "linear", {"epochs": LONG_EPOCHS})
        wait_until_step(client, running["id"], 200)
        queued = post_job(client, "linear", {"epochs": 300})  # one worker: it waits
        assert client.get(f"/api/jobs/{queued['id']}").json()["status"] == "queued"
        watcher = Watcher(srv.url, running["id"])
        watcher.start()
        while len(watcher.events) < 3:
            time.sleep(0.05)

    took = srv.stop(signal.SIGTERM)  # also fails if a worker is left behind
    assert took < 8, f"stopping with a watcher attached took {took:.1f} s"
    assert srv.proc.returncode == 0, f"SIGTERM (docker stop) must end cleanly, got {srv.proc.returncode}"
    watcher.join(5)
    assert not watcher.is_alive(), "the server ended but the SSE stream did not"
    assert watcher.error is None, watcher.error  # ended cleanly by the server
    assert watcher.events[-1].event != "done"  # cut off by the stop, not finished

    # Reads need the token from now on.
    srv.env["PLAYGROUND_AUTH_READS"] = "true"
    srv.start()
    with srv.client() as anonymous:
        refused = anonymous.get("/api/jobs")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    # What a page's EventSource can send: the token as a cookie. It opens reads, never changes.
    with srv.client(cookies={"playground_token": TOKEN}) as browser_like:
        assert browser_like.get("/api/jobs").status_code == 200
        assert browser_like.get(f"/api/jobs/{finished['id']}").json()["status"] == "succeeded"
        assert browser_like.post("/api/jobs", json={"kind": "linear"}).status_code == 401
        assert browser_like.post(f"/api/jobs/{finished['id']}/cancel").status_code == 401
    with srv.client(cookies={"playground_token": "wrong"}) as wrong_cookie:
        assert wrong_cookie.get("/api/jobs").status_code == 401
    with srv.client(headers=AUTH) as client:
        history = {j["id"]: j for j in client.get("/api/jobs").json()["items"]}
        assert {finished["id"], running["id"], queued["id"]} <= set(history)

        # The job that ran at the stop: interrupted, with every point it had sent.
        interrupted = history[running["id"]]
        assert interrupted["status"] == "interrupted" and "server stopped" in interrupted["error"]
        metrics = client.get(f"/api/jobs/{running['id']}/metrics").json()
        seen_steps = [p["step"] for p in metric_points(watcher.events)]
        assert metrics["total"] >= len(seen_steps) >= 1
        assert [row[0] for row in metrics["rows"]] == list(range(1, metrics["total"] + 1))
        replay = read_events(srv.url, running["id"], headers=AUTH)
        assert [e.id for e in replay] == list(range(1, len(replay) + 1))
        assert [(e.id, e.data) for e in replay[: len(watcher.events)]] == [(e.id, e.data) for e in watcher.events]
        assert replay[-1].event == "done" and replay[-1].data["status"] == "interrupted"
        assert len(metric_points(replay)) == metrics["total"]
        # A client that had seen some of it resumes with the same ids.
        tail = read_events(srv.url, running["id"], last_event_id=watcher.events[-1].id, headers=AUTH)
        assert [e.id for e in tail] == [e.id for e in replay if e.id > watcher.events[-1].id]

        # The queued job runs after the restart; the finished one is as it was.
        rerun = wait_for(client, queued["id"], timeout=60)
        assert rerun["status"] == "succeeded" and rerun["progress"]["step"] == 300
        events = read_events(srv.url, queued["id"], headers=AUTH)
        assert [e.id for e in events] == list(range(1, len(events) + 1))
        assert [e.data["status"] for e in events if e.event == "status"] == ["queued", "running", "succeeded"]
        # The list carries the result abridged (no samples of points); the rest is as it was.
        listed = history[finished["id"]]
        assert listed["result_abridged"] and listed["result"] == {
            k: v for k, v in finished["result"].items() if k not in HEAVY_RESULT_KEYS
        }
        assert client.get(f"/api/jobs/{finished['id']}/metrics").json()["total"] == 300
        assert client.post(f"/api/jobs/{finished['id']}/predict", json={"inputs": [50.0]}).status_code == 200

        # Ctrl-C with a watcher on a running job: just as quick.
        running = post_job(client, "linear", {"epochs": LONG_EPOCHS})
        wait_until_step(client, running["id"], 10)
        watcher = Watcher(srv.url, running["id"])
        watcher.start()
        while not watcher.events:
            time.sleep(0.05)
    took = srv.stop(signal.SIGINT)
    assert took < 8, f"Ctrl-C with a watcher attached took {took:.1f} s"
    assert srv.proc.returncode == 0, f"Ctrl-C must end cleanly, got {srv.proc.returncode}"
    watcher.join(5)
    assert not watcher.is_alive()
