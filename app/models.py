"""Tables and API schemas: jobs, their metric points and their status events. No torch here.

Families as in FastAPI's template: ``JobCreate`` (what a client posts), ``Job`` (the table),
``JobPublic`` (what the API returns) and ``JobsPublic`` (a page of them with the total).

Every SSE event of a job has an id that increases by one per event. The ids are stored with the
rows they came from -- ``Metric.event_id`` for the points of a ``metric`` event, ``JobEvent`` for
``status`` and ``done`` events -- so a replay from the database, after the job ended or after a
restart, yields the same events with the same ids as the live stream did.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import field_validator
from sqlalchemy import JSON, Column, UniqueConstraint
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


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
FINAL_STATUSES = tuple(s for s in JobStatus if s not in ACTIVE_STATUSES)


def utcnow() -> datetime:
    return datetime.now(UTC)


# ----------------------------------------------------------------------------------------------
# Jobs

# Seeds go to torch.manual_seed and numpy, which take 32-bit seeds.
MAX_SEED = 2**32 - 1


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
    name: str | None = Field(None, max_length=200, description="A label of your choice.")


class JobBase(SQLModel):
    kind: str = Field(index=True)
    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    device: str
    seed: int
    status: JobStatus = Field(default=JobStatus.QUEUED, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    worker: str | None = Field(default=None, description='Where it ran, e.g. "local-1 (pid 1234)".')
    has_model: bool = Field(default=False, description="Trained weights can be downloaded and used to predict.")


class Job(JobBase, table=True):
    # An integer key keeps "newest first" exact when many jobs share a timestamp.
    number: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=32)
    # Progress as of the last metric point written (the service overlays the live value).
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None


class Progress(SQLModel):
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None


class _JobId(SQLModel):
    id: str


class JobPublic(JobBase, _JobId):  # the id comes first in the JSON
    progress: Progress

    @field_validator("created_at", "started_at", "finished_at")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        # SQLite keeps no time zone: the stored value is UTC.
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    @classmethod
    def from_job(cls, job: Job, progress: Progress | None = None) -> JobPublic:
        data = job.model_dump(exclude={"number", "epoch", "epochs", "step"})
        data["progress"] = progress or Progress(epoch=job.epoch, epochs=job.epochs, step=job.step)
        return cls.model_validate(data)


class JobsPublic(SQLModel):
    items: list[JobPublic]
    total: int


# ----------------------------------------------------------------------------------------------
# Metrics and events


class Metric(SQLModel, table=True):
    """One metric point; a column per ``METRIC_FIELDS`` entry, null where the point has none."""

    # The unique (job_id, seq) index serves every query (they all select by job_id): a second index
    # on job_id alone would only make each insert update one more b-tree.
    __table_args__ = (UniqueConstraint("job_id", "seq"),)

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
    DONE = "done"


class JobEvent(SQLModel, table=True):
    """A ``status``, ``snapshot`` or ``done`` event (metric events live in ``Metric``), kept for replay."""

    __table_args__ = (UniqueConstraint("job_id", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", ondelete="CASCADE")
    event_id: int
    type: EventType
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
