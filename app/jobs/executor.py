"""The executor interface: where jobs run. No torch here.

The job service (web process) owns the database and the SSE broker; an executor only runs jobs and
reports back through events. Two implementations: ``app.jobs.local.LocalExecutor`` (a pool of
spawned worker processes on this machine) and ``app.jobs.ray_executor.RayExecutor`` (a Ray cluster).

Contract
- ``submit`` queues a job; jobs start as capacity frees up, users in turn (round robin over the
  owners with queued jobs) and first-in first-out within a user (``app.jobs.fair_queue``). A job is reported
  by exactly one ``JobStarted`` (unless cancelled before a worker took it), any number of ``JobMetrics``, and
  exactly one ``JobFinished`` -- except for jobs still running when ``stop()`` is called, which get
  no ``JobFinished``; the service marks those ``interrupted``.
- ``JobMetrics`` carries the points produced since the previous batch; an executor sends at most
  about 20 batches a second per job, so each batch can become one SSE ``metric`` event.
- ``JobCheckpoint`` (the run's state, as bytes, at a step boundary: the job's plan decides when, and
  its last state always) and ``JobControlApplied`` (a live change took effect) come from the job's
  ``app.jobs.control.JobControl``, between its ``JobStarted`` and its ``JobFinished``; a paused
  run ends with ``JobFinished(status="paused")`` and its worker takes the next job.
- ``on_event`` is called on the event loop's thread, in the order the events happened per job.
- A job that ends ``succeeded`` (or ``diverged``/``cancelled`` with weights) has its trained
  weights (``torch.save`` of the state_dict) at ``model_path(models_dir, job_id)`` when its
  ``JobFinished`` arrives, with ``has_model=True``.
- A worker that dies mid-job yields ``JobFinished(status="failed", error="worker ... died: ...")``
  and is replaced; the executor keeps serving. A job whose worker died before taking it is not
  failed: it waits for another worker (``JobStarted`` says which took it).
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from app.experiments.base import MetricPoint


@dataclass(frozen=True)
class ControlPlan:
    """What a run does before it takes commands (see ``app.jobs.control``)."""

    resume: bytes | None = None  # a checkpoint (app.experiments.checkpoints format) to start from
    resume_step: int | None = None  # its step
    replay_to_step: int = 0  # boundaries before this step are a replay: no checkpoints, no control events
    skip_points: int = 0  # the first points the run emits are not sent (already stored, or the parent's)
    scheduled: tuple[tuple[int, dict[str, Any]], ...] = ()  # (boundary step, changes), in step order
    pause_at_step: int | None = None  # pause at the first boundary at or after this step
    pause_at_epoch: int | None = None  # pause at the end of this epoch (its epoch-end boundary)
    checkpoint_every: int = 0  # steps between periodic checkpoints; 0: none
    checkpoint_every_s: float = 0.0  # or seconds of training between them (linear, mlp); 0: none
    checkpoint_epoch_ends: bool = False  # at every epoch end (cifar)
    base_points: int = 0  # the job's points stored before this run (a resumed job's)


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    kind: str
    params: dict[str, Any]  # validated, defaults filled in (JSON form)
    seed: int
    device: str  # resolved: "cpu", "cuda:0", ...
    plan: ControlPlan = field(default_factory=ControlPlan)
    owner: str | None = None  # the user it runs for: the queue serves users in turn (app.jobs.fair_queue)


@dataclass(frozen=True)
class JobStarted:
    job_id: str
    device: str
    worker: str  # e.g. "local-1 (pid 1234)"
    # When its worker took it, by the worker's clock: a run's duration is its worker's, not how
    # late a busy web process read the two events (None: the time it is recorded).
    at: datetime | None = None


@dataclass(frozen=True)
class JobMetrics:
    job_id: str
    points: list[MetricPoint]


@dataclass(frozen=True)
class JobControlApplied:
    """Live changes took effect at the boundary after step ``step`` (from step + 1 on)."""

    job_id: str
    step: int
    params: dict[str, Any]


@dataclass(frozen=True)
class JobCheckpoint:
    """The run's whole state after step ``step`` (``app.experiments.checkpoints`` bytes)."""

    job_id: str
    step: int
    epoch: int
    epoch_end: bool
    payload: bytes
    points: int  # the job's points up to this state (the plan's base_points + those this run sent)


@dataclass(frozen=True)
class JobFinished:
    job_id: str
    status: Literal["succeeded", "diverged", "cancelled", "failed", "paused"]
    result: dict[str, Any] | None = None
    error: str | None = None
    has_model: bool = False
    at: datetime | None = None  # when it ended on its worker (None: the time it is recorded)


