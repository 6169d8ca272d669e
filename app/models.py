"""Tables and API schemas: jobs, their metric points and their status events. No torch here.

Families as in FastAPI's template: ``JobCreate`` (what a client posts), ``Job`` (the table),
``JobPublic`` (what the API returns), ``JobSummary`` (a job as the list shows it: no pictures, no
curves) and ``JobsPublic`` (a page of summaries with the total).

Every SSE event of a job has an id that increases by one per event. The ids are stored with the
rows they came from -- ``Metric.event_id`` for the points of a ``metric`` event, ``JobEvent`` for
``status`` and ``done`` events -- so a replay from the database, after the job ended or after a
restart, yields the same events with the same ids as the live stream did.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, ValidationInfo, field_validator, model_validator
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.experiments.base import METRIC_FIELDS


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"  # was running when the server stopped
    PAUSED = "paused"  # stopped at a step boundary with a checkpoint; holds no worker


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
# Not over: the job may still train (a paused job is resumed or stepped); its stream stays open.
OPEN_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED)
FINAL_STATUSES = tuple(s for s in JobStatus if s not in OPEN_STATUSES)


def utcnow() -> datetime:
    return datetime.now(UTC)


# ----------------------------------------------------------------------------------------------
# Jobs

# Seeds go to torch.manual_seed and numpy, which take 32-bit seeds.
MAX_SEED = 2**32 - 1
# A run's name, the same at create (POST /api/jobs, which "also try" and "repeat" go through too)
# and at rename (PATCH /api/jobs/{id}/label): a name the server made is one a person can keep.
MAX_NAME_CHARS = 200
MAX_NOTES_CHARS = 2000


def check_text_length(field: str, value: Any, limit: int) -> Any:
    """``value`` when it is no longer than ``limit`` characters; else the error names the field,
    the length and the limit (a pydantic ``max_length`` says neither field nor length)."""
    if isinstance(value, str) and len(value) > limit:
        raise ValueError(f"{field} is {len(value)} characters long; at most {limit} are allowed")
    return value


class ForkFrom(SQLModel):
    job_id: str = Field(regex=r"^[0-9a-f]{32}$", description="The parent job (32 hex digits).")
    step: int = Field(ge=0, le=2**31, description="The parent's step to start from (the child's first point is the next).")


class JobCreate(SQLModel):
    kind: str = Field(description="linear, mlp or cifar (GET /api/kinds lists them).")
    params: dict[str, Any] = Field(
        default_factory=dict, description="The kind's parameters; omitted ones take their defaults."
    )
    device: str = Field(
        "auto",
        max_length=16,
        description="auto (CUDA when the server has a GPU), cpu, cuda or cuda:N.",
    )
    seed: int | None = Field(
        None, ge=0, le=MAX_SEED, description="Random seed; empty: drawn, and returned so the run can be repeated."
    )
    name: str | None = Field(
        None,
        description=f"A label of your choice, at most {MAX_NAME_CHARS} characters.",
        schema_extra={"json_schema_extra": {"maxLength": MAX_NAME_CHARS}},
    )
    fork: ForkFrom | None = Field(
        None,
        description=(
            "Start from another job's state at one of its steps (the kind must be the parent's); "
            "`params` may change its live parameters (x-live in the kind's schema) and epochs."
        ),
    )
    paused: bool = Field(
        False,
        description=(
            "Create it paused, at step 0 (or at its fork step): it holds no worker and waits for "
            "POST /api/jobs/{id}/resume, or /step to run a few steps and pause again."
        ),
    )
    lesson_id: int | None = Field(
        None,
        ge=1,
        le=2**53 - 1,
        description=(
            "Started from this lesson (POST /api/lessons): its parameter values are the defaults, and a "
            "student may not change the ones it locks or hides (422 naming the parameter and the lesson)."
        ),
    )

    @field_validator("name", mode="before")
    @classmethod
    def _name_within_limit(cls, value: Any) -> Any:
        return check_text_length("name", value, MAX_NAME_CHARS)


class JobBase(SQLModel):
    kind: str = Field(index=True)
    name: str | None = None
    notes: str | None = Field(default=None, description="The owner's notes on the run (PATCH /api/jobs/{id}/label).")
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    device: str
    seed: int
    status: JobStatus = Field(default=JobStatus.QUEUED, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    train_seconds: float | None = Field(
        default=None,
        description=(
            "Seconds it has trained on a worker, over all its runs: time paused or waiting for a worker is not "
            "counted. A running job has trained this plus the time since `running_since`. Null: it has not run "
            "yet (or was made by a version that did not count)."
        ),
    )
    running_since: datetime | None = Field(
        default=None, description="When its current run on a worker began (the worker's clock); null unless running."
    )
    error: str | None = None
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    worker: str | None = Field(default=None, description='Where it ran, e.g. "local-1 (pid 1234)".')
    has_model: bool = Field(default=False, description="Trained weights can be downloaded and used to predict.")
    data_points: int | None = Field(
        default=None, description="How many [x, y] points of your own it trains on (`params.data`); null: the book's."
    )
    parent_id: str | None = Field(default=None, description="The job this one was forked from.")
    fork_step: int | None = Field(default=None, description="The parent's step it was forked at (its first point is the next).")
    changes: list[dict[str, Any]] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default="[]"),
        description='Live parameter changes, in order: {"step": k, "params": {...}}, in effect from step k + 1.',
    )
    checkpoint_step: int | None = Field(
        default=None, description="The step of its newest checkpoint: resume (or a fork) can start there."
    )
    owner: str | None = Field(
        default=None,
        index=True,
        description="The user who created it (`playground users`); null: made without users (open or admin mode).",
    )
    lesson_id: int | None = Field(
        default=None, index=True, description="The lesson it was started from (GET /api/lessons/{id}); null: none."
    )


class Job(JobBase, table=True):
    # An integer key keeps "newest first" exact when many jobs share a timestamp.
    number: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=32)
    # Progress as of the last metric point written (the service overlays the live value).
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None
    # When that point was written: a run the server's stop cut short trained until about then.
    last_point_at: datetime | None = None


class Progress(SQLModel):
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None


class _JobId(SQLModel):
    id: str


class JobPublic(JobBase, _JobId):  # the id comes first in the JSON
    progress: Progress
    resumable: bool = Field(
        False, description="`POST /resume` continues it from `checkpoint_step` (paused, interrupted, or its worker died)."
    )
    result_abridged: bool = Field(
        False,
        description=(
            "The `result` here leaves out its samples of points and pictures (lists, events, commands' answers); "
            "`GET /api/jobs/{id}` has the whole result."
        ),
    )

    @field_validator("created_at", "started_at", "finished_at", "running_since")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        # SQLite keeps no time zone: the stored value is UTC.
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    @classmethod
    def from_job(
        cls,
        job: Job,
        progress: Progress | None = None,
        data: list[list[float]] | None = None,
        abridged: bool = False,
        unstored: dict[str, Any] | None = None,
    ) -> JobPublic:
        """``data``: the job's own points, put back into ``params``; ``abridged``: the result without
        its samples (only the job's own read sends the points and the whole result); ``unstored``:
        the newest values of the job's columns, on their way to the database."""
        fields = job.model_dump(exclude={"number", "epoch", "epochs", "step", "last_point_at"})
        fields.update(unstored or {})
        if data is not None:
            fields["params"] = {**fields["params"], "data": data}
        result = fields.get("result")
        if abridged and result and any(key in result for key in HEAVY_RESULT_KEYS):
            fields["result"] = {k: v for k, v in result.items() if k not in HEAVY_RESULT_KEYS}
            fields["result_abridged"] = True
        fields["progress"] = progress or Progress(epoch=job.epoch, epochs=job.epochs, step=job.step)
        status = fields["status"]
        fields["resumable"] = status == JobStatus.PAUSED or (
            job.checkpoint_step is not None and status in RESUMABLE_STATUSES
        )
        return cls.model_validate(fields)


RESUMABLE_STATUSES = (JobStatus.PAUSED, JobStatus.INTERRUPTED, JobStatus.FAILED)
# What a result holds for the pictures (up to 1,000 [x, y] pairs each, the network's curve, example
# images): tens of KB a job, which lists and events leave out (see JobPublic.result_abridged).
HEAVY_RESULT_KEYS = frozenset({"train_points", "val_points", "curve", "hidden_units", "confusion_examples", "samples"})


# What a summary's result leaves out besides HEAVY_RESULT_KEYS: CIFAR's per-class picture of the
# classifier (a 10 x 10 confusion matrix, the classes and their accuracies), which the run's page
# draws and the list does not. What is left are the final metrics: losses, accuracies, w and b,
# epochs and steps run, training seconds, images per second, the fitted line's two ends.
SUMMARY_LEAVES_OUT = HEAVY_RESULT_KEYS | {"confusion_matrix", "per_class_acc", "classes"}


class JobSummary(_JobId):
    """A job as the list shows it (GET /api/jobs): its facts, parameters, progress and final
    metrics, never its pictures or curves. ``GET /api/jobs/{id}`` has the whole job."""

    kind: str
    name: str | None = None
    status: JobStatus
    progress: Progress
    result: dict[str, Any] | None = Field(
        None, description="The final metrics (null until it ends); the pictures are left out, see `result_abridged`."
    )
    result_abridged: bool = Field(False, description="`result` here leaves some of the job's result out.")
    params: dict[str, Any] = Field(description="Its parameters at the start; `data` is null (see `data_points`).")
    data_points: int | None = None
    device: str
    seed: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    train_seconds: float | None = None
    running_since: datetime | None = None
    error: str | None = None
    worker: str | None = None
    has_model: bool = False
    owner: str | None = None
    lesson_id: int | None = None
    parent_id: str | None = None
    fork_step: int | None = None
    checkpoint_step: int | None = None
    resumable: bool = False

    @classmethod
    def from_public(cls, job: JobPublic) -> JobSummary:
        fields = job.model_dump(include=set(cls.model_fields))
        result = fields.get("result")
        if result and any(key in result for key in SUMMARY_LEAVES_OUT):
            fields["result"] = {k: v for k, v in result.items() if k not in SUMMARY_LEAVES_OUT}
            fields["result_abridged"] = True
        if fields["params"].get("data") is not None:  # never a job's own points (only its read has them)
            fields["params"] = {**fields["params"], "data": None}
        return cls.model_validate(fields)


class JobLabel(SQLModel):
    """A run's name and notes, changed after it was made: a field left out stays as it is; null or
    only blanks clears it. Any status: a finished run is named and annotated as well as a running one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    name: str | None = Field(
        None,
        description=f"The run's name, at most {MAX_NAME_CHARS} characters; blanks around it are dropped.",
        schema_extra={"json_schema_extra": {"maxLength": MAX_NAME_CHARS}},
    )
    notes: str | None = Field(
        None,
        description=f"Notes on the run, at most {MAX_NOTES_CHARS} characters (plain text, shown as it is).",
        schema_extra={"json_schema_extra": {"maxLength": MAX_NOTES_CHARS}},
    )

    # The limits are checked here, not by max_length, so the message names the field and its limit.
    @field_validator("name", "notes", mode="before")
    @classmethod
    def _text_within_limit(cls, value: Any, info: ValidationInfo) -> Any:
        limit = MAX_NAME_CHARS if info.field_name == "name" else MAX_NOTES_CHARS
        return check_text_length(info.field_name, value, limit)

    @field_validator("name", "notes")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @model_validator(mode="after")
    def _something(self) -> JobLabel:
        if not self.model_fields_set:
            raise ValueError("nothing to change: give name, notes or both")
        return self


class JobsPublic(SQLModel):
    items: list[JobSummary]
    total: int


# ----------------------------------------------------------------------------------------------
# Users (``playground users add NAME --role student|teacher``)


class UserRole(StrEnum):
    STUDENT = "student"  # reads every run; changes only their own
    TEACHER = "teacher"  # everything


class User(SQLModel, table=True):
    """A person with a token. Only the token's SHA-256 is kept; a removed user keeps their row (and
    their name on their runs) with no token, so nobody signs in as them and the name is not reused."""

    __tablename__ = "users"  # type: ignore[assignment]  ("user" is a reserved word in SQL)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=64)
    role: UserRole
    token_hash: str | None = Field(default=None, unique=True, index=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    removed_at: datetime | None = None


# ----------------------------------------------------------------------------------------------
# Lessons (a teacher's settings for a class: POST /api/lessons, the page /lessons/{id})


class LessonMetric(StrEnum):
    """What the class board ranks runs by: the run's final value (losses: lower is better)."""

    TRAIN_LOSS = "train_loss"
    VAL_LOSS = "val_loss"
    TRAIN_ACC = "train_acc"  # cifar only
    VAL_ACC = "val_acc"  # cifar only

    @property
    def higher_is_better(self) -> bool:
        return self.value.endswith("_acc")


