"""The job service: the web process's side of every job. No torch here.

It validates a request (kind, parameters, server limits, device), writes the job, hands it to the
executor, and turns what the executor reports into database rows and SSE events:

    executor event     database                                  broker (SSE)
    JobStarted         job: running, started_at, worker          status
    JobMetrics         metric rows (batched, see FLUSH_*)        metric (the points, at once)
    JobFinished        metric rows, job: final, result; events   status, done

Everything that writes runs on the event loop's thread -- the executor's callbacks, the commands
(create, cancel, delete) called from async routes, the periodic flush -- so the writes are
serialised without locks and the event ids are handed out in order. A status change is committed
before it is published, so a client that sees ``done`` and then reads the job finds it final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anyio import to_thread
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from app import crud
from app.config import Settings
from app.errors import (
    DeviceUnavailable,
    InvalidParams,
    JobConflict,
    JobNotFound,
    LimitExceeded,
    ModelUnavailable,
    QueueFull,
)
from app.experiments.base import METRIC_FIELDS, SNAPSHOT_FIELDS, MetricPoint
from app.experiments.registry import get_experiment
from app.jobs.broker import Event, EventBroker
from app.jobs.downsample import downsample_min_max
from app.jobs.executor import (
    Executor,
    ExecutorEvent,
    JobFinished,
    JobMetrics,
    JobSpec,
    JobStarted,
    model_path,
)
from app.models import (
    ACTIVE_STATUSES,
    EventType,
    Job,
    JobCreate,
    JobPublic,
    JobStatus,
    Progress,
    utcnow,
)

log = logging.getLogger(__name__)

# Buffered metric rows are written at least this often, and at once when this many are waiting:
# a few writes a second instead of one per point (the book's job makes 5000 points in ~1 s).
FLUSH_INTERVAL_S = 0.5
FLUSH_ROWS = 5000


def choose_device(requested: str, available: list[str]) -> str:
    """``auto`` → ``cuda:0`` when the server has a GPU, else ``cpu``; ``cuda`` → ``cuda:0``."""
    if requested == "auto":
        return "cuda:0" if "cuda:0" in available else "cpu"
    device = "cuda:0" if requested == "cuda" else requested
    if device not in available:
        raise DeviceUnavailable(requested, available)
    return device


def clean_point(point: MetricPoint) -> dict[str, Any]:
    """The point's known fields with a value, in ``METRIC_FIELDS`` order (as stored and replayed)."""
    return {name: point[name] for name in METRIC_FIELDS if point.get(name) is not None}


@dataclass
class _LiveJob:
    """What the service keeps in memory for a queued or running job."""

    last_event_id: int
    points: int = 0  # metric points so far: the next point's seq
    epochs: int | None = None
    epoch: int | None = None
    step: int | None = None
    progress_written: tuple[int | None, int | None] = (None, None)


@dataclass
class MetricsTable:
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    total: int = 0  # points before downsampling
    last_event_id: int = 0  # the newest event whose points are in ``rows`` (before downsampling)
    snapshot: dict[str, Any] | None = None  # the newest picture of the model up to that event


