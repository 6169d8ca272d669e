"""Lessons on the server's event stream, and the instructions' preview (issue 16).

A lesson made or removed goes on ``GET /api/events`` (``lesson_created`` with the lesson as
``GET /api/lessons`` lists it, ``lesson_deleted`` with its id), so an open Lessons page follows
without polling; ``POST /api/lessons/instructions/preview`` renders instructions as the lesson's
page will. On the session's open server (no users: everyone may make lessons); who may preview on a server with
a class is in test_lessons.py. Nothing here trains.
"""

from __future__ import annotations

import httpx

from app.models import MAX_INSTRUCTIONS_CHARS
from tests.service.helpers import field_errors
from tests.service.server_process import Server
from tests.service.test_server_events import Listener, seq

LESSON = {"title": "Events", "instructions": "Try **lr**.", "kind": "linear", "params": {"lr": 0.005}, "locked": ["lr"]}


def lesson_events(listener: Listener, lesson_id: int) -> list[tuple[str, str, dict]]:
    return [e for e in listener.events if e[0].startswith("lesson_") and e[2].get("id") == lesson_id]


def test_a_lesson_made_and_removed_is_told_to_open_pages_and_to_a_client_that_resumes(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        listener = Listener(server.url)
        try:
            lesson = client.post("/api/lessons", json=LESSON).json()
            listed = client.get(f"/api/lessons/{lesson['id']}").json()
            assert client.delete(f"/api/lessons/{lesson['id']}").status_code == 204
            listener.wait(lambda _: len(lesson_events(listener, lesson["id"])) == 2)
        finally:
            listener.close()
    (made_type, made_id, made), (gone_type, gone_id, gone) = lesson_events(listener, lesson["id"])
    assert (made_type, gone_type) == ("lesson_created", "lesson_deleted")
    counts = made.pop("counts")  # the header's counts, as with every event but progress
    assert made == listed, "the lesson as the list has it"
    assert set(counts) == {"running", "queued"} and gone == {"id": lesson["id"], "counts": gone["counts"]}
    assert seq(made_id) < seq(gone_id)
    # A client that was away from before the lesson was made gets both when it comes back.
    again = Listener(server.url, last_event_id=listener.greeting["last_id"])
    try:
        again.wait(lambda _: len(lesson_events(again, lesson["id"])) == 2)
        assert [e[1] for e in lesson_events(again, lesson["id"])] == [made_id, gone_id]
    finally:
        again.close()


def test_the_preview_is_the_lessons_own_rendering_and_its_limit_is_the_lessons(api: httpx.Client) -> None:
    text = "# Step\n\n**bold** [x](javascript:alert(1)) <b>tag</b> [ok](/?kind=linear)"
    response = api.post("/api/lessons/instructions/preview", json={"instructions": text})
    assert response.status_code == 200, response.text
    html = response.json()["html"]
    assert "<strong>bold</strong>" in html and "&lt;b&gt;tag&lt;/b&gt;" in html
    assert 'href="javascript' not in html and '<a href="/?kind=linear"' in html
    made = api.post("/api/lessons", json={**LESSON, "instructions": text}).json()
    try:
        assert html == made["instructions_html"], "what the teacher previews is what the class sees"
    finally:
        api.delete(f"/api/lessons/{made['id']}")
    longest = "x" * MAX_INSTRUCTIONS_CHARS
    assert api.post("/api/lessons/instructions/preview", json={"instructions": longest}).status_code == 200
    errors = field_errors(api.post("/api/lessons/instructions/preview", json={"instructions": longest + "x"}))
    assert str(MAX_INSTRUCTIONS_CHARS) in errors[("body", "instructions")]
