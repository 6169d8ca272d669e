"""The job service: the web process's side of every job. No torch here.

It validates a request (kind, parameters, server limits, device), records the job, hands it to the
executor, and turns what the executor reports into database rows and SSE events:

    executor event     database (writer thread)                  broker (SSE), after the commit
    JobStarted         job: running, started_at, worker          status
    JobMetrics         metric rows, job progress                 metric (at most MAX_EVENT_POINTS each)
    JobControlApplied  job: params, changes; control event       control
    JobCheckpoint      a file under PLAYGROUND_HOME/checkpoints   (none)
    JobFinished        job: final (or paused), result            status, done (none when paused)

Each ``status`` also goes on the server-wide stream (``app.jobs.server_events``, GET /api/events) as
the job's summary, with ``created`` for a new job, ``deleted``, and ``progress`` (once a second).

Commands: create (and fork), cancel, delete, and the playable ones -- pause, resume (and step),
patch. Each job takes one command at a time (``_command``); a command's own writes are awaited
(stored, or 503 after the writer's deadline) before it answers. How a job starts -- from the
beginning, from its newest checkpoint, or from its parent's (a fork) -- is ``app.jobs.plans``'s one
decision, for a new job, a resumed one and a restart alike.

The promise: what a client was sent is what is stored. Event ids are handed out on the event
loop's thread, in order, when the executor's event arrives; the rows go to the database writer
(``app.jobs.writer``), and only once they are committed are the events published. A crash (even
``kill -9``) can lose what was not yet committed, but no client has seen it: after a restart the
next ids follow the last stored one, and a resuming client misses nothing.

If the database refuses writes (locked by another process, disk full), the writer keeps the rows
and tries again; the watchers get the events when they are stored; a job's end is never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import secrets
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

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
    InvalidField,
    LessonNotFound,
    LimitExceeded,
    ModelUnavailable,
    PlaygroundError,
    QueueFull,
)
from app.experiments.base import METRIC_FIELDS, SNAPSHOT_FIELDS, MetricPoint
from app.experiments.params import live_params
from app.experiments.registry import get_experiment
from app.jobs.broker import Event, EventBroker
from app.jobs.checkpoint_store import CheckpointStore
from app.jobs.executor import (
    ControlPlan,
    Executor,
    ExecutorEvent,
    JobCheckpoint,
    JobControlApplied,
    JobFinished,
    JobMetrics,
    JobSpec,
    JobStarted,
    model_path,
)
from app.jobs.history import MetricsReader
from app.jobs.plans import Plans, original_params, params_at
from app.jobs.repeats import NotEnoughRoom, repeat_name, repeat_seeds
from app.jobs.server_events import ServerEvents
from app.jobs.writer import DatabaseWriter
from app.lessons import check_fixed, fixed_params, get_lesson
from app.models import (
    ACTIVE_STATUSES,
    OPEN_STATUSES,
    EventType,
    Job,
    JobCreate,
    JobData,
    JobPublic,
    JobStatus,
    JobSummary,
    Lesson,
    Progress,
    utcnow,
)
from app.users import check_user_limits

log = logging.getLogger(__name__)


def onnx_path(models_dir: Path, job_id: str) -> Path:
    """Where a job's ONNX export is kept, beside its weights (``model_path``)."""
    return models_dir / f"{job_id}.onnx"


# A metric event carries at most this many points: a stream's page of history is whole events, so
# this bounds what one watcher holds (a worker's batch of a fast job can hold thousands).
MAX_EVENT_POINTS = 250
def choose_device(requested: str, available: list[str]) -> str:
    """``auto`` → ``cuda:0`` when the server has a GPU, else ``cpu``; ``cuda`` → ``cuda:0``."""
    if requested == "auto":
        return "cuda:0" if "cuda:0" in available else "cpu"
    device = "cuda:0" if requested == "cuda" else requested
    if device not in available:
        raise DeviceUnavailable(requested, available)
    return device


def json_safe(value: Any) -> Any:
    """``value`` with every float that JSON cannot carry (NaN, ±inf) as None, however deep.

    Everything a worker sends goes through here before it is stored or sent: one NaN in an mlp's
    curve (finite data can overflow the network) must not break the job's stream.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def clean_point(point: MetricPoint) -> dict[str, Any]:
    """The point's known fields with a finite value, in ``METRIC_FIELDS`` order (as stored and replayed)."""
    clean = {}
    for name in METRIC_FIELDS:
        value = point.get(name)
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        if value is not None:
            clean[name] = value
    return clean


