"""Keyword-only functions over a session: what the service and the routes do to the tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from app.experiments.base import METRIC_FIELDS
from app.job_filters import JobFilter, JobSort
from app.models import (
    EventType,
    Job,
    JobData,
    JobEvent,
    JobStatus,
    Metric,
    User,
    UserRole,
)

# ----------------------------------------------------------------------------------------------
# Jobs


def get_job(session: Session, *, job_id: str) -> Job | None:
    return session.exec(select(Job).where(Job.id == job_id)).first()


def list_jobs(
    session: Session,
    *,
    kind: str | None = None,
    status: JobStatus | None = None,
    filters: Sequence[JobFilter] = (),
    sort: JobSort = JobSort.NEWEST,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Job], int]:
    """A page of the jobs that match every filter, in ``sort`` order, and how many match in all."""
    conditions = [condition.clause() for condition in filters]
    if kind is not None:
        conditions.append(col(Job.kind) == kind)
    if status is not None:
        conditions.append(col(Job.status) == status)
    query = select(Job).where(*conditions).order_by(*sort.order_by())
    count = select(func.count()).select_from(Job).where(*conditions)
    items = session.exec(query.offset(offset).limit(limit)).all()
    return list(items), session.exec(count).one()


def count_jobs(session: Session, *, status: JobStatus) -> int:
    return session.exec(select(func.count()).select_from(Job).where(Job.status == status)).one()


def jobs_with_status(session: Session, *, status: JobStatus) -> list[Job]:
    """Oldest first, so requeued jobs keep their order."""
    return list(session.exec(select(Job).where(Job.status == status).order_by(col(Job.number))).all())


def update_job(session: Session, *, job_id: str, values: dict[str, Any]) -> None:
    session.exec(update(Job).where(col(Job.id) == job_id).values(**values))  # type: ignore[call-overload]


def delete_job(session: Session, *, job_id: str) -> None:
    session.exec(delete(JobData).where(col(JobData.job_id) == job_id))  # type: ignore[call-overload]
    session.exec(delete(Metric).where(col(Metric.job_id) == job_id))  # type: ignore[call-overload]
    session.exec(delete(JobEvent).where(col(JobEvent.job_id) == job_id))  # type: ignore[call-overload]
    session.exec(delete(Job).where(col(Job.id) == job_id))  # type: ignore[call-overload]


def get_job_data(session: Session, *, job_id: str) -> list[list[float]] | None:
    """The job's own [x, y] points; None when it trains on the book's."""
    return session.exec(select(JobData.points).where(JobData.job_id == job_id)).first()


def open_jobs_of(session: Session, *, owner: str) -> list[Job]:
    """The user's queued, running and paused jobs (for the per-user limits)."""
    query = select(Job).where(Job.owner == owner, col(Job.status).in_([JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED]))
    return list(session.exec(query).all())


# ----------------------------------------------------------------------------------------------
# Users


def get_user(session: Session, *, name: str) -> User | None:
    return session.exec(select(User).where(User.name == name)).first()


def user_by_token_hash(session: Session, *, token_hash: str) -> User | None:
    """The signed-in user of that token; None for a wrong token (a removed user has none)."""
    return session.exec(select(User).where(User.token_hash == token_hash)).first()


def any_users(session: Session) -> bool:
    """Whether the server has users who can sign in (a removed user cannot)."""
    return session.exec(select(User.id).where(col(User.token_hash).is_not(None)).limit(1)).first() is not None


def add_user(session: Session, *, name: str, role: UserRole, token_hash: str) -> User:
    user = User(name=name, role=role, token_hash=token_hash)
    session.add(user)
    return user


def list_users(session: Session) -> list[tuple[User, int]]:
    """Every user, removed ones too, by name, with how many runs each owns."""
    runs = dict(
        session.exec(select(Job.owner, func.count()).where(col(Job.owner).is_not(None)).group_by(Job.owner)).all()  # type: ignore[call-overload]
    )
    users = session.exec(select(User).order_by(col(User.name))).all()
    return [(user, runs.get(user.name, 0)) for user in users]


