"""The processes the local executor starts: training workers and the predictor.

The web process imports this module only to name the entry points (``worker_main``,
``predictor_main``); torch is imported inside them, in the child process (where the executor forks
them from its forkserver, that has imported torch already: ``app.jobs.preload``).

A worker has three threads:
- main: imports torch (once, if the forkserver has not), says hello, then runs one job after another
  from a local queue;
- reader: receives ``RunJob`` / ``CancelJob`` from the pipe while main trains (a cancel marks the job
  id, which the job's ``should_stop`` looks up), and exits the process when the pipe closes -- the
  web process stopped us or died;
- flusher: sends metric points held back by the 50 ms batching once their batch is due, so a point
  never waits for the next one (a CIFAR epoch-end evaluation can take seconds).
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol

from app.config import Settings
from app.errors import PlaygroundError
from app.experiments.base import MetricPoint
from app.jobs.control import JobControl
from app.jobs.executor import JobFinished, JobMetrics, JobSpec, model_path
from app.jobs.messages import (
    CancelJob,
    ControlJob,
    JobAccepted,
    PredictReply,
    PredictRequest,
    RemoteError,
    RunJob,
    WorkerHello,
)

log = logging.getLogger(__name__)

# At most one JobMetrics per job per this many seconds (~20 a second): each becomes one SSE event and
# one database write in the web process. The first point of a job goes out at once.
FLUSH_INTERVAL_S = 0.05
# The predictor keeps this many models' weights in memory (a page predicting again and again).
PREDICT_CACHE_SIZE = 4
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


# ----------------------------------------------------------------------------------------------
# Entry points (the child processes)


def worker_main(conn: Connection, name: str, threads: int, settings: Settings) -> None:
    _detach_from_terminal()
    _exit_when_parent_dies()
    import torch  # once per worker (or already, in the forkserver): the 1-3 s a job must not pay

    # The web process gives each worker its share of the cores, so two workers do not fight over
    # them. Inter-op threads can only be set before any parallel work, i.e. here.
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)
    from app.experiments.devices import available_devices

    sender = PipeSender(conn)
    sender.send(WorkerHello(pid=os.getpid(), devices=available_devices(), threads=threads))
    worker = _TrainingWorker(name, sender, settings)
    threading.Thread(target=worker.read_commands, args=(conn,), name="commands", daemon=True).start()
    import_experiments(name)  # done already where the forkserver preloaded them (app.jobs.preload)
    worker.serve()


def import_experiments(where: str) -> None:
    """Import the experiment modules now, so the first job of each kind does not pay for it."""
    from app.experiments.registry import EXPERIMENTS

    for spec in EXPERIMENTS.values():
        try:
            spec.load()
        except Exception as exc:  # reported again, to the job, if one of this kind comes
            log.warning("%s: cannot import %s: %s: %s", where, spec.module, type(exc).__name__, exc)


def predictor_main(conn: Connection, settings: Settings) -> None:
    _detach_from_terminal()
    _exit_when_parent_dies()
    import torch

    # Predictions are tiny (a few numbers, one image): one thread, so they never compete with training.
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    conn.send(WorkerHello(pid=os.getpid(), devices=["cpu"], threads=1))
    predictor = Predictor()
    while True:
        try:
            request: PredictRequest = conn.recv()
        except (EOFError, OSError):  # the web process closed the pipe or died
            os._exit(0)
        try:
            reply = PredictReply(request.request_id, value=predictor.predict(request))
        except Exception as exc:
            if not isinstance(exc, PlaygroundError):
                log.exception("predict for %s job failed", request.kind)
            reply = PredictReply(request.request_id, error=RemoteError.capture(exc))
        conn.send(reply)


def _detach_from_terminal() -> None:
    # Ctrl-C in the server's terminal reaches the whole process group; the server then stops the
    # workers itself. Without this, every running job would die with a KeyboardInterrupt first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(processName)s %(levelname)s %(message)s")


def _exit_when_parent_dies() -> None:
    """Die with the web process, even when it was killed with SIGKILL and told us nothing.

    A closing pipe is noticed only when someone reads it, so two watchers. On Linux the kernel:
    PR_SET_PDEATHSIG sends us SIGKILL when the thread that forked us ends -- in the forkserver, which
    exits when the web process does, or (spawned) the web process's event loop or executor monitor
    thread, both of which live as long as the pool; this works even while the main thread holds the
    GIL in a long ``import torch``. Everywhere, a thread that waits on the web process's sentinel
    (multiprocessing's pipe from it, which closes when it dies).
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
    parent = multiprocessing.parent_process()
    if parent is None:  # not started by multiprocessing (a test calling an entry point)
        return
    if not parent.is_alive():  # it died before the kernel was told to tell us
        os._exit(0)

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


# ----------------------------------------------------------------------------------------------
# Sending


class Sender(Protocol):
    def send(self, message: Any) -> None: ...


class PipeSender:
    """Serialises sends on the pipe: the main thread and the flusher both send."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, message: Any) -> None:
        with self._lock:
            self._conn.send(message)


class MetricBatcher:
    """Collects one job's points and sends them as JobMetrics: the first at once, then at most one batch
    per ``interval``; ``close()`` sends the rest, so every point is out before JobFinished.

    ``emit`` is the experiment's hot path (once per epoch of a 5000-epoch linear fit): an uncontended
    lock, an append and a clock read.
    """

    def __init__(
        self, job_id: str, sender: Sender, flusher: Flusher | None = None, interval: float = FLUSH_INTERVAL_S
    ) -> None:
        self.job_id = job_id
        self._sender = sender
        self._flusher = flusher or Flusher()  # a worker shares one across its jobs
        self._interval = interval
        self._lock = threading.Lock()
        self._points: list[MetricPoint] = []
        self._due = 0.0  # monotonic time the next batch may go; 0: the first point goes at once
        self._armed = False  # the flusher is due to look at us
        self._closed = False

    def emit(self, point: MetricPoint) -> None:
        with self._lock:
            self._points.append(point)
            if time.monotonic() >= self._due:
                self._send_locked()
            elif not self._armed:
                self._armed = True
                self._flusher.arm(self, self._due)

    def flush_if_due(self) -> None:
        with self._lock:
            self._armed = False
            if not self._points or self._closed:
                return
            if time.monotonic() >= self._due:
                self._send_locked()
            else:  # an inline send moved the due time on since the flusher was armed
                self._armed = True
                self._flusher.arm(self, self._due)

    def close(self) -> None:
        with self._lock:
            if self._points:
                self._send_locked()
            self._closed = True

    def send_after_points(self, message: Any) -> None:
        """Send ``message`` after every point emitted so far (a change or a checkpoint at a step)."""
        with self._lock:
            if self._points:
                self._send_locked()
            self._sender.send(message)

    def _send_locked(self) -> None:
        points, self._points = self._points, []
        self._due = time.monotonic() + self._interval
        self._sender.send(JobMetrics(self.job_id, points))


class Flusher:
    """One thread per worker that sends a held-back batch when it is due."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._batcher: MetricBatcher | None = None
        self._due = 0.0
        threading.Thread(target=self._run, name="metric-flusher", daemon=True).start()

    def arm(self, batcher: MetricBatcher, due: float) -> None:
        with self._cond:
            self._batcher, self._due = batcher, due
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._batcher is None:
                    self._cond.wait()
                delay = self._due - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue  # re-read: a new job may have armed us in the meantime
                batcher, self._batcher = self._batcher, None
            # Outside our lock: the batcher's lock is taken by emit() before it calls arm().
            batcher.flush_if_due()


# ----------------------------------------------------------------------------------------------
# Training


class _TrainingWorker:
    def __init__(self, name: str, sender: PipeSender, settings: Settings) -> None:
        self.name = name
        self.sender = sender
        self.settings = settings
        self.jobs: queue.SimpleQueue[tuple[RunJob, JobControl, MetricBatcher]] = queue.SimpleQueue()
        # The control of each job received and not finished, by id: the reader thread passes the
        # server's commands to it (a cancel, a pause, a change), the training thread reads them at
        # the job's step boundaries.
        self.controls: dict[str, JobControl] = {}
        self.flusher = Flusher()

    def read_commands(self, conn: Connection) -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):  # the web process stopped us or died: no one to report to
                os._exit(0)
            if isinstance(message, RunJob):
                spec = message.spec
                # First: before the job can send anything. Its time starts the job's clock.
                self.sender.send(JobAccepted(spec.job_id, datetime.now(UTC)))
                batcher = MetricBatcher(spec.job_id, self.sender, self.flusher)
                control = JobControl(spec.job_id, spec.kind, spec.plan, batcher.send_after_points, self.sender.send)
                self.controls[spec.job_id] = control
                self.jobs.put((message, control, batcher))
            elif isinstance(message, CancelJob):
                if (control := self.controls.get(message.job_id)) is not None:
                    control.cancel()
            elif isinstance(message, ControlJob):
                if (control := self.controls.get(message.job_id)) is not None:
                    if message.patch:
                        control.patch(message.patch)
                    if message.pause:
                        control.pause()

    def serve(self) -> None:
        import torch

        while True:
            command, control, batcher = self.jobs.get()
            if torch.get_num_threads() != command.threads:
                torch.set_num_threads(command.threads)
            finished = run_job(command.spec, self.settings, batcher, control, worker=self.name)
            try:
                self.sender.send(finished)
            except Exception as exc:  # a result that does not pickle; the pipe is still clean
                log.exception("%s: cannot send the result of job %s", self.name, command.spec.job_id)
                error = f"The job's result could not be sent to the server: {type(exc).__name__}: {exc}"
                self.sender.send(JobFinished(command.spec.job_id, "failed", error=error))
            self.controls.pop(command.spec.job_id, None)
            if finished.status == "failed" and "CUDA error" in (finished.error or ""):
                # A CUDA error (unlike running out of memory) leaves this process's CUDA context
                # unusable: exit, and the executor starts a fresh worker in this slot.
                log.error("%s: exiting after a CUDA error so a fresh worker replaces it", self.name)
                os._exit(3)



