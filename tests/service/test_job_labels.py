"""A run's name and notes change after it was made (``PATCH /api/jobs/{id}/label``): kept, told to
open lists on ``GET /api/events`` as a ``status`` change, allowed to the run's owner, a teacher and
the admin (403 for another student), and refused past their limits with the field and the limit.

Jobs are created paused or run to their end first: nothing here races the clock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.db import init_db, make_engine
from app.models import MAX_NAME_CHARS, UserRole
from app.users import add_user
from tests.service.helpers import field_errors, post_job, wait_for
from tests.service.server_process import Server
from tests.service.test_server_events import Listener, has
from tests.service.test_users import ADMIN_TOKEN, ENV, Classroom, held

STUDENTS_AND_TEACHER = (("ann", "student"), ("ben", "student"), ("tess", "teacher"))


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Classroom]:
    # The users are added in-process (what `playground users add` does), not by three CLI runs.
    home = tmp_path_factory.mktemp("labels-class")
    engine = make_engine(home / "playground.sqlite3")
    init_db(engine)
    tokens = {name: add_user(engine, name, UserRole(role)) for name, role in STUDENTS_AND_TEACHER}
    engine.dispose()
    server = Server(home, env=ENV, workers=1).start()
    room = Classroom(server, {**tokens, "admin": ADMIN_TOKEN})
    yield room
    room.close()
    server.stop()


def label(client: httpx.Client, job_id: str, **fields: Any) -> httpx.Response:
    return client.patch(f"/api/jobs/{job_id}/label", json=fields)


def test_a_finished_runs_name_and_notes_are_kept_and_told_to_open_lists(server: Server, client: httpx.Client) -> None:
    job = wait_for(client, post_job(client, "linear", {"epochs": 5}, name="first try")["id"])
    assert job["status"] == "succeeded" and job["notes"] is None
    # A name no other run on the session's server has (other tests name theirs too).
    name = f"the book's fit {job['id'][:8]}"
    listener = Listener(server.url)
    try:
        response = label(client, job["id"], name=f"  {name} ", notes="lr 1e-2 as in listing 5.x\nconverges")
        assert response.status_code == 200, response.text
        assert response.json()["name"] == name  # blanks around it dropped
        events = listener.wait(lambda events: has(job["id"], "status")(events))
    finally:
        listener.close()
    told = [data for type_, _, data in events if type_ == "status" and data["id"] == job["id"]][-1]
    assert told["name"] == name and told["status"] == "succeeded" and told["result"]["train_loss"]

    # Only the notes: the name stays; the list and the job's read have both.
    assert label(client, job["id"], notes="converges").status_code == 200
    again = client.get(f"/api/jobs/{job['id']}").json()
    assert (again["name"], again["notes"], again["params"]) == (name, "converges", job["params"])
    listed = client.get("/api/jobs", params={"filter": f"name={name}"}).json()["items"]
    assert [item["id"] for item in listed] == [job["id"]]
    # Null or blank clears.
    assert label(client, job["id"], name=None, notes="   ").status_code == 200
    cleared = client.get(f"/api/jobs/{job['id']}").json()
    assert (cleared["name"], cleared["notes"]) == (None, None)


@pytest.mark.parametrize(
    ("body", "loc", "says"),
    [
        ({"name": "n" * 201}, ("body", "name"), ["name", "201", "at most 200"]),
        ({"notes": "n" * 2001}, ("body", "notes"), ["notes", "2001", "at most 2000"]),
        ({}, ("body",), ["name", "notes"]),
        ({"name": "x", "colour": "red"}, ("body", "colour"), ["Extra"]),
    ],
)
def test_a_label_past_its_limits_is_a_422_naming_the_field(client: httpx.Client, body, loc, says) -> None:
    job = post_job(client, "linear", {"epochs": 5}, name="kept", paused=True)
    try:
        errors = field_errors(label(client, job["id"], **body))
        assert loc in errors, errors
        assert all(word in errors[loc] for word in says), errors[loc]
        assert client.get(f"/api/jobs/{job['id']}").json()["name"] == "kept"
    finally:
        assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 202


def test_a_name_has_one_limit_at_create_and_at_rename(client: httpx.Client) -> None:
    """A name the create took (or "repeat" made) is one a rename takes back, and one character more
    is refused by both with the field and the limit."""
    longest, over = "c" * MAX_NAME_CHARS, "c" * (MAX_NAME_CHARS + 1)
    job = post_job(client, "linear", {"epochs": 5}, name=longest, paused=True)
    try:
        assert job["name"] == longest
        renamed = label(client, job["id"], name=longest.replace("c", "r"))
        assert renamed.status_code == 200, renamed.text
        for response in (
            client.post("/api/jobs", json={"kind": "linear", "params": {"epochs": 5}, "name": over, "paused": True}),
            label(client, job["id"], name=over),
        ):
            message = field_errors(response)[("body", "name")]
            assert f"name is {MAX_NAME_CHARS + 1} characters long; at most {MAX_NAME_CHARS}" in message, message
        assert client.get(f"/api/jobs/{job['id']}").json()["name"] == longest.replace("c", "r")
    finally:
        assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 202


def test_a_missing_run_is_404(client: httpx.Client) -> None:
    assert label(client, "0" * 32, name="x").status_code == 404


def test_the_owner_a_teacher_and_the_admin_label_a_run_another_student_may_not(school: Classroom) -> None:
    job = held(school["ann"], name="ann's")
    refused = label(school["ben"], job["id"], name="ben's now", notes="mine")
    assert refused.status_code == 403, refused.text
    assert "ann" in refused.json()["detail"] and "ben" in refused.json()["detail"]
    assert school["ben"].get(f"/api/jobs/{job['id']}").json()["name"] == "ann's"
    for who, name in (("ann", "by ann"), ("tess", "by tess"), ("admin", "by admin")):
        response = label(school[who], job["id"], name=name, notes=f"note of {who}")
        assert response.status_code == 200, (who, response.text)
    final = school["ben"].get(f"/api/jobs/{job['id']}").json()
    assert (final["name"], final["notes"], final["owner"]) == ("by admin", "note of admin", "ann")


def test_an_older_database_gets_the_notes_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = make_engine(path)
    init_db(engine)
    engine.dispose()
    with sqlite3.connect(path) as db:  # as a version before notes made it
        db.execute("ALTER TABLE job DROP COLUMN notes")
    engine = make_engine(path)
    init_db(engine)
    engine.dispose()
    with sqlite3.connect(path) as db:
        assert "notes" in {row[1] for row in db.execute("PRAGMA table_info(job)")}