@dataclass
class _LiveJob:
    """What the service keeps in memory for a job that is not over (queued, running, paused)."""

    last_event_id: int  # the newest id handed out (committed or on its way)
    status: JobStatus = JobStatus.QUEUED  # as of the newest event taken (its write may be on its way)
    points: int = 0  # metric points so far: the next point's seq
    epochs: int | None = None
    epoch: int | None = None
    step: int | None = None
    ending: bool = False  # its end is on its way to the database
    cancelling: bool = False  # a cancel went to the executor: a pause that lands first ends it too
    started: bool = False  # it has run before (started_at is set)
    # Its training time: seconds over its finished runs, and the start of the current one.
    train_seconds: float | None = None
    running_since: datetime | None = None
    # Live changes sent to the running job and not yet taken (its `control` event confirms each, in
    # order): a run that pauses before its next boundary leaves them to be recorded as made while
    # paused, so they apply when it resumes -- a 202 is never silently lost.
    unconfirmed: list[dict[str, Any]] = field(default_factory=list)
    # A checkpoint that arrived before the points it follows (they wait in the worker's batch):
    # recorded once they are, so a stored checkpoint never lies ahead of the stored points.
    waiting_checkpoint: JobCheckpoint | None = None
    # Its start (status, worker, device, started_at) on its way to the database: a read in the meantime
    # shows it over the stored row, as it shows the live progress, so a running job never reads
    # "queued" with no worker at step 10 on a busy server. An end is shown only once stored, with
    # every point before it (as its `done` event is). Each value leaves once it is stored:
    # column -> (the id of the status event that stores it, value).
    unstored: dict[str, tuple[int, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def next_id(self) -> int:
        self.last_event_id += 1
        return self.last_event_id


def trained(seconds: float | None, since: datetime, until: datetime | None) -> float:
    """A job's training seconds once its run from ``since`` ends at ``until`` (never before it
    began: clocks of different machines, or no point stored since)."""
    return (seconds or 0.0) + max(0.0, ((until or since) - since).total_seconds())


def _summary(status_data: dict[str, Any]) -> dict[str, Any]:
    """A ``status`` event's job as the list shows it (``JobSummary``)."""
    return JobSummary.from_public(JobPublic.model_validate(status_data)).model_dump(mode="json")


class JobService:
    def __init__(self, *, settings: Settings, engine: Engine, executor: Executor) -> None:
        self.settings = settings
        self.engine = engine
        self.executor = executor
        self.writer = DatabaseWriter(engine)
        self.writer.accepting = executor.accepting  # one flag: the writer clears it, the executor waits on it
        self.broker = EventBroker(
            self._read_page,
            self._read_latest,
            max_streams=settings.max_streams,
            max_streams_per_job=settings.max_streams_per_job,
        )
        self.metrics = MetricsReader(engine)
        # Job changes across the server (GET /api/events): created, status, progress, deleted.
        self.server_events = ServerEvents(counts=self.counts)
        self.checkpoints = CheckpointStore(settings.checkpoints_dir, keep=settings.checkpoints_per_job)
        self.plans = Plans(engine, self.checkpoints)
        self._live: dict[str, _LiveJob] = {}
        # ONNX exports (GET /api/jobs/{id}/model?format=onnx), rare and seconds long: one at a time.
        self._exports = asyncio.Lock()
        self._locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------------------------------------
    # Lifecycle

    async def start(self) -> None:
        """Recover from the last run, start the executor, and queue again what was waiting."""
        interrupted = self._mark_interrupted()
        if interrupted:
            log.warning("%d job(s) were running when the server stopped: marked interrupted", interrupted)
        with self._session() as session:
            queued = crud.jobs_with_status(session, status=JobStatus.QUEUED)
            for job in [*queued, *crud.jobs_with_status(session, status=JobStatus.PAUSED)]:
                self._adopt(session, job)
            specs, unable = [], []
            for job in queued:
                try:
                    specs.append(self._spec(session, job))
                except PlaygroundError as exc:  # e.g. a fork whose parent was deleted meanwhile
                    unable.append(JobFinished(job.id, "failed", error=f"Could not start it again: {exc}"))
        self.writer.start()
        await self.executor.start(self.on_event)
        for spec in specs:
            self.executor.submit(spec)
        for finished in unable:
            self._finish(finished)
        if queued:
            log.info("queued %d job(s) again after the restart", len(queued))

    def _adopt(self, session: Session, job: Job) -> None:
        """Make a job that is in the database but not in memory live again (after a restart)."""
        self._live[job.id] = _LiveJob(
            last_event_id=crud.last_event_id(session, job_id=job.id),
            status=job.status,
            started=job.started_at is not None,
            train_seconds=job.train_seconds,
            points=crud.count_metrics(session, job_id=job.id),
            epochs=job.epochs,
            epoch=job.epoch,
            step=job.step,
        )

    def close_streams(self) -> None:
        """End every SSE stream (the server waits for open connections before it shuts down)."""
        self.broker.shutdown()
        self.server_events.shutdown()

    async def stop(self) -> None:
        self.close_streams()
        try:
            await self.executor.stop()
        finally:
            # Jobs still running keep every point they sent: the next start marks them interrupted.
            await self.writer.stop()

    def _mark_interrupted(self) -> int:
        now = utcnow()
        with self._session() as session:
            running = crud.jobs_with_status(session, status=JobStatus.RUNNING)
            for job in running:
                next_id = crud.last_event_id(session, job_id=job.id) + 1
                where = f" at epoch {job.epoch} of {job.epochs}" if job.epoch and job.epochs else ""
                job.status = JobStatus.INTERRUPTED
                job.finished_at = now
                if job.running_since is not None:  # it trained until about its last point
                    job.train_seconds = trained(job.train_seconds, job.running_since, job.last_point_at)
                    job.running_since = None
                job.error = f"The server stopped while this job was running{where}; its metrics so far are kept."
                session.add(job)
                data = self.public(job).model_dump(mode="json")
                crud.add_event(session, job_id=job.id, event_id=next_id, type=EventType.STATUS, data=data)
                crud.add_event(session, job_id=job.id, event_id=next_id + 1, type=EventType.DONE, data=data)
            session.commit()
        return len(running)

    # ------------------------------------------------------------------------------------------
    # Commands (event loop thread)

    async def create(self, request: JobCreate, owner: str | None = None, student: bool = False) -> JobPublic:
        """A new job owned by ``owner`` (a user's name; None without users). From a lesson
        (``request.lesson_id``) it starts from the lesson's values, and a ``student``'s run keeps
        the ones the lesson locks or hides (``app.lessons``)."""
        async with self._user_turn(None if request.paused else owner):
            if not request.paused:
                await self._check_user_limits(owner)
            return await self._create(request, owner, student)

    async def _create(self, request: JobCreate, owner: str | None, student: bool) -> JobPublic:
        if request.fork is not None:
            return await self._fork(request, owner, student)
        spec = get_experiment(request.kind)
        lesson = await self._lesson(request.lesson_id, request.kind)
        values = {**lesson.params, **request.params} if lesson is not None else request.params
        params = self._validate(request.kind, values)
        if lesson is not None and student:
            check_fixed(lesson, fixed_params(lesson), params.model_dump(mode="json"), ["body", "params"])
        device, seed = self._placement(request)
        return await self._record_and_submit(
            spec.kind,
            params,
            device=device,
            seed=seed,
            name=request.name,
            plan=self.plans.policy(spec.kind, params),
            paused=request.paused,
            owner=owner,
            lesson_id=request.lesson_id,
        )

    async def _lesson(self, lesson_id: int | None, kind: str) -> Lesson | None:
        """The lesson a new run is started from (None: none); 404 when there is no such lesson, 422
        when it is of another kind."""
        if lesson_id is None:
            return None
        lesson = await self._read_lesson(lesson_id)
        if lesson is None:
            raise LessonNotFound(lesson_id)
        if lesson.kind != kind:
            raise InvalidField(
                ["body", "kind"], f"Lesson {lesson_id} ({lesson.title!r}) is a {lesson.kind} lesson, not {kind}.", kind
            )
        return lesson

    async def _read_lesson(self, lesson_id: int) -> Lesson | None:
        def read() -> Lesson | None:  # off the event loop, as the service's other reads
            with self._session() as session:
                return get_lesson(session, lesson_id=lesson_id)

        return await to_thread.run_sync(read)

    async def repeat(
        self, job_id: str, count: int, owner: str | None = None, paused: bool = False, student: bool = False
    ) -> list[JobPublic]:
        """``count`` new runs of the job's kind, parameters and device that differ from it only in
        the seed (``app.jobs.repeats``), owned by ``owner``; each made by ``create``, as POST
        /api/jobs makes one. The queues must have room for all of them, or none is made. A fork or a
        run changed while it ran is refused: a new run could not start or change as it did."""
        job = self.get_job(job_id)
        allowed = ["trained from its start without live changes"]
        if job.parent_id is not None:
            raise JobConflict(job_id, f"a fork of {job.parent_id!r} at step {job.fork_step}", "repeat", allowed)
        # A change at step 0 (made while it waited) is in effect from its first step: its params.
        later = [change for change in job.changes if change["step"] > 0]
        if later:
            raise JobConflict(job_id, f"changed while it ran (from step {later[0]['step']})", "repeat", allowed)
        await self._check_room(count, owner, paused)
        data = await to_thread.run_sync(self.job_data, job_id) if job.data_points else None
        params = self._full_params(job, data)
        # Of its lesson, while the lesson exists.
        lesson_id = job.lesson_id if job.lesson_id is not None and await self._read_lesson(job.lesson_id) else None
        created = []
        for seed in repeat_seeds(job.seed, count):
            request = JobCreate(
                kind=job.kind,
                params=params,
                device=job.device,
                seed=seed,
                name=repeat_name(job.name or job.kind, seed),
                paused=paused,
                lesson_id=lesson_id,
            )
            created.append(await self.create(request, owner=owner, student=student))
        return created

    async def _check_room(self, count: int, owner: str | None, paused: bool) -> None:
        """429 when the server's queue, or ``owner``'s share of it, cannot take ``count`` more runs."""
        if not paused:
            await self._check_user_limits(owner)  # none at all: the same answer as POST /api/jobs
        queued = self.executor.info().queued
        if queued + count > self.settings.max_queued:
            room = max(self.settings.max_queued - queued, 0)
            raise NotEnoughRoom("seeds", count, room, self.settings.max_queued, "PLAYGROUND_MAX_QUEUED", "the server's queue")
        limit = self.settings.max_queued_per_user
        if paused or owner is None or limit is None:
            return

        def read() -> list[Job]:
            with self._session() as session:
                return crud.open_jobs_of(session, owner=owner)

        mine = sum(self._status(job) == JobStatus.QUEUED for job in await to_thread.run_sync(read))
        if mine + count > limit:
            raise NotEnoughRoom("seeds", count, max(limit - mine, 0), limit, "PLAYGROUND_MAX_QUEUED_PER_USER", f"{owner}'s queue")

    async def _record_and_submit(
        self,
        kind: str,
        params: Any,
        *,
        device: str,
        seed: int,
        name: str | None,
        plan: ControlPlan,
        run_params: dict[str, Any] | None = None,
        parent_id: str | None = None,
        fork_step: int | None = None,
        paused: bool = False,
        owner: str | None = None,
        lesson_id: int | None = None,
    ) -> JobPublic:
        """Write a new queued job (its points once, its first event), then hand it to the executor;
        a job created ``paused`` waits for resume or step instead (they plan its start then).

        ``run_params``: what the run starts with, when not ``params`` (a fork replays its parent's
        parameters from the checkpoint up to the fork step, then changes to its own).
        """
        stored = params.model_dump(mode="json")
        # The points are stored once, in their own table; the job, its list entries and its events
        # carry only how many there are (``data_points``).
        data = stored.get("data")
        if data is not None:
            stored["data"] = None
        fields = dict(
            id=uuid.uuid4().hex,
            kind=kind,
            name=name,
            params=stored,
            device=device,
            seed=seed,
            status=JobStatus.PAUSED if paused else JobStatus.QUEUED,
            created_at=utcnow(),
            epochs=getattr(params, "epochs", None),
            step=fork_step,
            data_points=len(data) if data is not None else None,
            parent_id=parent_id,
            fork_step=fork_step,
            owner=owner,
            lesson_id=lesson_id,
        )
        job = Job(**fields)
        status_data = self.public(job).model_dump(mode="json")

        def write(session: Session) -> None:
            session.add(Job(**fields))  # a new object each try: a retried write starts afresh
            if data is not None:
                session.add(JobData(job_id=job.id, points=data))
            session.flush()
            crud.add_event(session, job_id=job.id, event_id=1, type=EventType.STATUS, data=status_data)

        await self.writer.run(write)
        self._live[job.id] = _LiveJob(last_event_id=1, status=job.status, epochs=job.epochs, step=fork_step)
        self.broker.publish(job.id, Event(1, EventType.STATUS, status_data))
        self._announce("created", status_data)
        if paused:
            return self.public(job, data=data)
        spec_params = {**(run_params or stored), "data": data} if "data" in stored else dict(run_params or stored)
        self.executor.submit(
            JobSpec(job_id=job.id, kind=kind, params=spec_params, seed=seed, device=device, plan=plan, owner=owner)
        )
        return self.public(job, data=data)

    async def _fork(self, request: JobCreate, owner: str | None = None, student: bool = False) -> JobPublic:
        """A new job from ``request.fork.job_id``'s state at ``request.fork.step`` (see issue "Playable runs")."""
        assert request.fork is not None
        parent = self.get_job(request.fork.job_id)
        k = request.fork.step
        if request.kind != parent.kind:
            raise InvalidField(
                ["body", "kind"], f"A fork has its parent's kind, {parent.kind!r}, not {request.kind!r}.", request.kind
            )
        last = self._progress_step(parent)
        if k > last:
            raise InvalidField(
                ["body", "fork", "step"],
                f"Job {parent.id!r} has run {last} step(s); a fork can start at step 0 to {last}, not {k}.",
                k,
                last_step=last,
            )
        spec = get_experiment(parent.kind)
        data = await to_thread.run_sync(self.job_data, parent.id) if parent.data_points else None
        original = original_params(parent)
        at_fork = params_at(original, parent.changes, k)
        overrides = self._only_live(parent.kind, request.params, at_fork)
        child = self._validate(parent.kind, {**at_fork, **overrides, "data": data})
        lesson_id, lesson = request.lesson_id, await self._lesson(request.lesson_id, parent.kind)
        if lesson is None and parent.lesson_id is not None:  # its parent's, while the lesson exists
            lesson = await self._read_lesson(parent.lesson_id)
            lesson_id = parent.lesson_id if lesson is not None else None
        if lesson is not None and student:  # a student's run of the lesson, a fork too, keeps its values
            check_fixed(lesson, fixed_params(lesson), child.model_dump(mode="json"), ["body", "params"])
        self._check_epochs(parent.kind, child, k, None)
        device, _ = self._placement(request)
        seed = request.seed if request.seed is not None else parent.seed
        if k > 0 and seed != parent.seed:
            raise InvalidField(
                ["body", "seed"],
                f"A fork at step {k} keeps its parent's seed, {parent.seed}: its state up to there comes from it.",
                seed,
            )
        plan = self.plans.policy(parent.kind, child)
        run_params = None
        if k > 0:
            plan, run_params = await to_thread.run_sync(self.plans.for_fork, parent, k, child, plan)
        return await self._record_and_submit(
            spec.kind,
            child,
            device=device,
            seed=seed,
            name=request.name,
            plan=plan,
            run_params=run_params,
            parent_id=parent.id,
            fork_step=k,
            paused=request.paused,
            owner=owner,
            lesson_id=lesson_id,
        )

    async def cancel(self, job_id: str) -> JobPublic:
        async with self._command(job_id):
            job = self.get_job(job_id)
            status = self._status(job)
            if status == JobStatus.PAUSED:  # holds no worker: over here and now
                await self._finish(
                    JobFinished(job_id, "cancelled", result=job.result, has_model=job.has_model), now=True
                )
                return self.public(self.get_job(job_id))
            if status not in ACTIVE_STATUSES:
                raise JobConflict(job_id, status, "cancel", [*ACTIVE_STATUSES, JobStatus.PAUSED])
            if self.executor.cancel(job_id):
                if (live := self._live.get(job_id)) is not None:
                    live.cancelling = True
            else:
                # The executor has never heard of it (it lost it): finish it here so it does not hang.
                if job_id not in self._live:
                    with self._session() as session:
                        self._adopt(session, job)
                error = "Cancelled (the executor had no record of it)."
                await self._finish(JobFinished(job_id, "cancelled", error=error), now=True)
            return self.public(self.get_job(job_id))

    async def pause(self, job_id: str) -> JobPublic:
        """A running job stops at its next step boundary with a checkpoint and gives its worker back;
        a queued one does not start until resumed."""
        async with self._command(job_id):
            job = self.get_job(job_id)
            status = self._status(job)
            if status == JobStatus.QUEUED and self.executor.withdraw(job_id):
                live = self._live[job_id]
                live.status = JobStatus.PAUSED
                await self._change_now(job_id, live, {"status": JobStatus.PAUSED})
                return self.public(self.get_job(job_id))
            if status in ACTIVE_STATUSES and self.executor.control(job_id, pause=True):
                return self.public(job)  # `paused` follows at the step boundary
            raise JobConflict(job_id, status, "pause", list(ACTIVE_STATUSES))

    async def resume(
        self, job_id: str, *, steps: int | None = None, epochs: int | None = None, action: str = "resume"
    ) -> JobPublic:
        """Queue a paused job again, or an interrupted or failed one from its newest checkpoint;
        with ``steps``/``epochs`` (the step command) it pauses again after that much."""
        async with self._command(job_id):
            job = self.get_job(job_id)
            status = self._status(job)
            crashed = status in (JobStatus.INTERRUPTED, JobStatus.FAILED) and job.checkpoint_step is not None
            if action == "step" and status != JobStatus.PAUSED:
                raise JobConflict(job_id, status, "step", [JobStatus.PAUSED])
            if status != JobStatus.PAUSED and not crashed:
                raise JobConflict(
                    job_id, status, action, [JobStatus.PAUSED, "interrupted or failed with a checkpoint"]
                )
            # The owner's limits are checked and the job queued in one turn per user (see _user_turn).
            async with self._user_turn(job.owner):
                await self._check_user_limits(job.owner)
                data = await to_thread.run_sync(self.job_data, job_id) if job.data_points else None
                params = self._validate(job.kind, self._full_params(job, data))
                plan, run_params, position = await to_thread.run_sync(self.plans.for_job, job, params)
                if steps is not None:
                    plan = dataclasses.replace(plan, pause_at_step=position[0] + steps)
                elif epochs is not None:
                    if job.kind == "cifar":
                        done_epochs = position[1] if position[2] else position[1] - 1
                        plan = dataclasses.replace(plan, pause_at_epoch=done_epochs + epochs)
                    else:  # linear, mlp: an epoch is one step
                        plan = dataclasses.replace(plan, pause_at_step=position[0] + epochs)
                live = self._live.get(job_id)
                if live is None:
                    with self._session() as session:
                        self._adopt(session, job)
                    live = self._live[job_id]
                live.status = JobStatus.QUEUED
                live.ending = False
                await self._change_now(
                    job_id, live, {"status": JobStatus.QUEUED, "finished_at": None, "error": None}
                )
                self.metrics.forget(job_id)
                self.executor.submit(self._job_spec(job, params, plan, run_params))
            return self.public(self.get_job(job_id))

    async def patch(self, job_id: str, changes: dict[str, Any], student: bool = False) -> JobPublic:
        """Change live parameters: a running job takes them at its next step boundary, a queued or
        paused one now (in effect from its next step). A ``student`` may not change one that the
        run's lesson locks or hides."""
        async with self._command(job_id):
            job = self.get_job(job_id)
            status = self._status(job)
            if status not in OPEN_STATUSES:
                raise JobConflict(job_id, status, "change", list(OPEN_STATUSES))
            if not changes:
                raise InvalidField(["body", "params"], "No parameter to change: give at least one.", changes)
            changes = self._only_live(job.kind, changes, job.params)
            merged = self._validate(job.kind, {**job.params, **changes})
            self._check_epochs(job.kind, merged, self._progress_step(job), self._progress_epoch(job))
            values = merged.model_dump(mode="json")
            clean = {name: values[name] for name in changes}
            if student and job.lesson_id is not None:
                lesson = await self._read_lesson(job.lesson_id)  # a deleted lesson locks nothing
                if lesson is not None:
                    check_fixed(lesson, clean, clean, ["body", "params"])
            if not clean:
                return self.public(job)  # nothing differs from what it has
            if status == JobStatus.RUNNING and self.executor.control(job_id, patch=clean):
                self._live[job_id].unconfirmed.append(clean)
                return self.public(job)  # recorded when it takes effect (a `control` event)
            if status == JobStatus.QUEUED and not self.executor.withdraw(job_id):
                if self.executor.control(job_id, patch=clean):  # it has just started
                    self._live[job_id].unconfirmed.append(clean)
                    return self.public(job)
                raise JobConflict(job_id, status, "change", list(OPEN_STATUSES))
            step = job.checkpoint_step if job.checkpoint_step is not None else (job.fork_step or 0)
            self._publish(job_id, await self.writer.run(self._change_op(job_id, step, clean)))
            self._changed(job_id, step, clean)
            job = self.get_job(job_id)
            if status == JobStatus.QUEUED:  # taken back above: queued again with the new values
                data = await to_thread.run_sync(self.job_data, job_id) if job.data_points else None
                params = self._validate(job.kind, self._full_params(job, data))
                plan, run_params, _ = await to_thread.run_sync(self.plans.for_job, job, params)
                self.executor.submit(self._job_spec(job, params, plan, run_params))
            return self.public(job)

    async def label(self, job_id: str, label: dict[str, str | None]) -> JobPublic:
        """Set the run's ``name`` and/or ``notes``, whatever its status. The server's stream carries
        it as a ``status`` change (lists show names); the job's own stream is its training's and
        stays as it was."""
        async with self._command(job_id):

            def write(session: Session) -> None:
                if crud.get_job(session, job_id=job_id) is None:
                    raise JobNotFound(job_id)
                crud.update_job(session, job_id=job_id, values=label)

            await self.writer.run(write)
            job = self.public(self.get_job(job_id))
            self._announce("status", job.model_dump(mode="json"))
            return job

    async def delete(self, job_id: str) -> None:
        async with self._command(job_id):
            job = self.get_job(job_id)
            status = self._status(job)
            if status in ACTIVE_STATUSES:
                raise JobConflict(job_id, status, "delete", [str(s) for s in JobStatus if s not in ACTIVE_STATUSES])

            def write(session: Session) -> None:
                crud.delete_job(session, job_id=job_id)

            await self.writer.run(write)
            self._live.pop(job_id, None)
            self.server_events.publish("deleted", {"id": job_id})
            self.metrics.forget(job_id)
            model_path(self.settings.models_dir, job_id).unlink(missing_ok=True)
            onnx_path(self.settings.models_dir, job_id).unlink(missing_ok=True)
            await to_thread.run_sync(self.checkpoints.delete, job_id)

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

    async def inside(self, job_id: str, image: bytes) -> dict[str, Any]:
        """A finished cifar run's net on one image: activations, filters, saliency (a worker's work)."""
        job = self.get_job(job_id)
        if not job.has_model:
            raise ModelUnavailable(job_id, job.status)
        return await self.executor.inside(job.kind, job.params, job_id, image)

    async def confusion_cell(self, job_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """A page of a finished cifar run's confusion cell (a worker's work; ``request``: true, pred,
        offset, limit)."""
        job = self.get_job(job_id)
        stat = await to_thread.run_sync(self.model_file(job).stat)
        # The worker keeps the run's test predictions under this key: new weights, a new key.
        key = f"{job_id}:{stat.st_mtime_ns}:{stat.st_size}"
        return await self.executor.confusion_cell(job.kind, job.params, job_id, {**request, "key": key})

    async def onnx_file(self, job_id: str) -> Path:
        """The job's model as ONNX: made once by the executor (a worker, never this process), kept
        beside its weights, made again when the weights are newer (a resumed run), deleted with it."""
        job = self.get_job(job_id)
        weights = self.model_file(job)
        path = onnx_path(self.settings.models_dir, job_id)
        async with self._exports:  # one export per job however many ask at once

            def fresh() -> bool:
                return path.is_file() and path.stat().st_mtime_ns >= weights.stat().st_mtime_ns

            if not await to_thread.run_sync(fresh):
                data = await self.executor.export_onnx(job.kind, job.params, job_id)

                def write() -> None:
                    part = path.with_suffix(".onnx.part")
                    part.write_bytes(data)
                    part.replace(path)  # atomic: a reader sees the old file or the whole new one

                await to_thread.run_sync(write)
        return path

    # ------------------------------------------------------------------------------------------
    # Executor events (event loop thread)

    def on_event(self, event: ExecutorEvent) -> None:
        live = self._live.get(event.job_id)
        if live is None or live.ending:
            log.warning("event for a job this server does not run: %r", event)
            return
        try:
            if isinstance(event, JobStarted):
                self._started(event, live)
            elif isinstance(event, JobMetrics):
                self._metrics(event, live)
            elif isinstance(event, JobControlApplied):
                if live.unconfirmed:
                    live.unconfirmed.pop(0)
                self.writer.submit(
                    self._change_op(event.job_id, event.step, event.params),
                    then=lambda events, e=event: (self._publish(e.job_id, events), self._changed(e.job_id, e.step, e.params)),
                )
            elif isinstance(event, JobCheckpoint):
                if live.points >= event.points:
                    self._checkpoint(event)
                else:
                    live.waiting_checkpoint = event
            elif isinstance(event, JobFinished):
                self._finish(event)
        except Exception:
            # An executor callback must not raise into the executor's reader.
            log.exception("could not record %s for job %s", type(event).__name__, event.job_id)

    def _started(self, event: JobStarted, live: _LiveJob) -> None:
        live.status = JobStatus.RUNNING
        values: dict[str, Any] = {"status": JobStatus.RUNNING, "device": event.device, "worker": event.worker}
        at = event.at or utcnow()
        if not live.started:  # a resumed job keeps the time it first started
            values["started_at"] = at
            live.started = True
        live.running_since = values["running_since"] = at
        self._change(event.job_id, live, values, shown_now=True)

    def _metrics(self, event: JobMetrics, live: _LiveJob) -> None:
        job_id = event.job_id
        points = [clean_point(p) for p in event.points]
        points = [p for p in points if p]
        if not points:
            return
        rows: list[crud.MetricRow] = []
        events: list[Event] = []
        for start in range(0, len(points), MAX_EVENT_POINTS):
            chunk = points[start : start + MAX_EVENT_POINTS]
            event_id = live.next_id()
            for point in chunk:
                rows.append(crud.metric_row(job_id=job_id, seq=live.points, event_id=event_id, point=point))
                live.points += 1
            events.append(Event(event_id, EventType.METRIC, chunk))
        last = points[-1]
        live.epoch = last.get("epoch", live.epoch)
        live.step = last.get("step", live.step)
        progress = {"epoch": live.epoch, "step": live.step, "last_point_at": utcnow()}
        # A batch of a fast run can hold several pictures of the model: each is kept, since the replay
        # and the histograms over time draw every one (the experiments bound them: mlp about 50 a run,
        # cifar one an epoch).
        for point in event.points:
            if any(name in point for name in SNAPSHOT_FIELDS):
                data = json_safe(
                    {name: point[name] for name in ("step", "epoch", *SNAPSHOT_FIELDS) if point.get(name) is not None}
                )
                events.append(Event(live.next_id(), EventType.SNAPSHOT, data))
        others = [e for e in events if e.type != EventType.METRIC]

        def write(session: Session) -> None:
            crud.insert_metrics(session, rows=rows)
            for e in others:
                crud.add_event(session, job_id=job_id, event_id=e.id, type=e.type, data=e.data)
            crud.update_job(session, job_id=job_id, values=progress)

        server_progress = {"id": job_id, "progress": {"epoch": live.epoch, "epochs": live.epochs, "step": live.step}}

        def stored(_: Any) -> None:
            self._publish(job_id, events)
            self.server_events.publish_progress(server_progress)

        self.writer.submit(write, rows=len(rows), then=stored)
        waiting = live.waiting_checkpoint
        if waiting is not None and live.points >= waiting.points:
            live.waiting_checkpoint = None
            self._checkpoint(waiting)

    def _finish(self, event: JobFinished, now: bool = False) -> Coroutine[Any, Any, None] | None:
        live = self._live[event.job_id]
        if event.status == "paused" and live.cancelling:  # paused at the boundary the cancel missed
            event = dataclasses.replace(event, status="cancelled")
        live.status = JobStatus(event.status)
        paused = live.status == JobStatus.PAUSED  # not over: no done, the job stays live here
        live.ending = not paused
        if paused:
            # Changes the run did not reach before it paused: made while paused, at its step (and
            # written before the paused status, which then shows them).
            for changes in live.unconfirmed:
                step = live.step or 0
                self.writer.submit(
                    self._change_op(event.job_id, step, changes),
                    then=lambda events, c=changes, k=step: (
                        self._publish(event.job_id, events),
                        self._changed(event.job_id, k, c),
                    ),
                )
        live.unconfirmed.clear()
        end = event.at or utcnow()
        values: dict[str, Any] = {
            "status": live.status,
            "finished_at": None if paused else end,
            "result": json_safe(event.result),
            "error": event.error,
            "has_model": event.has_model,
        }
        if live.running_since is not None:  # the run that ends here counts; the pause after it does not
            live.train_seconds = values["train_seconds"] = trained(live.train_seconds, live.running_since, end)
            live.running_since = values["running_since"] = None
        return self._change(event.job_id, live, values, done=not paused, now=now)

    def _checkpoint(self, event: JobCheckpoint) -> None:
        """Keep the checkpoint under PLAYGROUND_HOME (in the writer's thread, in order with the job's
        other writes: a ``paused`` status is written after the checkpoint it resumes from)."""

        def write(session: Session) -> None:
            self.checkpoints.write(event.job_id, event.step, event.epoch, event.epoch_end, event.payload)
            crud.update_job(session, job_id=event.job_id, values={"checkpoint_step": event.step})

        self.writer.submit(write)

    def _change_op(self, job_id: str, step: int, changes: dict[str, Any]) -> Callable[[Session], list[Event]]:
        """The write of a live change: the job's params and list of changes, and its ``control`` event."""
        live = self._live[job_id]
        event_id = live.next_id()

        def write(session: Session) -> list[Event]:
            job = crud.get_job(session, job_id=job_id)
            if job is None:
                raise JobNotFound(job_id)
            before = {name: job.params.get(name) for name in changes}
            job.params = {**job.params, **changes}  # a new dict: the JSON column sees the change
            job.changes = [*job.changes, {"step": step, "params": changes, "before": before}]
            if "epochs" in changes:
                job.epochs = changes["epochs"]
            session.add(job)
            data = {"step": step, "params": changes}
            crud.add_event(session, job_id=job_id, event_id=event_id, type=EventType.CONTROL, data=data)
            return [Event(event_id, EventType.CONTROL, data)]

        return write

    def _changed(self, job_id: str, step: int, changes: dict[str, Any]) -> None:
        live = self._live.get(job_id)
        if live is not None and "epochs" in changes:
            live.epochs = changes["epochs"]
        self.metrics.forget(job_id)

    def _change(
        self,
        job_id: str,
        live: _LiveJob,
        values: dict[str, Any],
        done: bool = False,
        now: bool = False,
        shown_now: bool = False,
    ) -> Coroutine[Any, Any, None] | None:
        """Record a change of the job with its ``status`` event (and ``done``); publish them once stored.
        ``shown_now``: reads show ``values`` already (``_LiveJob.unstored``)."""
        status_id = live.next_id()
        done_id = live.next_id() if done else None
        progress = {"epoch": live.epoch, "step": live.step}
        if shown_now:
            live.unstored.update({key: (status_id, value) for key, value in values.items()})

        def write(session: Session) -> list[Event]:
            job = crud.get_job(session, job_id=job_id)
            if job is None:
                raise JobNotFound(job_id)
            for key, value in {**values, **progress}.items():
                setattr(job, key, value)
            session.add(job)
            shown = Progress(epoch=live.epoch, epochs=live.epochs, step=live.step)
            data = JobPublic.from_job(job, shown, abridged=True).model_dump(mode="json")
            events = [Event(status_id, EventType.STATUS, data)]
            if done_id is not None:
                events.append(Event(done_id, EventType.DONE, data))
            for e in events:
                crud.add_event(session, job_id=job_id, event_id=e.id, type=e.type, data=e.data)
            return events

        def stored(events: list[Event]) -> None:
            for key in values:
                if live.unstored.get(key, (None,))[0] == status_id:  # not changed again since
                    del live.unstored[key]
            self._publish(job_id, events)
            if done:
                self._live.pop(job_id, None)

        if not now:
            self.writer.submit(write, then=stored)
            return None

        async def written() -> None:  # a command's change: stored (or 503) before it answers
            stored(await self.writer.run(write))

        return written()

    def _publish(self, job_id: str, events: list[Event]) -> None:
        for e in events:
            self.broker.publish(job_id, e)
        for e in events:
            if e.type == EventType.STATUS:
                self._announce("status", e.data)

    def _announce(self, type: Literal["created", "status"], status_data: dict[str, Any]) -> None:
        """A job's change on the server-wide stream; never in the way of the job's own events."""
        try:
            self.server_events.publish(type, _summary(status_data))
        except Exception:
            log.exception("could not announce %s of job %s", type, status_data.get("id"))

    def counts(self) -> dict[str, int]:
        """Jobs running and queued, as of the newest events taken (the header's counts)."""
        statuses = [live.status for live in self._live.values()]
        return {"running": statuses.count(JobStatus.RUNNING), "queued": statuses.count(JobStatus.QUEUED)}

    # ------------------------------------------------------------------------------------------
    # Reads (any thread)

    def public(self, job: Job, data: list[list[float]] | None = None, abridged: bool = True) -> JobPublic:
        """The job as the API shows it, with the live progress of a running job; ``abridged``: its
        result without the samples of points and pictures (all but the job's own read)."""
        live = self._live.get(job.id)
        if live is None:
            return JobPublic.from_job(job, data=data, abridged=abridged)
        progress = Progress(epoch=live.epoch, epochs=live.epochs, step=live.step)
        unstored = {key: value for key, (_, value) in live.unstored.items()}
        return JobPublic.from_job(job, progress, data=data, abridged=abridged, unstored=unstored)

    def get_job(self, job_id: str) -> Job:
        with self._session() as session:
            job = crud.get_job(session, job_id=job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def read_job(self, job_id: str) -> JobPublic:
        """The job with its own data points: the one read that sends them."""
        with self._session() as session:
            job = crud.get_job(session, job_id=job_id)
            if job is None:
                raise JobNotFound(job_id)
            data = crud.get_job_data(session, job_id=job_id) if job.data_points else None
        return self.public(job, data=data, abridged=False)

    def job_data(self, job_id: str) -> list[list[float]] | None:
        with self._session() as session:
            if crud.get_job(session, job_id=job_id) is None:
                raise JobNotFound(job_id)
            return crud.get_job_data(session, job_id=job_id)

    async def metrics_body(
        self, job_id: str, fmt: Literal["json", "csv"], max_points: int | None, with_parent: bool = False
    ) -> bytes:
        """The job's metrics table, encoded (see ``app.jobs.history``); kept once the job is over."""
        return await self.metrics.body(job_id, fmt, max_points, final=job_id not in self._live, with_parent=with_parent)

    def disk_free_mb(self) -> float | None:
        """Free space where the database lives (PLAYGROUND_HOME)."""
        try:
            return round(shutil.disk_usage(self.settings.home).free / 1e6, 1)
        except OSError:
            return None

    def problems(self) -> list[str]:
        """What /api/health reports as wrong, in words (empty: all is well)."""
        problems = []
        # The database, the weights and the checkpoints may sit on different disks (a volume per
        # folder): each disk once, named by the first folder of ours on it.
        seen: set[int] = set()
        for folder in (self.settings.home, self.settings.models_dir, self.settings.checkpoints_dir):
            try:
                device = folder.stat().st_dev
                free = shutil.disk_usage(folder).free / 1e6
            except OSError:
                continue
            if device in seen:
                continue
            seen.add(device)
            if free < self.settings.min_free_disk_mb:
                problems.append(
                    f"low disk space: {free:.0f} MB free in {str(folder)!r} "
                    f"(PLAYGROUND_MIN_FREE_DISK_MB={self.settings.min_free_disk_mb})"
                )
        if self.writer.failing_since is not None:
            problems.append(
                f"the database refuses writes ({self.writer.last_error}); {self.writer.pending()} write(s) "
                "are kept and retried"
            )
        return problems

    def is_open(self, job_id: str) -> bool:
        return job_id in self._live

    async def _read_page(self, job_id: str, after: int) -> tuple[list[Event], bool]:
        def read() -> tuple[list[Event], bool]:
            with self._session() as session:
                events, more = crud.read_events_page(session, job_id=job_id, after=after)
            return [Event(i, t, d) for i, t, d in events], more

        return await to_thread.run_sync(read)

    async def _read_latest(self, job_id: str) -> tuple[list[Event], int]:
        def read() -> tuple[list[Event], int]:
            with self._session() as session:
                events = crud.latest_status_events(session, job_id=job_id)
                newest = crud.last_event_id(session, job_id=job_id)
            return [Event(i, t, d) for i, t, d in events], newest

        return await to_thread.run_sync(read)

    # ------------------------------------------------------------------------------------------

    def _job_spec(self, job: Job, params: Any, plan: ControlPlan, run_params: dict[str, Any] | None) -> JobSpec:
        return JobSpec(
            job_id=job.id,
            kind=job.kind,
            params=run_params if run_params is not None else params.model_dump(mode="json"),
            seed=job.seed,
            device=job.device,
            plan=plan,
            owner=job.owner,
        )

    def validate_params(self, kind: str, values: dict[str, Any]) -> Any:
        """The kind's parameters from ``values``, within the server's limits (422 naming the field)."""
        return self._validate(kind, values)

    def _validate(self, kind: str, values: dict[str, Any]) -> Any:
        spec = get_experiment(kind)
        try:
            params = spec.params_model.model_validate(values)
        except ValidationError as exc:
            raise InvalidParams(kind, exc.errors(include_url=False)) from None
        self._check_limits(params)
        return params

    def _only_live(self, kind: str, changes: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        """``changes`` without the parameters given at the value they have; 422 for one that is not
        live and would change (a client may send a whole form back)."""
        live = live_params(get_experiment(kind).params_model)
        kept = {}
        for name, value in changes.items():
            if name in live:
                kept[name] = value
            elif name == "data" or value != current.get(name):
                raise InvalidField(
                    ["body", "params", name],
                    f"{name!r} cannot change during a {kind} run; the live parameters are: {', '.join(live)}.",
                    value,
                    live=live,
                )
        return kept

    def _check_epochs(self, kind: str, params: Any, step: int, epoch: int | None) -> None:
        """A run can be shortened, not to before where it is (linear, mlp: an epoch is a step)."""
        epochs = getattr(params, "epochs", None)
        done = step if kind in ("linear", "mlp") else (epoch or 0)
        if epochs is not None and done and epochs <= done and kind in ("linear", "mlp"):
            raise InvalidField(
                ["body", "params", "epochs"],
                f"epochs={epochs}: the run is at step {step} already; give more than {done}.",
                epochs,
                done=done,
            )
        if epochs is not None and epoch and epochs < epoch:
            raise InvalidField(
                ["body", "params", "epochs"],
                f"epochs={epochs}: the run is in epoch {epoch} already; give at least {epoch}.",
                epochs,
                done=epoch,
            )

    def _progress_epoch(self, job: Job) -> int | None:
        live = self._live.get(job.id)
        return live.epoch if live is not None else job.epoch

    def _placement(self, request: JobCreate) -> tuple[str, int]:
        info = self.executor.info()
        device = choose_device(request.device, info.devices)
        if info.queued >= self.settings.max_queued:
            raise QueueFull(info.queued, self.settings.max_queued)
        return device, request.seed if request.seed is not None else secrets.randbelow(2**31)

    def _status(self, job: Job) -> JobStatus:
        live = self._live.get(job.id)
        return live.status if live is not None else job.status

    def _progress_step(self, job: Job) -> int:
        live = self._live.get(job.id)
        step = live.step if live is not None else job.step
        return step or 0

    @contextlib.asynccontextmanager
    async def _command(self, job_id: str) -> AsyncIterator[None]:
        """One command at a time per job: two clients racing (pause and cancel) end in one state."""
        lock = self._locks.setdefault(job_id, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and not lock._waiters:  # type: ignore[attr-defined]
                self._locks.pop(job_id, None)

    @contextlib.asynccontextmanager
    async def _user_turn(self, owner: str | None) -> AsyncIterator[None]:
        """One request at a time per user from the limit check to the job it lets in: two creates at
        once cannot both pass a limit of one (checked, then acted on, both would get in). Only with
        per-user limits; the job commands' locks, under a key no job id has."""
        limits = self.settings.max_queued_per_user is not None or self.settings.max_running_per_user is not None
        if owner is None or not limits:
            yield
            return
        async with self._command(f"user:{owner}"):
            yield

    async def _change_now(self, job_id: str, live: _LiveJob, values: dict[str, Any]) -> None:
        """A command's change of status: written (or 503) before the command answers."""
        await self._change(job_id, live, values, now=True)  # type: ignore[misc]

    def _check_limits(self, params: Any) -> None:
        epochs = getattr(params, "epochs", None)
        if epochs is not None and epochs > self.settings.max_epochs:
            raise LimitExceeded("epochs", epochs, self.settings.max_epochs, "PLAYGROUND_MAX_EPOCHS")
        data = getattr(params, "data", None)
        if data is not None and len(data) > self.settings.max_data_points:
            raise LimitExceeded("data", len(data), self.settings.max_data_points, "PLAYGROUND_MAX_DATA_POINTS")

    async def _check_user_limits(self, owner: str | None) -> None:
        """429 when ``owner`` has as many jobs queued or running as one user may (app/users.py)."""
        if owner is None or (self.settings.max_queued_per_user is None and self.settings.max_running_per_user is None):
            return

        def read() -> list[Job]:  # off the event loop, as the service's other reads
            with self._session() as session:
                return crud.open_jobs_of(session, owner=owner)

        jobs = await to_thread.run_sync(read)
        check_user_limits(
            owner,
            [self._status(job) for job in jobs],
            max_queued=self.settings.max_queued_per_user,
            max_running=self.settings.max_running_per_user,
        )

    def _session(self) -> Session:
        # Objects stay readable after commit: they are turned into JSON after the session closes.
        return Session(self.engine, expire_on_commit=False)

    @staticmethod
    def _full_params(job: Job, data: list[list[float]] | None) -> dict[str, Any]:
        return {**job.params, "data": data} if data is not None else dict(job.params)

    def _spec(self, session: Session, job: Job) -> JobSpec:
        """A queued job's spec after a restart: from its checkpoint, or its parent's, if it has one."""
        data = crud.get_job_data(session, job_id=job.id) if job.data_points else None
        params = get_experiment(job.kind).params_model.model_validate(self._full_params(job, data))
        plan, run_params, _ = self.plans.for_job(job, params)
        return self._job_spec(job, params, plan, run_params)