class JobService:
    def __init__(self, *, settings: Settings, engine: Engine, executor: Executor) -> None:
        self.settings = settings
        self.engine = engine
        self.executor = executor
        self.broker = EventBroker(self._replay)
        self._live: dict[str, _LiveJob] = {}
        self._pending: list[crud.MetricRow] = []  # metric rows not yet written
        self._flusher: asyncio.Task | None = None

    # ------------------------------------------------------------------------------------------
    # Lifecycle

    async def start(self) -> None:
        """Recover from the last run, start the executor, and queue again what was waiting."""
        interrupted = self._mark_interrupted()
        if interrupted:
            log.warning("%d job(s) were running when the server stopped: marked interrupted", interrupted)
        with self._session() as session:
            queued = crud.jobs_with_status(session, status=JobStatus.QUEUED)
            for job in queued:
                self._adopt(session, job)
        await self.executor.start(self.on_event)
        for job in queued:
            self.executor.submit(self._spec(job))
        if queued:
            log.info("queued %d job(s) again after the restart", len(queued))
        self._flusher = asyncio.create_task(self._flush_periodically(), name="metrics-flush")

    def _adopt(self, session: Session, job: Job) -> None:
        """Make a job that is in the database but not in memory live again (after a restart)."""
        history = [Event(i, t, d) for i, t, d in crud.read_events(session, job_id=job.id)]
        self.broker.open(job.id, history)
        self._live[job.id] = _LiveJob(
            last_event_id=history[-1].id if history else 0,
            points=crud.count_metrics(session, job_id=job.id),
            epochs=job.epochs,
            epoch=job.epoch,
            step=job.step,
        )

    def close_streams(self) -> None:
        """End every SSE stream (the server waits for open connections before it shuts down)."""
        self.broker.shutdown()

    async def stop(self) -> None:
        self.close_streams()
        try:
            await self.executor.stop()
        finally:
            if self._flusher is not None:
                self._flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._flusher
            self.flush()  # jobs still running keep every point they sent: next start marks them interrupted

    def _mark_interrupted(self) -> int:
        now = utcnow()
        with self._session() as session:
            running = crud.jobs_with_status(session, status=JobStatus.RUNNING)
            for job in running:
                next_id = crud.last_event_id(session, job_id=job.id) + 1
                where = f" at epoch {job.epoch} of {job.epochs}" if job.epoch and job.epochs else ""
                job.status = JobStatus.INTERRUPTED
                job.finished_at = now
                job.error = f"The server stopped while this job was running{where}; its metrics so far are kept."
                session.add(job)
                data = self.public(job).model_dump(mode="json")
                crud.add_event(session, job_id=job.id, event_id=next_id, type=EventType.STATUS, data=data)
                crud.add_event(session, job_id=job.id, event_id=next_id + 1, type=EventType.DONE, data=data)
            session.commit()
        return len(running)

    # ------------------------------------------------------------------------------------------
    # Commands (event loop thread)

    def create(self, request: JobCreate) -> JobPublic:
        spec = get_experiment(request.kind)
        try:
            params = spec.params_model.model_validate(request.params)
        except ValidationError as exc:
            raise InvalidParams(request.kind, exc.errors(include_url=False)) from None
        self._check_limits(params)
        info = self.executor.info()
        device = choose_device(request.device, info.devices)
        if info.queued >= self.settings.max_queued:
            raise QueueFull(info.queued, self.settings.max_queued)
        with self._session() as session:
            job = Job(
                id=uuid.uuid4().hex,
                kind=spec.kind,
                name=request.name,
                params=params.model_dump(mode="json"),
                device=device,
                seed=request.seed if request.seed is not None else secrets.randbelow(2**31),
                status=JobStatus.QUEUED,
                epochs=getattr(params, "epochs", None),
            )
            session.add(job)
            session.flush()
            public = self.public(job)
            data = public.model_dump(mode="json")
            crud.add_event(session, job_id=job.id, event_id=1, type=EventType.STATUS, data=data)
            session.commit()
        self._live[job.id] = _LiveJob(last_event_id=1, epochs=job.epochs)
        self.broker.open(job.id, [Event(1, EventType.STATUS, data)])
        self.executor.submit(self._spec(job))
        return public

    def cancel(self, job_id: str) -> JobPublic:
        job = self.get_job(job_id)
        if job.status not in ACTIVE_STATUSES:
            raise JobConflict(job_id, job.status, "cancel", list(ACTIVE_STATUSES))
        if not self.executor.cancel(job_id):
            # The executor has never heard of it (it lost it): finish it here so it does not hang.
            if job_id not in self._live:
                with self._session() as session:
                    self._adopt(session, job)
            self._finish(JobFinished(job_id, "cancelled", error="Cancelled (the executor had no record of it)."))
        return self.public(self.get_job(job_id))

    def delete(self, job_id: str) -> None:
        job = self.get_job(job_id)
        if job.status in ACTIVE_STATUSES:
            raise JobConflict(job_id, job.status, "delete", [str(s) for s in JobStatus if s not in ACTIVE_STATUSES])
        with self._session() as session:
            crud.delete_job(session, job_id=job_id)
            session.commit()
        model_path(self.settings.models_dir, job_id).unlink(missing_ok=True)

    async def predict(self, job_id: str, inputs: Any) -> dict[str, Any]:
        job = self.get_job(job_id)
        if not job.has_model:
            raise ModelUnavailable(job_id, job.status)
        return await self.executor.predict(job.kind, job.params, job_id, inputs)

    def model_file(self, job: Job) -> Path:
        path = model_path(self.settings.models_dir, job.id)
        if not job.has_model or not path.is_file():
            raise ModelUnavailable(job.id, job.status)
        return path

    # ------------------------------------------------------------------------------------------
    # Executor events (event loop thread)

    def on_event(self, event: ExecutorEvent) -> None:
        live = self._live.get(event.job_id)
        if live is None:
            log.warning("event for a job this server does not run: %r", event)
            return
        try:
            if isinstance(event, JobStarted):
                self._started(event, live)
            elif isinstance(event, JobMetrics):
                self._metrics(event, live)
            elif isinstance(event, JobFinished):
                self._finish(event)
        except Exception:
            # An executor callback must not raise into the executor's reader.
            log.exception("could not record %s for job %s", type(event).__name__, event.job_id)

    def _started(self, event: JobStarted, live: _LiveJob) -> None:
        self._change(
            event.job_id,
            live,
            {"status": JobStatus.RUNNING, "started_at": utcnow(), "device": event.device, "worker": event.worker},
        )

    def _metrics(self, event: JobMetrics, live: _LiveJob) -> None:
        points = [clean_point(p) for p in event.points]
        if not points:
            return
        live.last_event_id += 1
        for point in points:
            self._pending.append(
                crud.metric_row(job_id=event.job_id, seq=live.points, event_id=live.last_event_id, point=point)
            )
            live.points += 1
        last = points[-1]
        live.epoch = last.get("epoch", live.epoch)
        live.step = last.get("step", live.step)
        self.broker.publish(event.job_id, Event(live.last_event_id, EventType.METRIC, points))
        if len(self._pending) >= FLUSH_ROWS:
            self.flush()
        # A batch can hold several pictures of the model (a fast run); a watcher only needs the newest.
        pictured = [p for p in event.points if any(name in p for name in SNAPSHOT_FIELDS)]
        if pictured:
            self._snapshot(event.job_id, live, pictured[-1])

    def _snapshot(self, job_id: str, live: _LiveJob, point: MetricPoint) -> None:
        """Write and publish a ``snapshot`` event: the step, the epoch and the picture of the model."""
        data = {name: point[name] for name in ("step", "epoch", *SNAPSHOT_FIELDS) if point.get(name) is not None}
        self.flush()  # the points before it first: the database always holds events 1..n, no gaps
        event = Event(live.last_event_id + 1, EventType.SNAPSHOT, data)
        with self._session() as session:
            crud.add_event(session, job_id=job_id, event_id=event.id, type=event.type, data=event.data)
            session.commit()
        live.last_event_id = event.id
        self.broker.publish(job_id, event)

    def _finish(self, event: JobFinished) -> None:
        live = self._live[event.job_id]
        self.flush()
        self._change(
            event.job_id,
            live,
            {
                "status": JobStatus(event.status),
                "finished_at": utcnow(),
                "result": event.result,
                "error": event.error,
                "has_model": event.has_model,
            },
            done=True,
        )
        self.broker.close(event.job_id)
        del self._live[event.job_id]

    def _change(self, job_id: str, live: _LiveJob, values: dict[str, Any], done: bool = False) -> None:
        """Write a change of the job, its ``status`` event (and ``done``); then publish them."""
        self.flush()
        with self._session() as session:
            job = crud.get_job(session, job_id=job_id)
            if job is None:
                raise JobNotFound(job_id)
            for key, value in values.items():
                setattr(job, key, value)
            job.epoch, job.step = live.epoch, live.step
            session.add(job)
            data = self.public(job).model_dump(mode="json")
            events = [Event(live.last_event_id + 1, EventType.STATUS, data)]
            if done:
                events.append(Event(live.last_event_id + 2, EventType.DONE, data))
            for e in events:
                crud.add_event(session, job_id=job_id, event_id=e.id, type=e.type, data=e.data)
            session.commit()
        live.last_event_id = events[-1].id
        live.progress_written = (live.epoch, live.step)
        for e in events:
            self.broker.publish(job_id, e)

    def flush(self) -> None:
        """Write the buffered metric points, and the progress of the jobs they belong to."""
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        with self._session() as session:
            crud.insert_metrics(session, rows=rows)
            for job_id in dict.fromkeys(row[0] for row in rows):
                live = self._live.get(job_id)
                if live is not None and live.progress_written != (live.epoch, live.step):
                    crud.update_job(session, job_id=job_id, values={"epoch": live.epoch, "step": live.step})
                    live.progress_written = (live.epoch, live.step)
            session.commit()

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                self.flush()
            except Exception:
                log.exception("could not write metric points; keeping them for the next try")

    # ------------------------------------------------------------------------------------------
    # Reads (any thread)

    def public(self, job: Job) -> JobPublic:
        """The job as the API shows it, with the live progress of a running job."""
        live = self._live.get(job.id)
        if live is not None:
            progress = Progress(epoch=live.epoch, epochs=live.epochs, step=live.step)
        else:
            progress = Progress(epoch=job.epoch, epochs=job.epochs, step=job.step)
        return JobPublic.from_job(job, progress)

    def get_job(self, job_id: str) -> Job:
        with self._session() as session:
            job = crud.get_job(session, job_id=job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def live_event_id(self, job_id: str) -> int | None:
        """The id of a queued or running job's newest event; None for any other job."""
        live = self._live.get(job_id)
        return live.last_event_id if live is not None else None

    def metrics_table(
        self, job_id: str, max_points: int | None = None, last_event_id: int | None = None
    ) -> MetricsTable:
        """Every point of the job (or at most ``max_points``, extremes kept), in step order.

        Columns with no value at all are left out (a linear job has no accuracy). ``last_event_id``:
        the live job's newest event, taken right after a flush; a finished job's comes from the
        database. The rows may hold points of later events too, never fewer.
        """
        with self._session() as session:
            if crud.get_job(session, job_id=job_id) is None:
                raise JobNotFound(job_id)
            if last_event_id is None:
                last_event_id = crud.last_event_id(session, job_id=job_id)
            snapshot = crud.latest_snapshot(session, job_id=job_id, up_to=last_event_id)
            rows = crud.read_metric_rows(session, job_id=job_id)
        keep = [i for i, name in enumerate(METRIC_FIELDS) if name in ("step", "epoch") or any(r[i] is not None for r in rows)]
        columns = [METRIC_FIELDS[i] for i in keep]
        table = [[row[i] for i in keep] for row in rows]
        total = len(table)
        if max_points is not None:
            values = [j for j, name in enumerate(columns) if name not in ("step", "epoch")]
            table = [table[i] for i in downsample_min_max(table, values, max_points)]
        return MetricsTable(
            columns=columns, rows=table, total=total, last_event_id=last_event_id, snapshot=snapshot
        )

    async def _replay(self, job_id: str, after: int) -> list[Event]:
        def read() -> list[Event]:
            with self._session() as session:
                return [Event(i, t, d) for i, t, d in crud.read_events(session, job_id=job_id, after=after)]

        return await to_thread.run_sync(read)

    # ------------------------------------------------------------------------------------------

    def _check_limits(self, params: Any) -> None:
        epochs = getattr(params, "epochs", None)
        if epochs is not None and epochs > self.settings.max_epochs:
            raise LimitExceeded("epochs", epochs, self.settings.max_epochs, "PLAYGROUND_MAX_EPOCHS")
        data = getattr(params, "data", None)
        if data is not None and len(data) > self.settings.max_data_points:
            raise LimitExceeded("data", len(data), self.settings.max_data_points, "PLAYGROUND_MAX_DATA_POINTS")

    def _session(self) -> Session:
        # Objects stay readable after commit: they are turned into JSON after the session closes.
        return Session(self.engine, expire_on_commit=False)

    def _spec(self, job: Job) -> JobSpec:
        return JobSpec(job_id=job.id, kind=job.kind, params=job.params, seed=job.seed, device=job.device)