MAX_INSTRUCTIONS_CHARS = 20_000  # a lesson's Markdown: pages of it, not a book


class LessonBase(SQLModel):
    title: str = Field(min_length=1, max_length=200, description="What the class sees as the page's heading.")
    instructions: str = Field(
        "",
        max_length=MAX_INSTRUCTIONS_CHARS,
        description=(
            "Markdown: paragraphs, # headings, - lists, `code`, **strong**, *em*, [links](https://...) to "
            "http(s) or this site; raw HTML shows as text (`instructions_html` is the safe rendering)."
        ),
    )
    kind: str = Field(description="linear, mlp or cifar (GET /api/kinds lists them).")


class LessonCreate(LessonBase):
    params: dict[str, Any] = Field(
        default_factory=dict, description="The kind's parameters as the lesson sets them; omitted ones take their defaults."
    )
    locked: list[str] = Field(
        default_factory=list, max_length=64, description="Parameters shown on the lesson's form but not editable."
    )
    hidden: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Parameters not shown on the lesson's form; like locked ones, a student's run keeps the lesson's value.",
    )
    metric: LessonMetric | None = Field(
        None,
        description=(
            "What the class board ranks by: a run's final train_loss or val_loss (lower is better), or "
            "train_acc or val_acc (cifar; higher is better). Empty: val_acc for cifar, else val_loss when "
            "the lesson holds points out (val_fraction > 0), else train_loss."
        ),
    )