def run_job(spec: JobSpec, settings: Settings, batcher: MetricBatcher, control: JobControl, worker: str) -> JobFinished:
    """Train one job where torch is imported; every point sent (``batcher`` closed) before it returns.

    Not tied to the pool's processes: a Ray task calls it with its own sender and control.
    """
    return dataclasses.replace(_run(spec, settings, batcher, control, worker), at=datetime.now(UTC))


def _run(spec: JobSpec, settings: Settings, batcher: MetricBatcher, control: JobControl, worker: str) -> JobFinished:
    try:
        outcome = _train(spec, settings, batcher, control)
    except PlaygroundError as exc:  # ours: the message is written for the user
        return JobFinished(spec.job_id, "failed", error=str(exc))
    except Exception as exc:  # a bug or an unexpected condition (CUDA out of memory, ...)
        log.exception("%s: job %s (%s) raised", worker, spec.job_id, spec.kind)
        return JobFinished(spec.job_id, "failed", error=f"{type(exc).__name__}: {exc}")
    finally:
        batcher.close()
        if spec.device.startswith("cuda"):
            _release_cuda_memory()

    has_model = False
    if outcome.state_dict is not None:
        path = model_path(settings.models_dir, spec.job_id)
        try:
            save_weights(outcome.state_dict, path)
        except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as a RuntimeError
            error = save_error(path, exc, tensor_bytes(outcome.state_dict))
            return JobFinished(spec.job_id, "failed", result=outcome.result, error=error)
        has_model = True
    return JobFinished(
        spec.job_id, outcome.status.value, result=outcome.result, error=outcome.error, has_model=has_model
    )