ExecutorEvent = JobStarted | JobMetrics | JobControlApplied | JobCheckpoint | JobFinished
OnEvent = Callable[[ExecutorEvent], None]


def model_path(models_dir: Path, job_id: str) -> Path:
    return models_dir / f"{job_id}.pt"


@dataclass
class ExecutorInfo:
    executor: str  # "local" | "ray"
    devices: list[str]  # ["cpu", "cuda:0", ...]
    workers: int
    queued: int
    running: int
    resources: dict[str, Any] = field(default_factory=dict)  # Ray: CPUs, GPUs, nodes


class Executor(abc.ABC):
    name: str
    # Cleared by the job service while the database is behind: an executor stops taking its
    # workers' messages until it is set again (back-pressure instead of unbounded buffering).
    accepting: threading.Event

    def __init__(self) -> None:
        self.accepting = threading.Event()
        self.accepting.set()

    @abc.abstractmethod
    async def start(self, on_event: OnEvent) -> None:
        """Start workers (import torch there, learn the devices); return when ready to take jobs."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop all workers within a few seconds; leave no orphan processes."""

    @abc.abstractmethod
    def submit(self, spec: JobSpec) -> None:
        """Queue a job (users in turn, FIFO within a user)."""

    @abc.abstractmethod
    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; False if the executor does not know it.

        Queued: dropped at once, reported as JobFinished(cancelled). Running: the cooperative check
        first, then a hard kill of the worker after the grace period (the worker is replaced); either
        way JobFinished(cancelled) follows within ~2 seconds, the points sent so far kept.
        """

    def withdraw(self, job_id: str) -> bool:
        """Take a queued job back without a word (it is paused); False if it is not queued here."""
        return False

    def control(self, job_id: str, *, pause: bool = False, patch: dict[str, Any] | None = None) -> bool:
        """Pass a command to a running job's ``JobControl``; False if it is not running here."""
        return False

    # How long a call on a saved model may take before its process is given up: a prediction or a
    # look inside is milliseconds (plus, on Ray, starting a worker); an ONNX export traces the model
    # and a confusion cell's first page evaluates the test split: seconds, more on a busy machine.
    predict_timeout_s: float = 60.0
    export_timeout_s: float = 300.0

    async def predict(self, kind: str, params: dict[str, Any], job_id: str, inputs: Any) -> dict[str, Any]:
        """Run the experiment's ``predict`` on the job's saved weights, outside the web process.

        ``inputs`` is a list of floats (linear, mlp) or the uploaded image bytes (cifar).
        """
        value = await self._on_model(kind, params, job_id, inputs, "predict", self.predict_timeout_s)
        return value if isinstance(value, dict) else {"outputs": value}

    async def export_onnx(self, kind: str, params: dict[str, Any], job_id: str) -> bytes:
        """The job's saved model as ONNX (``app.experiments.onnx_export``), made outside the web process."""
        return await self._on_model(kind, params, job_id, None, "onnx", self.export_timeout_s)

    async def inside(self, kind: str, params: dict[str, Any], job_id: str, image: bytes) -> dict[str, Any]:
        """A cifar job's net on one image (``app.experiments.cifar_inside``), outside the web process."""
        return await self._on_model(kind, params, job_id, image, "inside", self.predict_timeout_s)

    async def confusion_cell(
        self, kind: str, params: dict[str, Any], job_id: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        """A page of one confusion-matrix cell's test images (``app.experiments.cifar_cells``),
        outside the web process, where this executor's workers find the data set."""
        where = self._data_where()
        return await self._on_model(kind, params, job_id, {**request, **where}, "cells", self.export_timeout_s)

    @abc.abstractmethod
    async def _on_model(
        self, kind: str, params: dict[str, Any], job_id: str, inputs: Any, action: str, timeout: float
    ) -> Any:
        """Run ``action`` (``app.experiments.model_actions``) on the job's saved weights in one of this
        executor's processes; ModelUnavailable without weights, WorkerDied after ``timeout`` seconds
        (the process is given up), the action's own error rebuilt here."""

    @abc.abstractmethod
    def _data_where(self) -> dict[str, Any]:
        """As a training job gets them: where this executor's workers find the data set
        (``data_dir``) and their cache (``cache_dir``), and how many ``threads`` they use."""

    @abc.abstractmethod
    def info(self) -> ExecutorInfo: ...

    def devices(self) -> list[str]:
        return self.info().devices
