"""Playable runs through the API on a real server with a real worker: pause, step, resume, live
changes, fork, and resume after a crash -- each compared exactly with a run never stopped.

No test races the clock: a job is created paused (or held in the queue behind a long "blocker" job
on the one worker, and paused there: a queued job pauses at once), and then stepped by a chosen
number of steps, after which it pauses by itself. Where a *running* job must be paused, the job is
long and the test checks that premise and says so if it ever fails.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import tiny_cifar_env
from tests.service.helpers import FINAL, LONG_LINEAR, post_job, wait_for, wait_until_step, worker_pid
from tests.service.server_process import Server
from tests.service.sse import iter_sse

torch = pytest.importorskip("torch")

LINEAR = {"epochs": 300, "optimizer": "manual"}
CIFAR = {
    "dataset": "cifar10",
    "model": "conv",
    "epochs": 3,
    "batch_size": 16,  # the tiny set: 160 training images, 10 steps an epoch
    "augment": True,
    "optimizer": "nesterov_onecycle",
    "lr": 0.05,
}
CASES = {
    "linear-manual": ("linear", LINEAR),
    "linear-autograd": ("linear", {**LINEAR, "optimizer": "autograd"}),
    "linear-sgd": ("linear", {**LINEAR, "optimizer": "sgd"}),
    "linear-adam": ("linear", {**LINEAR, "optimizer": "adam", "lr": 0.1}),
    "mlp-adam": ("mlp", {"epochs": 300, "optimizer": "adam", "lr": 0.01}),
    "cifar-conv-onecycle": ("cifar", CIFAR),
}


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One worker, so a job queued behind another stays queued until the test lets it go."""
    env = tiny_cifar_env(tmp_path_factory.mktemp("tiny-cifar"))
    srv = Server(tmp_path_factory.mktemp("playable-home"), env=env, workers=1).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(one_worker: Server) -> Iterator[httpx.Client]:
    with one_worker.client() as c:
        yield c


@contextlib.contextmanager
def blocked(client: httpx.Client) -> Iterator[None]:
    """The worker busy with a long job until the block ends (it is cancelled then)."""
    blocker = post_job(client, "linear", LONG_LINEAR)
    wait_for(client, blocker["id"], "running")
    try:
        yield
    finally:
        client.post(f"/api/jobs/{blocker['id']}/cancel")
        wait_for(client, blocker["id"])


