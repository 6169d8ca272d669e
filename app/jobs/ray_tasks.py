"""What runs on the Ray cluster: the job task, the predict task and the cancel board.

The web process imports this module to name the functions and the message classes; torch (and Ray's
worker-side API) is imported inside the functions, on the node that runs them.

A job is one streaming generator task. It yields, in order::

    TaskStarted                       once, as soon as the task runs (pid, node, GPU)
    list[MetricPoint]                 the points since the last batch, at most one batch per 50 ms
    TaskOutcome                       once, last: status, result, error, and the weights as bytes

The weights travel back as bytes because the node's disk is not the web process's disk: the web
process writes them to ``model_path(models_dir, job_id)``.

Cancelling is cooperative first: the web process marks the job on the ``CancelBoard`` actor, which
the task polls from a side thread and turns into the experiment's ``should_stop()``. A job that does
not stop within the grace period is force-cancelled by Ray (its worker process is killed).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import queue
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.jobs.control import JobControl
from app.jobs.executor import JobCheckpoint, JobControlApplied, JobFinished, JobMetrics, JobSpec, model_path
from app.jobs.messages import RemoteError

log = logging.getLogger(__name__)

# A node's own folder for what a job leaves on its disk: decoded-dataset caches when the data dir is
# read-only, and the weights file on its way back to the web process.
NODE_HOME = Path(tempfile.gettempdir()) / "playground-ray"
# How often a running job asks the cancel board whether it was cancelled.
CANCEL_POLL_S = 0.2


@dataclass(frozen=True)
class TaskOptions:
    """What the task needs from the web process's settings (the node has no settings of its own)."""

    data_dir: str  # the same path on every node: a shared mount, or where each node downloads
    allow_download: bool
    threads: int  # torch intra-op threads: the CPUs the task reserved


@dataclass(frozen=True)
class TaskStarted:
    pid: int
    node: str  # the node's IP address
    hostname: str
    gpu_ids: list[str]
    at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))  # the node's clock


@dataclass(frozen=True)
class TaskOutcome:
    status: str  # succeeded | diverged | cancelled | failed | paused
    result: dict[str, Any] | None = None
    error: str | None = None
    weights: bytes | None = None  # torch.save of the state_dict
    at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))  # the node's clock


@dataclass(frozen=True)
class WarmUp:
    """The answer to ``warm_up``: the node could import the experiments (and torch)."""

    pid: int
    node: str
    torch_version: str
    problems: list[str]


# ----------------------------------------------------------------------------------------------
# The cancel board (an actor with no CPU of its own)


class CancelBoard:
    """The server's commands to running jobs (cancel, pause, live changes), until the job takes them."""

    def __init__(self) -> None:
        self._cancelled: set[str] = set()
        self._paused: set[str] = set()
        self._patches: dict[str, list[dict[str, Any]]] = {}

    def cancel(self, job_id: str) -> None:
        self._cancelled.add(job_id)

    def pause(self, job_id: str) -> None:
        self._paused.add(job_id)

    def patch(self, job_id: str, changes: dict[str, Any]) -> None:
        self._patches.setdefault(job_id, []).append(changes)

    def is_cancelled(self, job_id: str) -> bool:
        return job_id in self._cancelled

    def take(self, job_id: str) -> tuple[bool, bool, list[dict[str, Any]]]:
        """(cancelled, pause asked, changes not yet taken); the pause and the changes are taken once."""
        paused = job_id in self._paused
        self._paused.discard(job_id)
        return job_id in self._cancelled, paused, self._patches.pop(job_id, [])

    def forget(self, job_id: str) -> None:
        self._cancelled.discard(job_id)
        self._paused.discard(job_id)
        self._patches.pop(job_id, None)


# ----------------------------------------------------------------------------------------------
# The job task