# ----------------------------------------------------------------------------------------------
# Metrics and events


# Plain DB-API executemany with tuples: even SQLAlchemy Core builds and checks a dict per row, which
# made writing the points the web process's largest CPU cost (columns: trusted constants).
_METRIC_COLUMNS = ("job_id", "seq", "event_id", *METRIC_FIELDS)
_METRIC_INSERT = (
    f"INSERT INTO metric ({', '.join(_METRIC_COLUMNS)}) VALUES ({', '.join('?' * len(_METRIC_COLUMNS))})"
)

MetricRow = tuple[Any, ...]  # job_id, seq, event_id, then the METRIC_FIELDS values


def metric_row(*, job_id: str, seq: int, event_id: int, point: dict[str, Any]) -> MetricRow:
    return (job_id, seq, event_id, *(point.get(name) for name in METRIC_FIELDS))


def insert_metrics(session: Session, *, rows: list[MetricRow]) -> None:
    if rows:
        session.connection().exec_driver_sql(_METRIC_INSERT, rows)


def add_event(session: Session, *, job_id: str, event_id: int, type: EventType, data: dict[str, Any]) -> None:
    session.add(JobEvent(job_id=job_id, event_id=event_id, type=type, data=data))


def read_metric_rows(session: Session, *, job_id: str, through_step: int | None = None) -> list[tuple[Any, ...]]:
    """Every point of a job in order (up to ``through_step``), as tuples in ``METRIC_FIELDS`` order."""
    columns = [getattr(Metric, name) for name in METRIC_FIELDS]
    query = select(*columns).where(Metric.job_id == job_id).order_by(col(Metric.seq))
    if through_step is not None:
        query = query.where(Metric.step <= through_step)
    return [tuple(row) for row in session.exec(query).all()]  # type: ignore[call-overload]


def count_metrics(session: Session, *, job_id: str) -> int:
    return session.exec(select(func.count()).select_from(Metric).where(Metric.job_id == job_id)).one()


def last_event_id(session: Session, *, job_id: str) -> int:
    metric = session.exec(select(func.max(Metric.event_id)).where(Metric.job_id == job_id)).one()
    other = session.exec(select(func.max(JobEvent.event_id)).where(JobEvent.job_id == job_id)).one()
    return max(metric or 0, other or 0)


def latest_snapshot(session: Session, *, job_id: str, up_to: int) -> dict[str, Any] | None:
    """The data of the job's newest ``snapshot`` event with id <= ``up_to``; None if it has none."""
    query = (
        select(JobEvent.data)
        .where(JobEvent.job_id == job_id, JobEvent.type == EventType.SNAPSHOT, JobEvent.event_id <= up_to)
        .order_by(col(JobEvent.event_id).desc())
        .limit(1)
    )
    return session.exec(query).first()


def snapshots(session: Session, *, job_id: str, limit: int) -> list[dict[str, Any]]:
    """The data of the job's ``snapshot`` events (pictures of the model), oldest first; at most
    ``limit``, evenly spread with the newest always in when there are more."""
    query = (
        select(JobEvent.data)
        .where(JobEvent.job_id == job_id, JobEvent.type == EventType.SNAPSHOT)
        .order_by(col(JobEvent.event_id))
    )
    found = list(session.exec(query).all())
    if len(found) <= limit:
        return found
    last = len(found) - 1
    return [found[round(i * last / (limit - 1))] for i in range(limit)]


def read_events(session: Session, *, job_id: str, after: int = 0) -> list[tuple[int, EventType, Any]]:
    """The job's events with id > ``after`` as (id, type, data), rebuilt from both tables.

    A metric event's data is the list of its points, each without its null fields, exactly as the
    live stream sent it.
    """
    events: list[tuple[int, EventType, Any]] = [
        (e.event_id, e.type, e.data)
        for e in session.exec(
            select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.event_id > after)
        ).all()
    ]
    columns = [getattr(Metric, name) for name in METRIC_FIELDS]
    query = (
        select(Metric.event_id, *columns)
        .where(Metric.job_id == job_id, Metric.event_id > after)
        .order_by(col(Metric.seq))
    )
    batches: dict[int, list[dict[str, Any]]] = {}
    for event_id, *values in session.exec(query).all():  # type: ignore[call-overload]
        batches.setdefault(event_id, []).append(
            {name: value for name, value in zip(METRIC_FIELDS, values, strict=True) if value is not None}
        )
    events.extend((event_id, EventType.METRIC, points) for event_id, points in batches.items())
    events.sort(key=lambda e: e[0])
    return events



