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

import io
import logging
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import DatasetMissing, PlaygroundError
from app.experiments.base import MetricPoint
from app.jobs.executor import JobSpec
from app.jobs.messages import RemoteError

log = logging.getLogger(__name__)

# At most one batch of points per job per this many seconds (~20 a second), as the local workers do:
# each batch becomes one SSE event and one database write in the web process.
FLUSH_INTERVAL_S = 0.05
# How often a running job asks the cancel board whether it was cancelled.
CANCEL_POLL_S = 0.2


@dataclass(frozen=True)
class TaskOptions:
    """What the task needs from the web process's settings (the node has no settings of its own)."""

    data_dir: str  # the same path on every node: a shared mount, or where each node downloads
    allow_download: bool
    cache_dir: str | None
    threads: int  # torch intra-op threads: the CPUs the task reserved


@dataclass(frozen=True)
class TaskStarted:
    pid: int
    node: str  # the node's IP address
    hostname: str
    gpu_ids: list[str]


@dataclass(frozen=True)
class TaskOutcome:
    status: str  # succeeded | diverged | cancelled | failed
    result: dict[str, Any] | None = None
    error: str | None = None
    weights: bytes | None = None  # torch.save of the state_dict


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
    def __init__(self) -> None:
        self._cancelled: set[str] = set()

    def cancel(self, job_id: str) -> None:
        self._cancelled.add(job_id)

    def is_cancelled(self, job_id: str) -> bool:
        return job_id in self._cancelled

    def forget(self, job_id: str) -> None:
        self._cancelled.discard(job_id)


# ----------------------------------------------------------------------------------------------
# The job task


def run_job(spec: JobSpec, options: TaskOptions, board: Any) -> Iterator[Any]:
    """The body of the Ray generator task (see the module docstring for what it yields)."""
    import ray

    gpu_ids = [str(i) for i in ray.get_gpu_ids()]
    node = ray.util.get_node_ip_address()
    yield TaskStarted(pid=os.getpid(), node=node, hostname=socket.gethostname(), gpu_ids=gpu_ids)

    points: list[MetricPoint] = []
    lock = threading.Lock()
    finished = threading.Event()
    stop = threading.Event()
    outcome: list[TaskOutcome] = []

    def emit(point: MetricPoint) -> None:
        with lock:
            points.append(point)

    def train() -> None:
        try:
            outcome.append(_train(spec, options, emit, stop.is_set, node))
        except BaseException as exc:  # reported to the job; never lost with the thread
            outcome.append(TaskOutcome("failed", error=_error_message(exc, node)))
        finally:
            finished.set()

    def watch_cancel() -> None:
        while not finished.is_set():
            try:
                if ray.get(board.is_cancelled.remote(spec.job_id), timeout=10):
                    stop.set()
                    return
            except Exception as exc:  # the board is gone (the web process left): Ray ends us soon
                log.warning("job %s: cannot reach the cancel board: %s", spec.job_id, exc)
                return
            finished.wait(CANCEL_POLL_S)

    # Training runs beside this generator, which sends what it has every FLUSH_INTERVAL_S: yielding
    # from inside the experiment's emit() is not possible (it is a plain callback).
    threading.Thread(target=train, name=f"train-{spec.job_id}", daemon=True).start()
    threading.Thread(target=watch_cancel, name=f"cancel-{spec.job_id}", daemon=True).start()
    while True:
        done = finished.wait(FLUSH_INTERVAL_S)
        with lock:
            batch, points[:] = list(points), []
        if batch:
            yield batch
        if done:
            break
    yield outcome[0]


def _train(spec: JobSpec, options: TaskOptions, emit: Any, should_stop: Any, node: str) -> TaskOutcome:
    import torch

    from app.experiments.base import RunContext
    from app.experiments.registry import get_experiment

    # Ray sets OMP_NUM_THREADS for a new worker only; a reused worker keeps the last job's count.
    if torch.get_num_threads() != options.threads:
        torch.set_num_threads(options.threads)
    experiment = get_experiment(spec.kind)
    params = experiment.params_model.model_validate(spec.params)
    module = experiment.load()
    device = spec.device
    if device.startswith("cuda"):
        # Ray reserved one GPU and made it the only visible one (CUDA_VISIBLE_DEVICES): cuda:0.
        device = "cuda:0"
        torch.cuda.set_device(device)
    ctx = RunContext(
        seed=spec.seed,
        device=device,
        emit=emit,
        should_stop=should_stop,
        data_dir=Path(options.data_dir),
        allow_download=options.allow_download,
        cache_dir=Path(options.cache_dir) if options.cache_dir else None,
    )
    try:
        run = module.run(params, ctx)
    finally:
        if device.startswith("cuda"):
            torch.cuda.empty_cache()  # the next task on this worker may need the memory
    weights = None
    if run.state_dict is not None:
        buffer = io.BytesIO()
        torch.save(run.state_dict, buffer)
        weights = buffer.getvalue()
    return TaskOutcome(run.status.value, result=run.result, error=run.error, weights=weights)


def _error_message(exc: BaseException, node: str) -> str:
    """The job's error, worded as the local workers word it, plus the node where it happened."""
    if isinstance(exc, DatasetMissing):
        return (
            f"{exc} (on Ray node {node}: every node that runs jobs needs the dataset, either on a "
            f"shared PLAYGROUND_DATA_DIR mounted at the same path, or downloaded there)"
        )
    if isinstance(exc, PlaygroundError):
        return str(exc)
    log.error("job raised on node %s", node, exc_info=exc)
    return f"{type(exc).__name__}: {exc} (on Ray node {node})"


# ----------------------------------------------------------------------------------------------
# Predicting and warming up


def predict(kind: str, params: dict[str, Any], weights: bytes, inputs: Any) -> tuple[Any, RemoteError | None]:
    """The experiment's ``predict``; an error comes back as a ``RemoteError`` the web process rebuilds."""
    try:
        import torch

        from app.experiments.registry import get_experiment

        torch.set_num_threads(1)  # a few numbers or one image: never compete with training
        experiment = get_experiment(kind)
        typed = experiment.params_model.model_validate(params)
        # weights_only: a weights file is data, never code to run.
        state_dict = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
        return experiment.load().predict(typed, state_dict, inputs), None
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