def held_job(client: httpx.Client, kind: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """A job created paused, before its first step."""
    job = post_job(client, kind, params, seed=seed, paused=True)
    assert job["status"] == "paused", job
    return job


def step(client: httpx.Client, job_id: str, **amount: int) -> dict[str, Any]:
    response = client.post(f"/api/jobs/{job_id}/step", json=amount or None)
    assert response.status_code == 202, response.text
    return wait_for(client, job_id, {"paused", *FINAL}, timeout=180)


def finish(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.post(f"/api/jobs/{job_id}/resume")
    assert response.status_code == 202, response.text
    job = wait_for(client, job_id, timeout=180)
    assert job["status"] == "succeeded", job
    return job


def rows(client: httpx.Client, job_id: str, **query: Any) -> list[list[Any]]:
    table = client.get(f"/api/jobs/{job_id}/metrics", params=query).json()
    return [[*row] for row in table["rows"]], table["columns"]


def weights(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/jobs/{job_id}/model")
    assert response.status_code == 200, response.text
    return torch.load(io.BytesIO(response.content), weights_only=True)


def running_past_a_checkpoint(client: httpx.Client, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """A linear job with a checkpoint at step 1000 (held, stepped), resumed and running past it:
    the premise of a crash test, asserted."""
    job = held_job(client, "linear", params, seed)
    step(client, job["id"], steps=1000)
    assert client.post(f"/api/jobs/{job['id']}/resume").status_code == 202
    wait_until_step(client, job["id"], 1001)
    running = wait_for(client, job["id"], {"running", *FINAL})  # its status is stored a moment after its first points
    assert running["status"] == "running" and running["checkpoint_step"] >= 1000, f"premise: {running}"
    return running


def assert_same_weights(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs"


_references: dict[tuple[str, str, int], dict[str, Any]] = {}


def reference(client: httpx.Client, kind: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """The same run never stopped (once per module)."""
    key = (str(client.base_url), repr((kind, sorted(params.items()))), seed)  # per server: Ray reuses these tests
    if key not in _references:
        job = post_job(client, kind, params, seed=seed)
        job = wait_for(client, job["id"], timeout=180)
        assert job["status"] == "succeeded", job
        _references[key] = {"job": job, "rows": rows(client, job["id"]), "weights": weights(client, job["id"])}
    return _references[key]


# ----------------------------------------------------------------------------------------------
# Pause, step, resume: the same run as one never stopped


@pytest.mark.parametrize("case", CASES)
def test_paused_stepped_and_resumed_equals_a_run_never_stopped(client, case):
    kind, params = CASES[case]
    seed = 11
    expected = reference(client, kind, params, seed)
    total_steps = expected["rows"][0][-1][0]
    k = random.Random(case).randrange(2, total_steps - 2)  # a mid-epoch step for cifar

    job = held_job(client, kind, params, seed)
    paused = step(client, job["id"], steps=k)
    assert paused["status"] == "paused", paused
    assert paused["progress"]["step"] == k and paused["checkpoint_step"] == k and paused["resumable"]
    partial, _ = rows(client, job["id"])
    assert [r[0] for r in partial][-1] == k

    finished = finish(client, job["id"])
    got_rows, got_columns = rows(client, job["id"])
    assert got_columns == expected["rows"][1]
    assert got_rows == expected["rows"][0], "every metric row equal, none twice, none missing"
    assert_same_weights(weights(client, job["id"]), expected["weights"])
    assert finished["result"]["train_loss"] == expected["job"]["result"]["train_loss"]


def test_stepping_the_linear_fit_one_epoch_at_a_time_walks_gradient_descent(client):
    expected = reference(client, "linear", LINEAR, 5)
    job = held_job(client, "linear", LINEAR, 5)
    for n in (1, 2, 3):
        paused = step(client, job["id"])  # one epoch: one gradient step
        assert paused["status"] == "paused" and paused["progress"]["step"] == n
        got, columns = rows(client, job["id"])
        assert len(got) == n, "exactly one more point per step"
        w, b = columns.index("w"), columns.index("b")
        assert [(r[w], r[b]) for r in got] == [(r[w], r[b]) for r in expected["rows"][0][:n]]
    finish(client, job["id"])


def test_a_cifar_epoch_step_runs_to_the_end_of_the_epoch(client):
    job = held_job(client, "cifar", CIFAR, 3)
    paused = step(client, job["id"], epochs=1)
    assert paused["status"] == "paused" and paused["progress"]["epoch"] == 1
    got, columns = rows(client, job["id"])
    assert got[-1][columns.index("val_acc")] is not None, "the epoch's evaluation is in"
    finish(client, job["id"])


# ----------------------------------------------------------------------------------------------
# Live changes and forks


def test_a_live_lr_change_equals_a_fork_with_that_lr(client):
    params, seed, k = {**LINEAR, "optimizer": "adam", "lr": 0.1}, 21, 120
    parent = reference(client, "linear", params, seed)

    job = held_job(client, "linear", params, seed)
    step(client, job["id"], steps=k)
    response = client.patch(f"/api/jobs/{job['id']}", json={"params": {"lr": 0.03}})
    assert response.status_code == 202, response.text
    changed = response.json()
    assert changed["params"]["lr"] == 0.03
    assert changed["changes"] == [{"step": k, "params": {"lr": 0.03}, "before": {"lr": 0.1}}]
    finish(client, job["id"])

    response = client.post(
        "/api/jobs",
        json={"kind": "linear", "params": {"lr": 0.03}, "fork": {"job_id": parent["job"]["id"], "step": k}},
    )
    assert response.status_code == 201, response.text
    fork = wait_for(client, response.json()["id"], timeout=120)
    assert fork["status"] == "succeeded", fork
    assert fork["parent_id"] == parent["job"]["id"] and fork["fork_step"] == k and fork["seed"] == seed

    assert_same_weights(weights(client, job["id"]), weights(client, fork["id"]))
    fork_rows, columns = rows(client, fork["id"])
    assert fork_rows[0][0] == k + 1, "a fork's first point is the step after the fork"
    lr = columns.index("lr")
    assert {r[lr] for r in fork_rows} == {0.03}
    whole, _ = rows(client, fork["id"], with_parent="true")
    assert whole[:k] == parent["rows"][0][:k] and whole[k:] == fork_rows
    changed_rows, _ = rows(client, job["id"])
    assert changed_rows == whole, "the changed run and parent-then-fork are the same history"


def test_a_change_to_a_running_job_is_a_control_event_at_the_step_it_took_effect(client):
    job = post_job(client, "linear", {**LONG_LINEAR, "optimizer": "sgd", "lr": 0.01}, seed=1)
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
        events = iter_sse(stream)
        for event in events:
            if event.event == "metric":
                break
        response = client.patch(f"/api/jobs/{job['id']}", json={"params": {"lr": 0.005}})
        assert response.status_code == 202, response.text
        control = next(e for e in events if e.event == "control")
        client.post(f"/api/jobs/{job['id']}/cancel")
        after = [e for e in events]
    k = control.data["step"]
    assert control.data["params"] == {"lr": 0.005}
    assert after[-1].event == "done" and after[-1].data["status"] == "cancelled"
    table, columns = rows(client, job["id"])
    lr = columns.index("lr")
    assert all(r[lr] == 0.01 for r in table if r[0] <= k) and all(r[lr] == 0.005 for r in table if r[0] > k)
    assert table[-1][0] > k, "the job trained on after the change (premise: it was long enough)"
    stored = client.get(f"/api/jobs/{job['id']}").json()
    assert stored["changes"][0]["step"] == k and stored["params"]["lr"] == 0.005


def test_train_longer_forks_a_finished_run_at_its_last_step(client):
    parent = reference(client, "linear", LINEAR, 31)
    last = parent["job"]["progress"]["step"]
    response = client.post(
        "/api/jobs",
        json={"kind": "linear", "params": {"epochs": last + 50}, "fork": {"job_id": parent["job"]["id"], "step": last}},
    )
    assert response.status_code == 201, response.text
    child = wait_for(client, response.json()["id"], timeout=120)
    assert child["status"] == "succeeded", child
    got, _ = rows(client, child["id"])
    assert [r[0] for r in got] == list(range(last + 1, last + 51))


# ----------------------------------------------------------------------------------------------
# Workers, crashes


def test_a_paused_job_gives_its_worker_back(client):
    first = post_job(client, "linear", LONG_LINEAR, seed=2)
    wait_until_step(client, first["id"], 1)
    response = client.post(f"/api/jobs/{first['id']}/pause")
    assert response.status_code == 202, response.text
    paused = wait_for(client, first["id"], {"paused", *FINAL})
    assert paused["status"] == "paused", f"premise: the long job was still running when paused: {paused}"
    second = post_job(client, "linear", {"epochs": 200}, seed=3)
    assert wait_for(client, second["id"])["status"] == "succeeded"  # one worker: it was free
    assert client.get(f"/api/jobs/{first['id']}").json()["status"] == "paused"
    assert client.post(f"/api/jobs/{first['id']}/cancel").json()["status"] == "cancelled"


def test_kill_9_of_the_server_then_resume_finishes_with_the_weights_of_a_run_never_stopped(
    server_factory, tmp_path
):
    params, seed = {"epochs": 30_000, "optimizer": "sgd"}, 4
    srv = server_factory(workers=1)
    with srv.client() as c:
        expected = post_job(c, "linear", params, seed=seed)
        expected = wait_for(c, expected["id"], timeout=180)
        expected_weights = weights(c, expected["id"])
        expected_rows, _ = rows(c, expected["id"])
        job = running_past_a_checkpoint(c, params, seed)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(30)
    srv.restart()
    with srv.client() as c:
        interrupted = c.get(f"/api/jobs/{job['id']}").json()
        assert interrupted["status"] == "interrupted" and interrupted["resumable"], interrupted
        # The run cut short counts until about its last stored point; it is not running since.
        assert interrupted["running_since"] is None and job["running_since"] is not None
        assert interrupted["train_seconds"] >= job["train_seconds"] > 0
        finish(c, job["id"])
        assert_same_weights(weights(c, job["id"]), expected_weights)
        got, _ = rows(c, job["id"])
        assert got == expected_rows, "no point lost or twice across the crash"


# ----------------------------------------------------------------------------------------------
# Bad input: a clear 4xx, nothing stored changes


def test_commands_on_a_finished_job_are_409_and_change_nothing(client):
    done = reference(client, "linear", LINEAR, 5)["job"]
    for action in ("pause", "resume", "step"):
        response = client.post(f"/api/jobs/{done['id']}/{action}")
        assert response.status_code == 409, response.text
        assert "succeeded" in response.json()["detail"]
    response = client.patch(f"/api/jobs/{done['id']}", json={"params": {"lr": 0.5}})
    assert response.status_code == 409
    assert client.get(f"/api/jobs/{done['id']}").json() == {**done, "progress": done["progress"]}


def test_unknown_jobs_are_404(client):
    missing = "0" * 32
    for action in ("pause", "resume", "step"):
        assert client.post(f"/api/jobs/{missing}/{action}").status_code == 404
    assert client.patch(f"/api/jobs/{missing}", json={"params": {"lr": 0.5}}).status_code == 404
    response = client.post("/api/jobs", json={"kind": "linear", "fork": {"job_id": missing, "step": 1}})
    assert response.status_code == 404 and missing in response.json()["detail"]


def test_bad_changes_name_the_parameter_and_what_is_allowed(client):
    job = held_job(client, "linear", LINEAR, 8)
    before = client.get(f"/api/jobs/{job['id']}").json()
    response = client.patch(f"/api/jobs/{job['id']}", json={"params": {"optimizer": "adam"}})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "params", "optimizer"] and "lr" in error["msg"] and "epochs" in error["msg"]
    response = client.patch(f"/api/jobs/{job['id']}", json={"params": {"lr": -1}})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == "lr"
    response = client.post(f"/api/jobs/{job['id']}/step", json={"epochs": 1, "steps": 1})
    assert response.status_code == 422
    assert client.get(f"/api/jobs/{job['id']}").json() == before
    client.post(f"/api/jobs/{job['id']}/cancel")


def test_forks_that_cannot_be_made_say_why(client):
    parent = reference(client, "linear", LINEAR, 5)["job"]
    cases = [
        ({"kind": "mlp", "fork": {"job_id": parent["id"], "step": 3}}, 422, "kind"),
        ({"kind": "linear", "fork": {"job_id": parent["id"], "step": 10**6}}, 422, "step"),
        ({"kind": "linear", "params": {"optimizer": "adam"}, "fork": {"job_id": parent["id"], "step": 3}}, 422, "live"),
    ]
    for body, code, word in cases:
        response = client.post("/api/jobs", json=body)
        assert response.status_code == code, response.text
        assert word in response.text
    # A job paused before its first step has no checkpoint to fork from at step 1.
    held = held_job(client, "linear", LINEAR, 9)
    response = client.post("/api/jobs", json={"kind": "linear", "fork": {"job_id": held["id"], "step": 0}})
    assert response.status_code == 201, "step 0 needs no checkpoint"
    wait_for(client, response.json()["id"])
    client.post(f"/api/jobs/{held['id']}/cancel")


def test_pause_and_cancel_racing_end_in_one_state(client):
    job = post_job(client, "linear", LONG_LINEAR, seed=12)
    wait_until_step(client, job["id"], 1)
    with httpx.Client(base_url=client.base_url, timeout=60) as other:
        pause = client.post(f"/api/jobs/{job['id']}/pause")
        cancel = other.post(f"/api/jobs/{job['id']}/cancel")
    assert pause.status_code in (202, 409) and cancel.status_code in (202, 409)
    final = wait_for(client, job["id"])
    assert final["status"] == "cancelled", final
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
        events = list(iter_sse(stream))
    assert [e.data["status"] for e in events if e.event == "status"][-1] == "cancelled"
    assert events[-1].event == "done"


def test_a_job_created_paused_holds_no_worker_and_starts_when_stepped(client):
    job = held_job(client, "linear", LINEAR, 15)
    assert job["progress"]["step"] in (None, 0) and job["started_at"] is None
    other = post_job(client, "linear", {"epochs": 50}, seed=3)
    assert wait_for(client, other["id"])["status"] == "succeeded", "one worker, and it was free"
    assert client.get(f"/api/jobs/{job['id']}").json()["status"] == "paused"
    paused = step(client, job["id"], steps=7)
    assert paused["status"] == "paused" and paused["progress"]["step"] == 7
    expected = reference(client, "linear", LINEAR, 15)
    finish(client, job["id"])
    assert rows(client, job["id"])[0] == expected["rows"][0]


def test_a_runs_training_time_counts_its_runs_not_its_pauses(client):
    # Held for 2 s between two steps: its training time leaves the pause out, its wall time does not.
    job = held_job(client, "linear", {"epochs": 20_000}, 8)
    assert job["train_seconds"] is None and job["running_since"] is None
    first = step(client, job["id"], steps=2000)
    assert first["train_seconds"] > 0 and first["running_since"] is None
    time.sleep(2)
    second = step(client, job["id"], steps=2000)
    assert second["train_seconds"] > first["train_seconds"]
    done = finish(client, job["id"])
    wall = (datetime.fromisoformat(done["finished_at"]) - datetime.fromisoformat(done["started_at"])).total_seconds()
    assert second["train_seconds"] < done["train_seconds"] <= wall - 2
    assert done["running_since"] is None
    listed = client.get("/api/jobs", params={"kind": "linear", "limit": 100}).json()["items"]
    assert next(j for j in listed if j["id"] == job["id"])["train_seconds"] == done["train_seconds"]


def test_a_queued_job_paused_does_not_start_until_resumed(client):
    with blocked(client):
        job = post_job(client, "linear", LINEAR, seed=16)
        response = client.post(f"/api/jobs/{job['id']}/pause")
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "paused"
    other = post_job(client, "linear", {"epochs": 50}, seed=3)
    assert wait_for(client, other["id"])["status"] == "succeeded", "the blocker's worker went to the next job"
    assert client.get(f"/api/jobs/{job['id']}").json()["status"] == "paused"
    finish(client, job["id"])
    assert rows(client, job["id"])[0] == reference(client, "linear", LINEAR, 16)["rows"][0]


def test_a_change_to_a_queued_job_applies_from_its_first_step(client):
    with blocked(client):
        job = post_job(client, "linear", {**LINEAR, "optimizer": "sgd"}, seed=13)
        response = client.patch(f"/api/jobs/{job['id']}", json={"params": {"lr": 0.02, "epochs": 40}})
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "queued" and response.json()["params"]["lr"] == 0.02
    done = wait_for(client, job["id"])
    assert done["status"] == "succeeded", done
    table, columns = rows(client, job["id"])
    assert len(table) == 40 and {r[columns.index("lr")] for r in table} == {0.02}


def test_a_job_whose_worker_was_killed_resumes_from_its_checkpoint(client, one_worker):
    params, seed = {"epochs": 30_000, "optimizer": "adam", "lr": 0.01}, 14
    expected = reference(client, "linear", params, seed)
    job = running = running_past_a_checkpoint(client, params, seed)
    os.kill(worker_pid(running), signal.SIGKILL)
    failed = wait_for(client, job["id"])
    assert failed["status"] == "failed" and "died" in failed["error"] and failed["resumable"], failed
    finish(client, job["id"])
    assert_same_weights(weights(client, job["id"]), expected["weights"])
    got, _ = rows(client, job["id"])
    assert got == expected["rows"][0]


def test_a_resumed_job_still_queued_at_a_restart_goes_on_from_its_checkpoint(server_factory):
    params, seed, k = {**LINEAR, "optimizer": "adam", "lr": 0.1}, 15, 100
    srv = server_factory(workers=1)
    with srv.client() as c:
        expected = reference(c, "linear", params, seed)
        job = held_job(c, "linear", params, seed)
        step(c, job["id"], steps=k)
        blocker = post_job(c, "linear", LONG_LINEAR)
        wait_for(c, blocker["id"], "running")
        assert c.post(f"/api/jobs/{job['id']}/resume").json()["status"] == "queued"
    srv.restart()  # a graceful stop: the blocker is interrupted, the resumed job is queued again
    with srv.client() as c:
        done = wait_for(c, job["id"], timeout=120)
        assert done["status"] == "succeeded", done
        got, _ = rows(c, job["id"])
        assert got == expected["rows"][0], "it went on from step k, not from the start"
        assert_same_weights(weights(c, job["id"]), expected["weights"])
