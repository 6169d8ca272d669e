"""Lessons on a real server with a class (two students and a teacher, ``start_class``).

A teacher makes a lesson (a student may not); it is checked against its kind's parameters with
errors naming the field; a student's run from it keeps what it locks or hides -- at the start, by
a live change and in a fork -- with a 422 naming the parameter and the lesson; the board ranks each
student's best run. Jobs that need not train are created paused; the board's runs are short line
fits, waited for by their status.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.service.helpers import field_errors, post_job, wait_for
from tests.service.test_users import ENV, Classroom, start_class

LESSON = {
    "title": "Too large a step",
    "instructions": "# Watch it\n\nChange **epochs** only. <script>alert(1)</script> [why](https://example.org/lr)",
    "kind": "linear",
    "params": {"lr": 0.005, "epochs": 300, "input_scale": 0.1},
    "locked": ["lr"],
    "hidden": ["input_scale", "optimizer"],
}


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Classroom]:
    server, tokens = start_class(tmp_path_factory.mktemp("lessons-home"), ENV)
    room = Classroom(server, tokens)
    yield room
    room.close()
    server.stop()


def make_lesson(school: Classroom, **changes: Any) -> dict[str, Any]:
    response = school["tess"].post("/api/lessons", json={**LESSON, **changes})
    assert response.status_code == 201, response.text
    return response.json()


def test_a_teacher_makes_a_lesson_that_everyone_reads(school: Classroom):
    response = school["tess"].post("/api/lessons", json=LESSON)
    assert response.status_code == 201, response.text
    lesson = response.json()
    assert response.headers["Location"] == f"/api/lessons/{lesson['id']}"
    assert lesson["owner"] == "tess" and lesson["locked"] == ["lr"] and lesson["hidden"] == ["input_scale", "optimizer"]
    # Every parameter, the defaults filled in; the metric from the kind: no points held out.
    assert lesson["params"]["lr"] == 0.005 and lesson["params"]["optimizer"] == "manual"
    assert (lesson["metric"], lesson["higher_is_better"]) == ("train_loss", False)
    rendered = lesson["instructions_html"]
    assert "<h2>Watch it</h2>" in rendered and "<strong>epochs</strong>" in rendered
    assert "<script>" not in rendered and "&lt;script&gt;" in rendered
    assert '<a href="https://example.org/lr" target="_blank" rel="noopener noreferrer">why</a>' in rendered
    for name in ("ann", "ben", "admin"):
        assert school[name].get(f"/api/lessons/{lesson['id']}").json() == lesson
        assert lesson["id"] in [item["id"] for item in school[name].get("/api/lessons").json()["items"]]
    assert school["ann"].get("/api/lessons/999999").status_code == 404


def test_a_student_may_not_make_or_remove_a_lesson(school: Classroom):
    response = school["ann"].post("/api/lessons", json=LESSON)
    assert response.status_code == 403
    assert "ann is a student" in response.json()["detail"] and "teacher" in response.json()["detail"]
    lesson = make_lesson(school)
    assert school["ben"].delete(f"/api/lessons/{lesson['id']}").status_code == 403
    assert school["ben"].get(f"/api/lessons/{lesson['id']}").status_code == 200
    assert school["tess"].delete(f"/api/lessons/{lesson['id']}").status_code == 204
    assert school["ben"].get(f"/api/lessons/{lesson['id']}").status_code == 404


def test_the_instructions_preview_is_for_whoever_makes_lessons(school: Classroom):
    body = {"instructions": LESSON["instructions"]}
    refused = school["ann"].post("/api/lessons/instructions/preview", json=body)
    assert refused.status_code == 403 and "ann is a student" in refused.json()["detail"]
    for name in ("tess", "admin"):
        response = school[name].post("/api/lessons/instructions/preview", json=body)
        assert response.status_code == 200, response.text
        assert "<h2>Watch it</h2>" in response.json()["html"] and "<script>" not in response.json()["html"]


@pytest.mark.parametrize(
    ("changes", "loc", "said"),
    [
        ({"params": {"lr": -1}}, ("body", "params", "lr"), "greater than 0"),
        ({"params": {"speed": 2}}, ("body", "params", "speed"), "Extra inputs"),
        ({"params": {"epochs": 10**9}}, ("body", "params", "epochs"), "100000"),
        ({"locked": ["lr", "speed"]}, ("body", "locked", 1), "'speed', not a parameter of linear; its parameters are: epochs, lr"),
        ({"hidden": ["lr"]}, ("body", "hidden"), "both locked and hidden"),
        ({"metric": "val_acc"}, ("body", "metric"), "allowed: train_loss, val_loss"),
        ({"metric": "val_loss", "hidden": ["val_fraction"]}, ("body", "metric"), "val_fraction at 0"),
        ({"kind": "svm"}, ("body", "kind"), "allowed: cifar, linear, mlp"),
    ],
)
def test_a_lesson_is_checked_against_its_kind(school: Classroom, changes, loc, said):
    errors = field_errors(school["tess"].post("/api/lessons", json={**LESSON, **changes}))
    assert loc in errors, errors
    assert said in errors[loc], errors[loc]


def test_a_students_run_keeps_what_the_lesson_locks_or_hides(school: Classroom):
    lesson = make_lesson(school)
    run = {"kind": "linear", "lesson_id": lesson["id"], "paused": True}
    # The lesson's values are the run's defaults.
    job = post_job(school["ann"], **run)
    assert (job["lesson_id"], job["owner"], job["params"]["lr"], job["params"]["epochs"]) == (lesson["id"], "ann", 0.005, 300)
    assert post_job(school["ann"], **{**run, "params": {"epochs": 400, "lr": 0.005}})["params"]["epochs"] == 400
    for name, value in (("lr", 0.5), ("input_scale", 1), ("optimizer", "adam")):
        errors = field_errors(school["ann"].post("/api/jobs", json={**run, "params": {name: value}}))
        message = errors[("body", "params", name)]
        assert f"'{name}' is " in message and f"lesson {lesson['id']} ('Too large a step')" in message, message
    # A teacher may (to show the class what happens).
    assert post_job(school["tess"], **{**run, "params": {"lr": 0.5}})["params"]["lr"] == 0.5
    response = school["ann"].post("/api/jobs", json={**run, "lesson_id": 999999})
    assert response.status_code == 404 and "No lesson with id 999999" in response.json()["detail"]
    errors = field_errors(school["ann"].post("/api/jobs", json={**run, "kind": "mlp"}))
    assert "is a linear lesson, not mlp" in errors[("body", "kind")]


def test_a_live_change_or_a_fork_keeps_the_locks_too(school: Classroom):
    lesson = make_lesson(school)
    job = post_job(school["ann"], "linear", lesson_id=lesson["id"], paused=True)
    response = school["ann"].patch(f"/api/jobs/{job['id']}", json={"params": {"lr": 0.1}})
    assert "locked at 0.005 by lesson" in field_errors(response)[("body", "params", "lr")]
    assert school["ann"].get(f"/api/jobs/{job['id']}").json()["changes"] == []
    assert school["ann"].patch(f"/api/jobs/{job['id']}", json={"params": {"epochs": 350}}).status_code == 202
    fork = {"kind": "linear", "fork": {"job_id": job["id"], "step": 0}, "paused": True}
    response = school["ben"].post("/api/jobs", json={**fork, "params": {"lr": 0.1}})
    assert "locked at 0.005" in field_errors(response)[("body", "params", "lr")]
    child = post_job(school["ben"], **{**fork, "params": {"epochs": 320}})
    assert (child["lesson_id"], child["owner"], child["params"]["lr"]) == (lesson["id"], "ben", 0.005)
    # A run of the lesson with the lock changed (a teacher's) is not a student's to go on with.
    teachers = post_job(school["tess"], "linear", {"lr": 0.02}, lesson_id=lesson["id"], paused=True)
    response = school["ben"].post("/api/jobs", json={**fork, "fork": {"job_id": teachers["id"], "step": 0}})
    assert "locked at 0.005" in field_errors(response)[("body", "params", "lr")]
    assert school["tess"].patch(f"/api/jobs/{teachers['id']}", json={"params": {"lr": 0.03}}).status_code == 202


def test_the_board_shows_each_students_best_run(school: Classroom):
    lesson = make_lesson(school, params={"lr": 0.005, "epochs": 200}, locked=["lr"], hidden=[])
    short = post_job(school["ann"], "linear", lesson_id=lesson["id"], name="short")
    longer = post_job(school["ann"], "linear", {"epochs": 600}, lesson_id=lesson["id"], name="longer")
    bens = post_job(school["ben"], "linear", {"epochs": 300}, lesson_id=lesson["id"], name="bens")
    waiting = post_job(school["ben"], "linear", lesson_id=lesson["id"], paused=True)  # no value yet
    post_job(school["ann"], "linear", {"epochs": 5}, paused=True)  # not of the lesson
    done = {job["id"]: wait_for(school["ann"], job["id"]) for job in (short, longer, bens)}
    assert all(job["status"] == "succeeded" for job in done.values()), done
    board = school["ben"].get(f"/api/lessons/{lesson['id']}/board").json()
    assert (board["metric"], board["higher_is_better"]) == ("train_loss", False)
    rows = {row["owner"]: row for row in board["rows"]}
    assert set(rows) == {"ann", "ben"}
    # More epochs at this small lr: a lower loss, so the longer run is ann's best.
    assert rows["ann"]["job_id"] == longer["id"] and rows["ann"]["runs"] == 2 and rows["ann"]["job_name"] == "longer"
    assert rows["ann"]["value"] == done[longer["id"]]["result"]["train_loss"] < done[short["id"]]["result"]["train_loss"]
    assert rows["ben"]["job_id"] == bens["id"] and rows["ben"]["status"] == "succeeded" and rows["ben"]["runs"] == 2
    assert [row["owner"] for row in board["rows"]] == ["ann", "ben"]  # best first
    assert sorted(board["job_ids"]) == sorted([short["id"], longer["id"], bens["id"], waiting["id"]])
