"""Lessons: a teacher's settings for a class, what a student's run from one may change, and the
class board. No torch here.

A lesson fixes an experiment kind and its parameter values; some parameters are *locked* (the
lesson's form shows them, not editable) and some *hidden* (not shown). A run started from the lesson
(``lesson_id`` on POST /api/jobs) takes the lesson's values for what it does not set; a student's
run may not give a locked or hidden parameter another value -- not at the start, not by a live
change, not in a fork -- and gets a 422 naming the parameter and the lesson. A teacher may (to show
what happens).

The board ranks each student's best run of the lesson by its final value of the lesson's metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from app.errors import InvalidField
from app.experiments.registry import get_experiment
from app.models import (
    FINAL_STATUSES,
    BoardRow,
    Job,
    Lesson,
    LessonBoard,
    LessonCreate,
    LessonMetric,
    LessonPublic,
    utcnow,
)
from app.safe_markdown import render_markdown

ACCURACY_KINDS = ("cifar",)  # the kinds whose results have train_acc and val_acc


# ----------------------------------------------------------------------------------------------
# Making one


def new_lesson(body: LessonCreate, owner: str | None, validate_params: Callable[[str, dict[str, Any]], Any]) -> Lesson:
    """The lesson ``body`` describes, checked against its kind's parameters; ``validate_params``
    is the job service's (the kind's model and the server's limits), so a lesson holds only values
    a run can start with. Each error names the field and what is allowed (422)."""
    spec = get_experiment(body.kind)  # UnknownKind: 422 at kind, naming the kinds
    names = list(spec.params_model.model_fields)
    params = validate_params(body.kind, body.params).model_dump(mode="json")
    for field, listed in (("locked", body.locked), ("hidden", body.hidden)):
        for index, name in enumerate(listed):
            if name not in names:
                raise InvalidField(
                    ["body", field, index],
                    f"{field}[{index}] is {name!r}, not a parameter of {body.kind}; its parameters are: {', '.join(names)}.",
                    name,
                    allowed=names,
                )
    both = [name for name in body.locked if name in body.hidden]
    if both:
        raise InvalidField(
            ["body", "hidden"],
            f"{both[0]!r} is both locked and hidden: a locked parameter is shown (not editable), a hidden one is not shown; choose one.",
            both[0],
        )
    metric = body.metric or default_metric(body.kind, params)
    if metric.higher_is_better and body.kind not in ACCURACY_KINDS:
        allowed = [m.value for m in LessonMetric if not m.higher_is_better]
        raise InvalidField(
            ["body", "metric"],
            f"metric {metric.value!r}: a {body.kind} run has no accuracy; allowed: {', '.join(allowed)}.",
            metric.value,
            allowed=allowed,
        )
    fixed = set(body.locked) | set(body.hidden)
    if metric == LessonMetric.VAL_LOSS and params.get("val_fraction") == 0 and "val_fraction" in fixed:
        raise InvalidField(
            ["body", "metric"],
            "metric 'val_loss': the lesson fixes val_fraction at 0, so its runs hold no points out and have "
            "no val_loss; use train_loss, or a val_fraction above 0.",
            metric.value,
        )
    return Lesson(
        title=body.title,
        instructions=body.instructions,
        kind=body.kind,
        params=params,
        locked=list(dict.fromkeys(body.locked)),
        hidden=list(dict.fromkeys(body.hidden)),
        metric=metric,
        owner=owner,
        created_at=utcnow(),
    )


def default_metric(kind: str, params: dict[str, Any]) -> LessonMetric:
    if kind in ACCURACY_KINDS:
        return LessonMetric.VAL_ACC
    return LessonMetric.VAL_LOSS if (params.get("val_fraction") or 0) > 0 else LessonMetric.TRAIN_LOSS


def public(lesson: Lesson) -> LessonPublic:
    assert lesson.id is not None
    return LessonPublic(
        id=lesson.id,
        title=lesson.title,
        instructions=lesson.instructions,
        instructions_html=render_markdown(lesson.instructions),
        kind=lesson.kind,
        params=lesson.params,
        locked=lesson.locked,
        hidden=lesson.hidden,
        metric=lesson.metric,
        higher_is_better=lesson.metric.higher_is_better,
        owner=lesson.owner,
        created_at=lesson.created_at,
    )


# ----------------------------------------------------------------------------------------------
# A run from a lesson


def fixed_params(lesson: Lesson) -> list[str]:
    """What a student's run keeps at the lesson's value: the locked and the hidden parameters."""
    return [*lesson.locked, *lesson.hidden]


def check_fixed(lesson: Lesson, given: Iterable[str], values: dict[str, Any], loc: list[str | int]) -> None:
    """422 when a parameter a student ``given`` (its validated value in ``values``) is one the
    lesson fixes, at another value than the lesson's."""
    for name in given:
        if name in fixed_params(lesson) and name in values and values[name] != lesson.params.get(name):
            how = "locked" if name in lesson.locked else "hidden"
            raise InvalidField(
                [*loc, name],
                f"{name!r} is {how} at {lesson.params.get(name)!r} by lesson {lesson.id} ({lesson.title!r}), "
                f"not {values[name]!r}: a student's run of the lesson keeps it; change the others, or ask a teacher.",
                values[name],
                lesson_id=lesson.id,
                lesson_value=lesson.params.get(name),
            )