class Lesson(LessonBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    locked: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    hidden: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    metric: LessonMetric
    owner: str | None = Field(default=None, description="The teacher who made it; null: the admin token or an open server.")
    created_at: datetime = Field(default_factory=utcnow)


class LessonPublic(LessonBase):
    id: int
    params: dict[str, Any] = Field(description="Every parameter of the kind, as the lesson sets it (defaults filled in).")
    locked: list[str]
    hidden: list[str]
    metric: LessonMetric
    higher_is_better: bool = Field(description="How the board ranks `metric`: true for accuracies.")
    instructions_html: str = Field(description="`instructions` rendered to HTML that is safe to show as it is.")
    owner: str | None = None
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _as_utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class LessonsPublic(SQLModel):
    items: list[LessonPublic]
    total: int


class LessonInstructions(SQLModel):
    """Instructions to render as a lesson's page will, before it is saved (POST /api/lessons/instructions/preview)."""

    instructions: str = Field(max_length=MAX_INSTRUCTIONS_CHARS, description="Markdown, as a lesson's `instructions`.")


class RenderedInstructions(SQLModel):
    html: str = Field(
        description="The instructions as a lesson's `instructions_html` would have them: safe to show as it is."
    )


class BoardRow(SQLModel):
    """One student's best run so far (by the lesson's metric), or their newest when none has a value yet."""

    owner: str | None = Field(description="Whose runs; null: made without users.")
    job_id: str
    job_name: str | None = None
    status: JobStatus
    value: float | None = Field(description="The run's final value of the lesson's metric; null: none yet.")
    runs: int = Field(description="How many runs of the lesson this student has.")


class LessonBoard(SQLModel):
    lesson_id: int
    metric: LessonMetric
    higher_is_better: bool
    rows: list[BoardRow] = Field(description="Best first; students without a value yet last.")
    job_ids: list[str] = Field(description="Every run of the lesson (a page re-reads the board when one changes).")


# ----------------------------------------------------------------------------------------------
# Metrics and events


class Metric(SQLModel, table=True):
    """One metric point; a column per ``METRIC_FIELDS`` entry, null where the point has none."""

    # (job_id, seq): the points in order. (job_id, event_id): a stream resuming after an event id
    # reads its next page straight from there, instead of scanning the job's points before it.
    __table_args__ = (UniqueConstraint("job_id", "seq"), Index("ix_metric_job_event", "job_id", "event_id"))

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", ondelete="CASCADE")
    seq: int  # 0-based position of the point in the job
    event_id: int  # the SSE event that carried it
    step: int | None = None
    epoch: int | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    train_acc: float | None = None
    val_acc: float | None = None
    w: float | None = None
    b: float | None = None
    lr: float | None = None


_missing = [name for name in METRIC_FIELDS if name not in Metric.model_fields]
assert not _missing, f"Metric has no column for {_missing}: add them (and a migration) when METRIC_FIELDS grows"


class EventType(StrEnum):
    STATUS = "status"
    METRIC = "metric"
    SNAPSHOT = "snapshot"  # a picture of the model now and then (mlp: its curve), see SNAPSHOT_FIELDS
    CONTROL = "control"  # a live parameter change: {"step": k, "params": {...}}, in effect from step k + 1
    DONE = "done"


class JobData(SQLModel, table=True):
    """A job's own [x, y] points (``params.data``), stored once: lists and events leave them out."""

    job_id: str = Field(primary_key=True, foreign_key="job.id", ondelete="CASCADE")
    points: list[list[float]] = Field(sa_column=Column(JSON, nullable=False))


class JobEvent(SQLModel, table=True):
    """A ``status``, ``snapshot`` or ``done`` event (metric events live in ``Metric``), kept for replay."""

    __table_args__ = (UniqueConstraint("job_id", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", ondelete="CASCADE")
    event_id: int
    type: EventType
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