def _train(spec: JobSpec, settings: Settings, batcher: MetricBatcher, control: JobControl) -> Any:
    import torch

    from app.experiments.base import RunContext
    from app.experiments.registry import get_experiment

    experiment = get_experiment(spec.kind)
    params = experiment.params_model.model_validate(spec.params)
    module = experiment.load()
    if spec.device.startswith("cuda"):
        torch.cuda.set_device(spec.device)  # this worker's GPU (the executor pins one per worker)
    ctx = RunContext(
        seed=spec.seed,
        device=spec.device,
        emit=control.emit_filter(batcher.emit),
        should_stop=control.should_stop,
        control=control,
        resume=control.resume_checkpoint(),
        data_dir=settings.data_dir,
        allow_download=settings.allow_download,
        cache_dir=settings.home / "cache",
    )
    return module.run(params, ctx)


def save_weights(state_dict: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a reader never sees half a file."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state_dict, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_error(path: Path, exc: BaseException, needed: int = 0) -> str:
    """Why a file could not be written; on a full disk, say so with the free space left.

    torch.save reports ENOSPC as a bare ``RuntimeError`` ("unexpected pos 576 vs 534"), so a full
    disk is told by the space left: less than the file needed, or less than a megabyte.
    """
    import errno
    import shutil

    try:
        free_bytes: int | None = shutil.disk_usage(path.parent).free
    except OSError:
        free_bytes = None
    free = f"{free_bytes / 1e6:.1f} MB free" if free_bytes is not None else "free space unknown"
    full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC
    full = full or (free_bytes is not None and free_bytes < max(needed, 1_000_000))
    if full:
        return f"No space left on the disk of {str(path.parent)!r} ({free}): could not write {path.name}."
    return f"Could not write {str(path)!r} ({free}): {type(exc).__name__}: {exc}"


def tensor_bytes(state: Any) -> int:
    """Bytes of the tensors in a (nested) state dict: what saving it needs at least."""
    if isinstance(state, dict):
        return sum(tensor_bytes(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return sum(tensor_bytes(v) for v in state)
    nbytes = getattr(state, "nbytes", None)
    return nbytes if isinstance(nbytes, int) else 0


def _release_cuda_memory() -> None:
    # Another worker may share this GPU (more workers than GPUs), and a job that ran out of memory
    # must not leave its cached blocks to the next one.
    import torch

    torch.cuda.empty_cache()


# ----------------------------------------------------------------------------------------------
# Predicting


class Predictor:
    def __init__(self) -> None:
        # (path, mtime, size) → state_dict, most recently used last.
        self._weights: OrderedDict[tuple[str, int, int], Any] = OrderedDict()

    def predict(self, request: PredictRequest) -> Any:
        """The request's ``action`` (``app.experiments.model_actions``) on the job's weights."""
        from app.experiments.model_actions import run
        from app.experiments.registry import get_experiment

        experiment = get_experiment(request.kind)
        params = experiment.params_model.model_validate(request.params)
        state_dict = self._load(request.model_file)
        return run(request.kind, params, state_dict, request.inputs, request.action)

    def _load(self, model_file: str) -> Any:
        import torch

        stat = os.stat(model_file)
        key = (model_file, stat.st_mtime_ns, stat.st_size)
        if key in self._weights:
            self._weights.move_to_end(key)
            return self._weights[key]
        # weights_only: a weights file is data, never code to run.
        state_dict = torch.load(model_file, map_location="cpu", weights_only=True)
        self._weights[key] = state_dict
        while len(self._weights) > PREDICT_CACHE_SIZE:
            self._weights.popitem(last=False)
        return state_dict