# ----------------------------------------------------------------------------------------------
# The class board


def board(lesson: Lesson, jobs: list[Job]) -> LessonBoard:
    """Each owner's best run of the lesson by its final value of the metric (ties: the earlier);
    an owner with no value yet shows their newest run. ``jobs``: the lesson's, oldest first."""
    assert lesson.id is not None
    metric = lesson.metric
    sign = -1.0 if metric.higher_is_better else 1.0
    best: dict[str | None, tuple[Job, float | None]] = {}
    counts: dict[str | None, int] = {}
    for job in jobs:
        counts[job.owner] = counts.get(job.owner, 0) + 1
        value = final_value(job, metric)
        held = best.get(job.owner)
        # The first; a newer one while none has a value; a better value.
        if held is None or held[1] is None or (value is not None and sign * value < sign * held[1]):
            best[job.owner] = (job, value)
    rows = [
        BoardRow(owner=owner, job_id=job.id, job_name=job.name, status=job.status, value=value, runs=counts[owner])
        for owner, (job, value) in best.items()
    ]
    rows.sort(key=lambda row: (row.value is None, sign * row.value if row.value is not None else 0.0, row.owner or ""))
    return LessonBoard(
        lesson_id=lesson.id,
        metric=metric,
        higher_is_better=metric.higher_is_better,
        rows=rows,
        job_ids=[job.id for job in jobs],
    )


def final_value(job: Job, metric: LessonMetric) -> float | None:
    """The run's final value of ``metric``: a finite number from a run that ended, else None."""
    value = (job.result or {}).get(metric.value)
    if job.status not in FINAL_STATUSES or not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return float(value) if math.isfinite(value) else None


# ----------------------------------------------------------------------------------------------
# The table (keyword-only functions over a session, as app.crud's; writes go through the
# service's database writer, as every write of the web process)


def add_lesson(session: Session, *, fields: dict[str, Any]) -> int:
    """Its id. A new object each call: the database writer retries a write from the start."""
    lesson = Lesson(**fields)
    session.add(lesson)
    session.flush()
    assert lesson.id is not None
    return lesson.id


def get_lesson(session: Session, *, lesson_id: int) -> Lesson | None:
    return session.get(Lesson, lesson_id)


def list_lessons(session: Session) -> list[Lesson]:
    return list(session.exec(select(Lesson).order_by(col(Lesson.id).desc())).all())


def delete_lesson(session: Session, *, lesson_id: int) -> None:
    """Its runs stay (with their lesson_id); the page and the board go."""
    session.exec(delete(Lesson).where(col(Lesson.id) == lesson_id))  # type: ignore[call-overload]


def lesson_jobs(session: Session, *, lesson_id: int) -> list[Job]:
    return list(session.exec(select(Job).where(Job.lesson_id == lesson_id).order_by(col(Job.number))).all())
