"""Lessons: a teacher saves settings for a class; everyone signed in reads them and their board.

A lesson made or removed goes on the server's event stream (GET /api/events) as ``lesson_created``
(the lesson as GET /api/lessons lists it) or ``lesson_deleted`` (its ``id``), after the write, so
an open Lessons page follows without reading the list again."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response, status

from app import lessons
from app.api.deps import ReadAccess, ServiceDep, SessionDep, Writer
from app.api.openapi import ErrorMessage
from app.errors import LessonNotFound
from app.models import (
    Lesson,
    LessonBoard,
    LessonCreate,
    LessonInstructions,
    LessonPublic,
    LessonsPublic,
    RenderedInstructions,
)
from app.safe_markdown import render_markdown
from app.users import Principal

router = APIRouter(prefix="/lessons", tags=["lessons"])

LessonId = Annotated[int, Path(ge=1, le=2**53 - 1, description="The lesson's id.")]
NOT_FOUND = {404: {"model": ErrorMessage, "description": "No lesson with that id."}}
TEACHERS_ONLY = {403: {"model": ErrorMessage, "description": "A student: only a teacher makes or removes lessons."}}


def _check_teacher(who: Principal, action: str) -> None:
    if who.role == "student":
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail=f"{who.name} is a student: only a teacher (or the admin token) may {action} a lesson.",
        )


def _get(session: SessionDep, lesson_id: int) -> Lesson:
    lesson = lessons.get_lesson(session, lesson_id=lesson_id)
    if lesson is None:
        raise LessonNotFound(lesson_id)
    return lesson


@router.post("", status_code=status.HTTP_201_CREATED, responses=TEACHERS_ONLY)
async def create_lesson(
    body: LessonCreate, who: Writer, session: SessionDep, service: ServiceDep, request: Request, response: Response
) -> LessonPublic:
    """A lesson: its kind's parameter values (checked as a run's are), which of them are locked
    (shown, not editable) or hidden, the metric its board ranks by, and instructions in Markdown.
    Its page is `/lessons/{id}`, its class board `/lessons/{id}/board`."""
    _check_teacher(who, "make")
    fields = lessons.new_lesson(body, who.owner, service.validate_params).model_dump(exclude={"id"})
    lesson_id = await service.writer.run(partial(lessons.add_lesson, fields=fields))
    response.headers["Location"] = request.url_for("read_lesson", lesson_id=lesson_id).path
    made = lessons.public(Lesson(**fields, id=lesson_id))
    service.server_events.publish("lesson_created", made.model_dump(mode="json"))
    return made


@router.post("/instructions/preview", responses=TEACHERS_ONLY)
def preview_instructions(body: LessonInstructions, who: Writer) -> RenderedInstructions:
    """The instructions rendered as a lesson's page renders them (the same `instructions_html`),
    for the "Save as a lesson…" dialog's preview while the teacher types. Nothing is stored."""
    _check_teacher(who, "preview the instructions of")
    return RenderedInstructions(html=render_markdown(body.instructions))


@router.get("", dependencies=[ReadAccess])
def list_lessons(session: SessionDep) -> LessonsPublic:
    """Every lesson, newest first."""
    items = [lessons.public(lesson) for lesson in lessons.list_lessons(session)]
    return LessonsPublic(items=items, total=len(items))


@router.get("/{lesson_id}", dependencies=[ReadAccess], responses=NOT_FOUND)
def read_lesson(lesson_id: LessonId, session: SessionDep) -> LessonPublic:
    return lessons.public(_get(session, lesson_id))


@router.get("/{lesson_id}/board", dependencies=[ReadAccess], responses=NOT_FOUND)
def read_board(lesson_id: LessonId, session: SessionDep) -> LessonBoard:
    """Each student's best run of the lesson so far by its metric (runs that ended with a value),
    or their newest run while none has one. The page re-reads it when GET /api/events says one of
    the lesson's runs changed."""
    lesson = _get(session, lesson_id)
    return lessons.board(lesson, lessons.lesson_jobs(session, lesson_id=lesson_id))


@router.delete(
    "/{lesson_id}", status_code=status.HTTP_204_NO_CONTENT, responses={**NOT_FOUND, **TEACHERS_ONLY}
)
async def delete_lesson(lesson_id: LessonId, who: Writer, session: SessionDep, service: ServiceDep) -> None:
    """Remove the lesson (its page and board); the runs started from it stay."""
    _check_teacher(who, "remove")
    _get(session, lesson_id)
    await service.writer.run(partial(lessons.delete_lesson, lesson_id=lesson_id))
    service.server_events.publish("lesson_deleted", {"id": lesson_id})