def _metric_event(values: tuple[Any, ...]) -> dict[str, Any]:
    return {name: value for name, value in zip(METRIC_FIELDS, values, strict=True) if value is not None}


def read_events_page(
    session: Session, *, job_id: str, after: int, max_rows: int = 250, max_events: int = 100
) -> tuple[list[tuple[int, EventType, Any]], bool]:
    """The job's next events with id > ``after``, a page of at most about ``max_rows`` points and
    ``max_events`` other events, whole events only; and whether more follow.

    A stream reads a long history page by page, holding one page at a time, and each page starts
    at its event id through the (job_id, event_id) index, however far into the job it is.
    """
    others = session.exec(
        select(JobEvent.event_id, JobEvent.type, JobEvent.data)
        .where(JobEvent.job_id == job_id, JobEvent.event_id > after)
        .order_by(col(JobEvent.event_id))
        .limit(max_events)
    ).all()
    columns = [getattr(Metric, name) for name in METRIC_FIELDS]
    rows = list(
        session.exec(
            select(Metric.event_id, *columns)  # type: ignore[call-overload]
            .where(Metric.job_id == job_id, Metric.event_id > after)
            .order_by(col(Metric.event_id), col(Metric.id))
            .limit(max_rows + 1)
        ).all()
    )
    cutoff: float = float("inf")
    if len(rows) > max_rows:
        first, last = rows[0][0], rows[-1][0]
        if first == last:  # one event larger than a page (written by an older version): all of it
            rows = list(
                session.exec(
                    select(Metric.event_id, *columns)  # type: ignore[call-overload]
                    .where(Metric.job_id == job_id, Metric.event_id == first)
                    .order_by(col(Metric.id))
                ).all()
            )
            cutoff = first
        else:
            cutoff = last - 1  # the last event may be cut short: it starts the next page
    if len(others) == max_events:
        cutoff = min(cutoff, others[-1][0])
    events: list[tuple[int, EventType, Any]] = [(i, EventType(t), d) for i, t, d in others if i <= cutoff]
    batches: dict[int, list[dict[str, Any]]] = {}
    for event_id, *values in rows:
        if event_id <= cutoff:
            batches.setdefault(event_id, []).append(_metric_event(tuple(values)))
    events.extend((event_id, EventType.METRIC, points) for event_id, points in batches.items())
    events.sort(key=lambda e: e[0])
    return events, cutoff != float("inf")


def latest_status_events(session: Session, *, job_id: str) -> list[tuple[int, EventType, Any]]:
    """The job's newest ``status`` event, and its ``done`` if that is the job's newest event."""
    newest = session.exec(
        select(JobEvent.event_id, JobEvent.type, JobEvent.data)
        .where(JobEvent.job_id == job_id, col(JobEvent.type).in_([EventType.STATUS, EventType.DONE]))
        .order_by(col(JobEvent.event_id).desc())
        .limit(2)
    ).all()
    events = [(i, EventType(t), d) for i, t, d in reversed(newest)]
    return events if events and events[-1][1] == EventType.DONE else events[-1:]


def count_metrics_between(session: Session, *, job_id: str, after_step: int, through_step: int | None) -> int:
    """Points with ``after_step`` < step <= ``through_step`` (no upper bound when None)."""
    query = select(func.count()).select_from(Metric).where(Metric.job_id == job_id, Metric.step > after_step)
    if through_step is not None:
        query = query.where(Metric.step <= through_step)
    return session.exec(query).one()


def last_metric_step(session: Session, *, job_id: str) -> int:
    return session.exec(select(func.max(Metric.step)).where(Metric.job_id == job_id)).one() or 0