def run_job(spec: JobSpec, options: TaskOptions, board: Any) -> Iterator[Any]:
    """The body of the Ray generator task (see the module docstring for what it yields).

    The training itself is the local workers' ``app.jobs.worker.run_job`` with their metric batching,
    so both executors run an experiment the same way; this adds the stream, the cancel board and the
    trip of the weights back to the web process.
    """
    import ray

    from app.config import Settings
    from app.jobs.worker import MetricBatcher
    from app.jobs.worker import run_job as run_on_this_node

    gpu_ids = [str(i) for i in ray.get_gpu_ids()]
    ip, hostname = ray.util.get_node_ip_address(), socket.gethostname()
    yield TaskStarted(pid=os.getpid(), node=ip, hostname=hostname, gpu_ids=gpu_ids)
    node = f"{hostname} ({ip})"  # how errors name the node

    if spec.device.startswith("cuda"):
        # Ray reserved one GPU and made it the only visible one (CUDA_VISIBLE_DEVICES): cuda:0.
        spec = dataclasses.replace(spec, device="cuda:0")
    messages: queue.SimpleQueue[Any] = queue.SimpleQueue()
    sender = _QueueSender(messages)
    batcher = MetricBatcher(spec.job_id, sender, _flusher())
    control = JobControl(spec.job_id, spec.kind, spec.plan, batcher.send_after_points, sender.send)
    finished = threading.Event()

    def train() -> None:
        try:
            settings = Settings(
                home=NODE_HOME, data_dir=Path(options.data_dir), allow_download=options.allow_download
            )
            _set_threads(options.threads)
            outcome = _outcome(run_on_this_node(spec, settings, batcher, control, f"ray {node}"), settings, node)
        except BaseException as exc:  # reported to the job; never lost with the thread
            log.exception("job %s on node %s", spec.job_id, node)
            outcome = TaskOutcome("failed", error=f"{type(exc).__name__}: {exc} (on Ray node {node})")
        finally:
            finished.set()
        messages.put(outcome)

    def watch_commands() -> None:
        while not finished.is_set():
            try:
                cancelled, pause, patches = ray.get(board.take.remote(spec.job_id), timeout=10)
            except Exception as exc:  # the board is gone (the web process left): Ray ends us soon
                log.warning("job %s: cannot reach the command board: %s", spec.job_id, exc)
                return
            for changes in patches:
                control.patch(changes)
            if pause:
                control.pause()
            if cancelled:
                control.cancel()
                return
            finished.wait(CANCEL_POLL_S)

    # Training runs beside this generator, which yields what the batcher sends: yielding from inside
    # the experiment's emit() is not possible (it is a plain callback).
    threading.Thread(target=train, name=f"train-{spec.job_id}", daemon=True).start()
    threading.Thread(target=watch_commands, name=f"commands-{spec.job_id}", daemon=True).start()
    while True:
        message = messages.get()
        if isinstance(message, JobMetrics):
            yield message.points
        elif isinstance(message, (JobControlApplied, JobCheckpoint)):
            yield message  # a checkpoint travels back as bytes: the server's home keeps them
        else:
            yield message  # the TaskOutcome, after every batch (run_job closes the batcher first)
            return


class _QueueSender:
    """The batcher's ``send``: a queue the generator drains (a pipe's role in a local worker)."""

    def __init__(self, messages: queue.SimpleQueue[Any]) -> None:
        self._messages = messages

    def send(self, message: Any) -> None:
        self._messages.put(message)


_FLUSHER: Any = None


def _flusher() -> Any:
    """One flusher thread per Ray worker process, shared by the jobs it runs one after another."""
    global _FLUSHER
    if _FLUSHER is None:
        from app.jobs.worker import Flusher

        _FLUSHER = Flusher()
    return _FLUSHER


def _set_threads(threads: int) -> None:
    import torch

    # Ray sets OMP_NUM_THREADS for a new worker only; a reused worker keeps the last job's count.
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _outcome(finished: JobFinished, settings: Any, node: str) -> TaskOutcome:
    """The local worker's JobFinished, with the weights file read back and the node named on failure."""
    weights = None
    if finished.has_model:
        path = model_path(settings.models_dir, finished.job_id)
        weights = path.read_bytes()
        path.unlink(missing_ok=True)  # the web process keeps the copy; the node only passed it on
    error = finished.error
    if finished.status == "failed" and error:
        # e.g. DatasetMissing: the data dir is checked on the node, not where the server runs.
        error = f"{error} (on Ray node {node})"
    at = finished.at or datetime.now(UTC)
    return TaskOutcome(finished.status, result=finished.result, error=error, weights=weights, at=at)


# ----------------------------------------------------------------------------------------------
# Predicting and warming up


def predict(
    kind: str, params: dict[str, Any], weights: bytes, inputs: Any, action: str = "predict"
) -> tuple[Any, RemoteError | None]:
    """The ``action`` on the job's weights (``app.experiments.model_actions``: the experiment's
    ``predict``, the ONNX export, the view inside a cifar net); an error comes back as a
    ``RemoteError`` the web process rebuilds."""
    try:
        import torch

        from app.experiments.model_actions import run
        from app.experiments.registry import get_experiment

        torch.set_num_threads(1)  # a few numbers or one image: never compete with training
        experiment = get_experiment(kind)
        typed = experiment.params_model.model_validate(params)
        # weights_only: a weights file is data, never code to run.
        state_dict = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
        return run(kind, typed, state_dict, inputs, action), None
    except Exception as exc:
        return None, RemoteError.capture(exc)


def warm_up() -> WarmUp:
    """Import torch and every experiment on one worker: the cluster can run our code."""
    import ray
    import torch

    from app.experiments.registry import EXPERIMENTS

    problems = []
    for spec in EXPERIMENTS.values():
        try:
            spec.load()
        except Exception as exc:
            problems.append(f"{spec.module}: {type(exc).__name__}: {exc}")
    # str(): torch.__version__ is a TorchVersion, whose unpickling would import torch in the web process.
    return WarmUp(os.getpid(), ray.util.get_node_ip_address(), str(torch.__version__), problems)
