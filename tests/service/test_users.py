"""A class on a real server: two students and a teacher, added with ``playground users add``.

Everyone reads every run; a student changes only their own (403 naming the owner otherwise), a
teacher and the admin token change any; a fork is the forker's; no token or a wrong one is 401. The
queue serves users in turn, and the per-user limits answer 429 naming the limit.

No test races the clock: jobs that must wait are created paused (they hold no worker), or queued
behind a "blocker" that holds the one worker until the test cancels it, and the test checks that
premise before it relies on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.helpers import FINAL, post_job, wait_for
from tests.service.server_process import REPO_ROOT, Server

ADMIN_TOKEN = "class-admin-token-0123456789"
SHORT = {"epochs": 5}
# A blocker that outlives any test step on a loaded machine (minutes: 100,000 epochs of a wide
# network over 20,000 points); the test cancels it.
LONG = {"hidden": 1024, "epochs": 100_000, "data": [[i / 100, i / 50] for i in range(20_000)]}
ENV = {"PLAYGROUND_API_TOKEN": ADMIN_TOKEN}


def users_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "users", *args],
        env={**env, "PLAYGROUND_HOME": str(home)},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def add_user(home: Path, name: str, role: str) -> str:
    proc = users_cli(home, "add", name, "--role", role, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["token"]


class Classroom:
    def __init__(self, server: Server, tokens: dict[str, str]) -> None:
        self.server = server
        self.clients = {
            name: server.client(headers={"Authorization": f"Bearer {token}"}) for name, token in tokens.items()
        }
        self.tokens = tokens

    def __getitem__(self, name: str) -> httpx.Client:
        return self.clients[name]

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def start_class(home: Path, env: dict[str, str], workers: int = 1) -> tuple[Server, dict[str, str]]:
    tokens = {"ann": add_user(home, "ann", "student"), "ben": add_user(home, "ben", "student")}
    tokens["tess"] = add_user(home, "tess", "teacher")
    tokens["admin"] = ADMIN_TOKEN
    return Server(home, env=env, workers=workers).start(), tokens


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Classroom]:
    server, tokens = start_class(tmp_path_factory.mktemp("class-home"), ENV)
    room = Classroom(server, tokens)
    yield room
    room.close()
    server.stop()


def held(client: httpx.Client, params: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    job = post_job(client, "linear", params or SHORT, paused=True, **fields)
    assert job["status"] == "paused", job
    return job


# ----------------------------------------------------------------------------------------------
# Reading and owning


def test_each_user_sees_every_run_and_who_owns_it(school: Classroom):
    anns = held(school["ann"])
    bens = held(school["ben"])
    assert (anns["owner"], bens["owner"]) == ("ann", "ben")
    for name in ("ann", "ben", "tess", "admin"):
        listed = {job["id"]: job["owner"] for job in school[name].get("/api/jobs", params={"limit": 500}).json()["items"]}
        assert listed[anns["id"]] == "ann" and listed[bens["id"]] == "ben", name
        assert school[name].get(f"/api/jobs/{bens['id']}").json()["owner"] == "ben"


def test_me_names_the_signed_in_user(school: Classroom):
    assert school["ann"].get("/api/me").json() == {"name": "ann", "role": "student"}
    assert school["tess"].get("/api/me").json() == {"name": "tess", "role": "teacher"}
    assert school["admin"].get("/api/me").json() == {"name": None, "role": "admin"}
    # The pages' read cookie signs in for reads.
    with school.server.client(cookies={"playground_token": school.tokens["ben"]}) as browser:
        assert browser.get("/api/me").json() == {"name": "ben", "role": "student"}


@pytest.mark.parametrize(
    ("method", "path", "body", "action"),
    [
        ("POST", "/cancel", None, "cancel"),
        ("DELETE", "", None, "delete"),
        ("PATCH", "", {"params": {"lr": 0.001}}, "change"),
        ("POST", "/pause", None, "pause"),
        ("POST", "/resume", None, "resume"),
        ("POST", "/step", {"epochs": 1}, "step"),
    ],
)
def test_a_student_cannot_change_anothers_run(school: Classroom, method, path, body, action):
    job = held(school["ann"])
    response = school["ben"].request(method, f"/api/jobs/{job['id']}{path}", json=body)
    assert response.status_code == 403, response.text
    detail = response.json()["detail"]
    assert "ann" in detail and action in detail and "ben" in detail, detail
    after = school["ben"].get(f"/api/jobs/{job['id']}").json()
    assert after["status"] == "paused" and after["params"] == job["params"] and after["changes"] == []
    assert after["progress"]["step"] in (None, 0)


def test_the_owner_and_a_teacher_change_a_run(school: Classroom):
    job = held(school["ann"])
    url = f"/api/jobs/{job['id']}"
    assert school["ann"].patch(url, json={"params": {"lr": 0.002}}).status_code == 202
    assert school["tess"].patch(url, json={"params": {"lr": 0.003}}).status_code == 202
    assert school["admin"].patch(url, json={"params": {"lr": 0.004}}).status_code == 202
    assert [c["params"]["lr"] for c in school["ann"].get(url).json()["changes"]] == [0.002, 0.003, 0.004]
    assert school["ann"].post(f"{url}/step", json={"epochs": 1}).status_code == 202
    stepped = wait_for(school["ann"], job["id"], {"paused", *FINAL})
    assert stepped["status"] == "paused" and stepped["progress"]["step"] == 1
    assert school["tess"].post(f"{url}/cancel").status_code == 202
    wait_for(school["tess"], job["id"], "cancelled")
    assert school["tess"].delete(url).status_code == 204
    assert school["ann"].get(url).status_code == 404
    own = held(school["ben"])
    assert school["ben"].post(f"/api/jobs/{own['id']}/cancel").status_code == 202
    wait_for(school["ben"], own["id"], "cancelled")
    assert school["ben"].delete(f"/api/jobs/{own['id']}").status_code == 204


def test_a_fork_of_anothers_run_is_the_forkers(school: Classroom):
    parent = held(school["ann"])
    fork = post_job(
        school["ben"], "linear", {"lr": 0.005}, fork={"job_id": parent["id"], "step": 0}, paused=True
    )
    assert fork["owner"] == "ben" and fork["parent_id"] == parent["id"]
    assert school["ann"].post(f"/api/jobs/{fork['id']}/cancel").status_code == 403
    assert school["ben"].post(f"/api/jobs/{fork['id']}/cancel").status_code == 202
    wait_for(school["ben"], fork["id"], "cancelled")


def test_anyone_signed_in_predicts_with_anyones_model(school: Classroom):
    job = post_job(school["ann"], "linear", SHORT)
    done = wait_for(school["ann"], job["id"], timeout=120)
    assert done["status"] == "succeeded", done
    answer = school["ben"].post(f"/api/jobs/{job['id']}/predict", json={"inputs": [35.7]})
    assert answer.status_code == 200 and len(answer.json()["outputs"]) == 1, answer.text
    assert school["ben"].get(f"/api/jobs/{job['id']}/model").status_code == 200


def test_no_token_or_a_wrong_one_is_401(school: Classroom):
    job = held(school["ann"])
    with school.server.client() as anonymous:
        assert anonymous.get("/api/health").status_code == 200  # for load balancers and the smoke test
        assert anonymous.get("/").status_code == 200  # the page shell; its reads ask for the token
        for method, path in [("GET", "/api/jobs"), ("GET", f"/api/jobs/{job['id']}"), ("GET", "/api/me"),
                             ("POST", "/api/jobs"), ("POST", f"/api/jobs/{job['id']}/cancel")]:  # fmt: skip
            response = anonymous.request(method, path, json={"kind": "linear"} if method == "POST" else None)
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
    with school.server.client(headers={"Authorization": "Bearer not-a-token"}) as wrong:
        assert wrong.get("/api/jobs").status_code == 401
        assert wrong.post(f"/api/jobs/{job['id']}/cancel").status_code == 401
    # The read cookie is not taken for a change.
    with school.server.client(cookies={"playground_token": school.tokens["ann"]}) as browser:
        assert browser.get(f"/api/jobs/{job['id']}").status_code == 200
        assert browser.post(f"/api/jobs/{job['id']}/cancel").status_code == 401
    assert school["ann"].get(f"/api/jobs/{job['id']}").json()["status"] == "paused"


def test_a_removed_users_token_stops_working_and_their_runs_stay(school: Classroom):
    token = add_user(school.server.home, "carl", "student")  # added while the server runs
    with school.server.client(headers={"Authorization": f"Bearer {token}"}) as carl:
        job = held(carl)
        assert users_cli(school.server.home, "remove", "carl").returncode == 0
        assert carl.get("/api/jobs").status_code == 401
    kept = school["tess"].get(f"/api/jobs/{job['id']}").json()
    assert kept["owner"] == "carl"
    listed = json.loads(users_cli(school.server.home, "list", "--json").stdout)
    assert {u["name"]: (u["runs"], u["removed_at"] is not None) for u in listed}["carl"] == (1, True)


# ----------------------------------------------------------------------------------------------
# The fair queue


def started(client: httpx.Client, job_id: str) -> datetime:
    return datetime.fromisoformat(client.get(f"/api/jobs/{job_id}").json()["started_at"])


def test_a_single_job_starts_after_at_most_one_of_anothers_many(school: Classroom):
    ann, ben, tess = school["ann"], school["ben"], school["tess"]
    blocker = post_job(tess, "mlp", LONG)
    wait_for(tess, blocker["id"], "running")
    anns = [post_job(ann, "linear", SHORT)["id"] for _ in range(20)]
    bens = post_job(ben, "linear", SHORT)["id"]
    premise = tess.get(f"/api/jobs/{blocker['id']}").json()
    waiting = {tess.get(f"/api/jobs/{job_id}").json()["status"] for job_id in [*anns, bens]}
    assert premise["status"] == "running" and waiting == {"queued"}, f"premise: the worker is still busy: {premise}"
    assert tess.post(f"/api/jobs/{blocker['id']}/cancel").status_code == 202
    for job_id in [*anns, bens]:
        assert wait_for(tess, job_id, timeout=300)["status"] == "succeeded"
    bens_start = started(tess, bens)
    before = [job_id for job_id in anns if started(tess, job_id) < bens_start]
    assert len(before) <= 1, f"{len(before)} of ann's 20 jobs started before ben's one (one worker)"
    # Within a user, first in first out.
    assert [started(tess, job_id) for job_id in anns] == sorted(started(tess, job_id) for job_id in anns)


# ----------------------------------------------------------------------------------------------
# Per-user limits


def test_per_user_limits_answer_429_naming_the_limit(tmp_path: Path):
    env = {**ENV, "PLAYGROUND_MAX_QUEUED_PER_USER": "2", "PLAYGROUND_MAX_RUNNING_PER_USER": "1"}
    server, tokens = start_class(tmp_path / "home", env)
    room = Classroom(server, tokens)
    try:
        ben, tess, ann = room["ben"], room["tess"], room["ann"]
        blocker = post_job(tess, "mlp", LONG)
        wait_for(tess, blocker["id"], "running")
        waiting = [post_job(ben, "linear", SHORT)["id"] for _ in range(2)]
        paused = held(ben)  # a paused job counts for nothing: it holds no worker
        refused = ben.post("/api/jobs", json={"kind": "linear", "params": SHORT})
        assert refused.status_code == 429, refused.text
        detail = refused.json()["detail"]
        assert "PLAYGROUND_MAX_QUEUED_PER_USER=2" in detail and "ben has 2 job(s) queued" in detail, detail
        assert ben.post(f"/api/jobs/{paused['id']}/resume").status_code == 429
        # Another user's queue is their own.
        assert post_job(ann, "linear", SHORT, paused=True)["owner"] == "ann"
        statuses = {tess.get(f"/api/jobs/{job_id}").json()["status"] for job_id in waiting}
        assert statuses == {"queued"} and tess.get(f"/api/jobs/{blocker['id']}").json()["status"] == "running", (
            "premise: the blocker still holds the worker"
        )
        for job_id in [*waiting, blocker["id"]]:
            tess.post(f"/api/jobs/{job_id}/cancel")
            wait_for(tess, job_id)

        running = post_job(ann, "mlp", LONG)
        wait_for(ann, running["id"], "running")
        refused = ann.post("/api/jobs", json={"kind": "linear", "params": SHORT})
        assert refused.status_code == 429, refused.text
        detail = refused.json()["detail"]
        assert "PLAYGROUND_MAX_RUNNING_PER_USER=1" in detail and "ann has 1 job(s) running" in detail, detail
        assert ann.get(f"/api/jobs/{running['id']}").json()["status"] == "running", "premise: still running"
        ann.post(f"/api/jobs/{running['id']}/cancel")
        wait_for(ann, running["id"])
    finally:
        room.close()
        server.stop()


def test_the_running_limit_holds_a_users_queued_job_while_others_run(tmp_path: Path):
    """PLAYGROUND_MAX_RUNNING_PER_USER=1 on two workers: ann's second job waits for her first to end,
    though a worker is free, and ben's job takes that worker."""
    server, tokens = start_class(tmp_path / "home", {**ENV, "PLAYGROUND_MAX_RUNNING_PER_USER": "1"}, workers=2)
    room = Classroom(server, tokens)
    try:
        ann, ben, tess = room["ann"], room["ben"], room["admin"]  # the admin's jobs have no owner, no limit
        blockers = [post_job(tess, "mlp", LONG)["id"] for _ in range(2)]
        for job_id in blockers:
            wait_for(tess, job_id, "running")
        first = post_job(ann, "mlp", LONG)["id"]  # ann has nothing running yet: both are taken
        second = post_job(ann, "linear", SHORT)["id"]
        for job_id in blockers:
            tess.post(f"/api/jobs/{job_id}/cancel")
            wait_for(tess, job_id)
        wait_for(ann, first, "running")
        bens = post_job(ben, "linear", SHORT)["id"]
        assert wait_for(ben, bens, timeout=120)["status"] == "succeeded"
        held_back = ann.get(f"/api/jobs/{second}").json()
        assert held_back["status"] == "queued", held_back
        assert ann.get(f"/api/jobs/{first}").json()["status"] == "running", "premise: her first still runs"
        assert ann.get("/api/health").json()["running"] == 1  # a worker stays free for someone else
        ann.post(f"/api/jobs/{first}/cancel")
        assert wait_for(ann, second, timeout=120)["status"] == "succeeded"
    finally:
        room.close()
        server.stop()


def test_the_description_says_every_request_needs_a_token(school: Classroom):
    ops = school["ann"].get("/openapi.json").json()["paths"]
    for path, method in [("/api/jobs", "get"), ("/api/jobs", "post"), ("/api/me", "get"), ("/api/jobs/{job_id}/cancel", "post")]:
        assert {} not in ops[path][method]["security"] and "401" in ops[path][method]["responses"], (path, method)
    assert "429" in ops["/api/jobs/{job_id}/resume"]["post"]["responses"]
