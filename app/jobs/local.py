"""The local executor: a pool of long-lived worker processes on this machine. No torch here.

The workers are forked from a forkserver that has imported torch and the experiments once
(``app.jobs.preload``; spawned, each importing torch itself, where there is no forkserver), and each
runs job after job, so a small job starts in milliseconds and a worker that replaces a killed one is
ready at once. The web process never imports torch and never touches CUDA: workers report the devices
when they start. Beside the training workers, one "predictor" process answers ``predict`` so a
prediction never waits behind a training job.

One monitor thread does all the listening: it waits on every child's pipe (messages), every child's
process sentinel (deaths), a wake-up pipe (the set of children changed, a cancel was asked) and the
earliest hard-kill deadline, and hands events to the event loop with ``call_soon_threadsafe``. The
pool's state is guarded by one lock, so ``submit``/``cancel``/``info`` may be called from any thread.
Children are started only by the event loop's thread and the monitor thread: on Linux a spawned
child dies with the thread that started it (PR_SET_PDEATHSIG, see ``app.jobs.worker``), and both of
those live as long as the pool; a forked one dies with the forkserver, which exits with us.

Scheduling: users take turns (``app.jobs.fair_queue``: round robin over the owners with queued jobs,
first-in first-out within an owner), and an owner with PLAYGROUND_MAX_RUNNING_PER_USER jobs running
waits for one of them to end. A CUDA job needs a worker whose GPU no other job is using
(workers are pinned round-robin to the GPUs); a CPU job takes any idle worker, preferring one whose
GPU is busy or that has none, so a free GPU stays free for CUDA jobs. A job that cannot start yet
does not hold back a later job that can.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
import weakref
from collections import Counter
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from app.config import Settings
from app.errors import DeviceUnavailable, ModelUnavailable, WorkerDied
from app.jobs.executor import (
    Executor,
    ExecutorEvent,
    ExecutorInfo,
    JobCheckpoint,
    JobControlApplied,
    JobFinished,
    JobMetrics,
    JobSpec,
    JobStarted,
    OnEvent,
    model_path,
)
from app.jobs.fair_queue import FairQueue
from app.jobs.messages import (
    CancelJob,
    ControlJob,
    JobAccepted,
    PredictReply,
    PredictRequest,
    RunJob,
    WorkerHello,
)
from app.jobs.worker import predictor_main, worker_main

log = logging.getLogger(__name__)

START_TIMEOUT_S = 180.0  # importing torch takes 1-3 s; much longer on a loaded 2-core box
STOP_GRACE_S = 2.0  # SIGTERM, then SIGKILL after this long
MAX_START_FAILURES = 3  # a slot whose worker dies this many times in a row before hello is given up


def _start_context(method: str) -> BaseContext:
    """How children start (PLAYGROUND_WORKER_START): forked from a forkserver that has imported torch
    (``app.jobs.preload``) where the platform has one (Linux, macOS), or spawned. Never a plain fork
    of the web process: its threads (the event loop's helpers, the database writer) do not survive one."""
    if method == "spawn" or "forkserver" not in multiprocessing.get_all_start_methods():
        return get_context("spawn")
    context = get_context("forkserver")
    # One forkserver per web process, started on the first child; the list is read then.
    context.set_forkserver_preload(["app.jobs.preload"])
    return context


def describe_exit(exitcode: int | None) -> str:
    """``-9`` → "killed by signal SIGKILL (...)", ``1`` → "exited with code 1"."""
    if exitcode is None:
        return "exit status unknown"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = str(-exitcode)
        if -exitcode == signal.SIGKILL:
            return f"killed by signal {name} (out of memory, or killed from outside)"
        return f"killed by signal {name}"
    return f"exited with code {exitcode}"


@dataclasses.dataclass(eq=False)
class _Child:
    """One child process (a training worker or the predictor) and the web end of its pipe."""

    name: str  # "local-1", ..., "predictor"
    process: BaseProcess
    conn: Connection
    index: int = 0  # worker slot, 1-based; a replacement takes the slot (and name) of the dead one
    gpu: str | None = None  # the GPU this worker is pinned to
    ready: bool = False  # said hello
    pipe_open: bool = True
    job: JobSpec | None = None  # running here, with the device it runs on
    unaccepted: JobSpec | None = None  # the job as it was queued, sent here and not yet accepted
    unaccepted_controls: list[ControlJob] = dataclasses.field(default_factory=list)  # sent to it meanwhile
    cancel_deadline: float | None = None  # monotonic time to kill the worker if the job still runs
    killed_for_cancel: bool = False
    retired: bool = False  # one too many (the pool shrank); dies without a replacement
    start_failures: int = 0  # deaths before hello in a row in this slot, this one not counted
    send_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def label(self) -> str:
        return f"{self.name} (pid {self.process.pid})"

    def send(self, message: Any) -> bool:
        """False if the pipe is broken (the process is dying; its death is handled by the monitor)."""
        try:
            with self.send_lock:
                self.conn.send(message)
        except (OSError, ValueError):
            return False
        return True


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self._mp = _start_context(settings.worker_start)
        self._lock = threading.RLock()
        # The cores this process may use (a container or taskset may allow fewer than the machine has).
        self._cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self._target: int | None = settings.workers  # None: decided when the devices are known
        self._threads = max(1, self._cpus // (settings.workers or 2))
        self._workers: list[_Child] = []
        self._queue = FairQueue()
        # The pauses and changes a job was sent by a worker that died before taking it, by job id:
        # they follow the job to the worker that takes it.
        self._carried_controls: dict[str, list[ControlJob]] = {}
        self._devices: list[str] | None = None
        self._predictor: _Child | None = None
        self._predictions: dict[int, tuple[asyncio.Future[Any], _Child]] = {}
        self._request_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_event: OnEvent | None = None
        self._start_error: WorkerDied | None = None
        self._broken: str | None = None  # why no worker can run jobs any more
        self._starting = False
        self._stopping = False
        self._monitor: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # ------------------------------------------------------------------------------------------
    # Executor interface

    async def start(self, on_event: OnEvent) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_event = on_event
        _live_executors.add(self)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            with self._lock:
                self._starting = True
                # Before the devices are known: PLAYGROUND_WORKERS, or 2 (the CPU default), adjusted
                # to one per GPU when the first hello lists GPUs.
                for index in range(1, (self.settings.workers or 2) + 1):
                    self._workers.append(self._spawn_worker(index, gpu=None))
            self._monitor = threading.Thread(target=self._monitor_loop, name="local-executor", daemon=True)
            self._monitor.start()
            while True:
                with self._lock:
                    if self._start_error is not None:
                        raise self._start_error
                    if self._target is not None and all(w.ready for w in self._workers if not w.retired):
                        self._starting = False
                        self._dispatch()
                        break
                if time.monotonic() > deadline:
                    raise WorkerDied(
                        ", ".join(w.label for w in self._workers if not w.ready),
                        "starting",
                        f"no hello within {START_TIMEOUT_S:g} s",
                    )
                await asyncio.sleep(0.01)
        except BaseException:
            await self.stop()
            raise
        log.info(
            "local executor: %d workers (%s), %d threads each, devices %s",
            len(self._workers),
            ", ".join(w.label for w in self._workers),
            self._threads,
            self._devices,
        )

    async def stop(self) -> None:
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            children = list(self._workers) + ([self._predictor] if self._predictor else [])
            predictions = list(self._predictions.values())
            self._predictions.clear()
        for future, _ in predictions:
            future.cancel()
        self._wake()
        if self._monitor is not None:
            await asyncio.to_thread(self._monitor.join)
        await asyncio.to_thread(_terminate, children, STOP_GRACE_S)
        with contextlib.suppress(OSError):
            os.close(self._wake_r)
            os.close(self._wake_w)
        _live_executors.discard(self)

    def submit(self, spec: JobSpec) -> None:
        with self._lock:
            if self._stopping:
                raise RuntimeError(f"the local executor is stopped; job {spec.job_id} cannot be queued")
            if self._broken is not None:
                self._emit(JobFinished(spec.job_id, "failed", error=self._broken))
                return
            if spec.device != "cpu" and self._devices is not None and spec.device not in self._devices:
                error = str(DeviceUnavailable(spec.device, self._devices))
                self._emit(JobFinished(spec.job_id, "failed", error=error))
                return
            self._queue.push(spec)
            self._dispatch()

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            if self._queue.remove(job_id) is not None:
                self._carried_controls.pop(job_id, None)
                self._emit(JobFinished(job_id, "cancelled"))
                return True
            worker = next((w for w in self._workers if w.job and w.job.job_id == job_id), None)
            if worker is None:
                return False
            if worker.cancel_deadline is None:
                # Cooperative first: the job's should_stop() turns true and it ends with its weights.
                worker.cancel_deadline = time.monotonic() + self.settings.cancel_grace_seconds
                worker.send(CancelJob(job_id))
                self._wake()  # the monitor's wait now has a deadline to keep
            return True

    def withdraw(self, job_id: str) -> bool:
        with self._lock:
            self._carried_controls.pop(job_id, None)  # it comes back with a plan of its own
            return self._queue.remove(job_id) is not None

    def control(self, job_id: str, *, pause: bool = False, patch: dict[str, Any] | None = None) -> bool:
        with self._lock:
            worker = next((w for w in self._workers if w.job and w.job.job_id == job_id), None)
            if worker is None:
                return False
            message = ControlJob(job_id, pause=pause, patch=patch)
            if worker.unaccepted is not None:
                worker.unaccepted_controls.append(message)
            return worker.send(message)

    def _data_where(self) -> dict[str, Any]:
        return {
            "data_dir": str(self.settings.data_dir),
            "cache_dir": str(self.settings.home / "cache"),
            "threads": self._threads,
        }

    async def _on_model(
        self, kind: str, params: dict[str, Any], job_id: str, inputs: Any, action: str, timeout: float
    ) -> Any:
        path = model_path(self.settings.models_dir, job_id)
        if not path.is_file():
            raise ModelUnavailable(job_id, f"missing its weights file {str(path)!r}")
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._stopping:
                raise RuntimeError("the local executor is stopped")
            predictor = self._ensure_predictor()
            request_id = next(self._request_ids)
            future: asyncio.Future[Any] = loop.create_future()
            self._predictions[request_id] = (future, predictor)
        request = PredictRequest(request_id, kind, params, str(path), inputs, action)
        try:
            # An uploaded image can be megabytes: the pipe would block the event loop while the
            # predictor is still starting, so send from a thread.
            await asyncio.to_thread(predictor.send, request)
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            predictor.process.kill()  # the monitor sees it die and fails its other requests
            raise WorkerDied(
                predictor.label, f"answering a {action} request", f"no answer within {timeout:g} s, killed"
            ) from None
        finally:
            with self._lock:
                self._predictions.pop(request_id, None)

    def info(self) -> ExecutorInfo:
        with self._lock:
            workers = [w for w in self._workers if not w.retired]
            return ExecutorInfo(
                executor=self.name,
                devices=list(self._devices or []),
                workers=len(workers),
                queued=len(self._queue),
                running=sum(w.job is not None for w in workers),
                resources={
                    "cpus": self._cpus,
                    "threads_per_worker": self._threads,
                    "gpus": sorted({w.gpu for w in workers if w.gpu}),
                    "worker_pids": [w.process.pid for w in workers],
                    "predictor_pid": self._predictor.process.pid if self._predictor else None,
                },
            )

    # ------------------------------------------------------------------------------------------
    # Children

    def _spawn_worker(self, index: int, gpu: str | None) -> _Child:
        name = f"local-{index}"
        child = self._spawn(name, worker_main, (name, self._threads, self.settings))
        child.index, child.gpu = index, gpu
        return child

    def _ensure_predictor(self) -> _Child:
        """The predictor, started on first need: when a job has saved weights (so it is warm by the time a
        page asks), or a predict comes first. A server that never trains never pays its memory."""
        if self._predictor is None:
            self._predictor = self._spawn("predictor", predictor_main, (self.settings,))
            self._wake()
        return self._predictor

    def _spawn(self, name: str, target: Any, args: tuple[Any, ...]) -> _Child:
        web_end, child_end = self._mp.Pipe(duplex=True)
        # Not a daemon: a daemonic process may not start processes of its own (a DataLoader with
        # workers would fail). The atexit hook below and stop() end the children instead.
        process = self._mp.Process(target=target, args=(child_end, *args), name=name, daemon=False)
        process.start()
        # Our copy of the child's end must go, or we would never see EOF when the child dies.
        child_end.close()
        return _Child(name=name, process=process, conn=web_end)

    # ------------------------------------------------------------------------------------------
    # Scheduling (called with the lock held)

    def _dispatch(self) -> None:
        if self._stopping or self._starting or not self._queue:
            return
        idle = [w for w in self._workers if w.ready and w.job is None and not w.retired and w.pipe_open]
        if not idle:
            return
        busy_gpus = {w.job.device for w in self._workers if w.job is not None and w.job.device != "cpu"}
        running = Counter(w.job.owner for w in self._workers if w.job is not None and w.job.owner is not None)
        limit = self.settings.max_running_per_user

        def can_start(spec: JobSpec) -> bool:
            if limit is not None and spec.owner is not None and running[spec.owner] >= limit:
                return False
            return _pick_worker(spec, idle, busy_gpus) is not None

        while idle and (spec := self._queue.pop(can_start)) is not None:
            worker = _pick_worker(spec, idle, busy_gpus)
            assert worker is not None
            idle.remove(worker)
            job = spec if spec.device == "cpu" else dataclasses.replace(spec, device=worker.gpu)
            # JobStarted waits for the worker's JobAccepted, which comes before anything else of the
            # job; a worker that dies first never had the job, which then waits for the next one
            # (_on_exit) instead of failing with a death that was not its own.
            worker.job, worker.unaccepted = job, spec
            worker.unaccepted_controls = self._carried_controls.pop(job.job_id, [])
            if worker.send(RunJob(job, self._threads)):
                for message in worker.unaccepted_controls:
                    worker.send(message)  # read after the RunJob
            else:  # dead since it was last heard from: its exit is on its way to the monitor
                worker.pipe_open = False  # never picked again
                worker.process.kill()
            if spec.owner is not None:
                running[spec.owner] += 1
            if job.device != "cpu":
                busy_gpus.add(job.device)

    def _fit_pool_to_devices(self, devices: list[str]) -> None:
        """The first hello tells us the devices: pin workers to GPUs; one worker per GPU by default."""
        self._devices = devices
        gpus = [d for d in devices if d != "cpu"]
        if self._target is None:
            self._target = len(gpus) or 2
            self._threads = max(1, self._cpus // self._target)
        for worker in self._workers[self._target :]:
            worker.retired = True
            worker.process.terminate()
        for index in range(len(self._workers) + 1, self._target + 1):
            self._workers.append(self._spawn_worker(index, gpu=None))
        for worker in self._workers:
            if gpus and not worker.retired:
                worker.gpu = gpus[(worker.index - 1) % len(gpus)]

    # ------------------------------------------------------------------------------------------
    # Monitor thread

    def _monitor_loop(self) -> None:
        while True:
            if not self.accepting.is_set():
                # The database is behind (see app.jobs.writer): leave the workers' messages in their
                # pipes, so a worker blocks in its send instead of the web process filling up.
                self.accepting.wait(0.5)
                if self._stopping:
                    return
                continue
            with self._lock:
                if self._stopping:
                    return
                children = list(self._workers) + ([self._predictor] if self._predictor else [])
                waitables: dict[Any, tuple[str, _Child]] = {}
                for child in children:
                    if child.pipe_open:
                        waitables[child.conn] = ("message", child)
                    waitables[child.process.sentinel] = ("exit", child)
                deadlines = [w.cancel_deadline for w in self._workers if w.cancel_deadline and w.job]
                timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = wait([*waitables, self._wake_r], timeout)
            with self._lock:
                if self._stopping:
                    return
                try:
                    self._handle(ready, waitables)
                except Exception:  # a bug here must not silence the pool (or end its children)
                    log.exception("local executor: monitor failed to handle %r", ready)

    def _handle(self, ready: list[Any], waitables: dict[Any, tuple[str, _Child]]) -> None:
        if self._wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 4096)
        # Messages first: a dying worker's last points and its JobFinished come before its death.
        for obj in ready:
            if waitables.get(obj, ("",))[0] == "message":
                self._receive(waitables[obj][1])
        for obj in ready:
            if waitables.get(obj, ("",))[0] == "exit":
                self._on_exit(waitables[obj][1])
        self._kill_overdue()

    def _receive(self, child: _Child) -> None:
        """Handle every message waiting on the child's pipe; notice when it closes."""
        try:
            while child.pipe_open and child.conn.poll():
                self._on_message(child, child.conn.recv())
        except (EOFError, OSError):  # the process is exiting: its sentinel follows
            child.pipe_open = False
        except Exception:  # a message cut short by a kill mid-send
            log.exception("%s: unreadable message", child.label)
            child.pipe_open = False

    def _on_message(self, child: _Child, message: Any) -> None:
        if isinstance(message, JobAccepted):
            if child.job is not None and child.job.job_id == message.job_id:
                child.unaccepted, child.unaccepted_controls = None, []
                self._emit(JobStarted(child.job.job_id, child.job.device, child.label, message.at))
        elif isinstance(message, (JobMetrics, JobControlApplied, JobCheckpoint, JobFinished)):
            if child.job is None or child.job.job_id != message.job_id:
                return  # a job we already reported (e.g. failed when its cancel was forced)
            if isinstance(message, JobFinished):
                child.job, child.cancel_deadline = None, None
                self._emit(message)
                self._dispatch()
                if message.has_model:
                    self._ensure_predictor()
            else:
                self._emit(message)
        elif isinstance(message, PredictReply):
            future, _ = self._predictions.get(message.request_id, (None, None))
            if future is not None:
                if message.error is not None:
                    self._resolve(future, exception=message.error.rebuild())
                else:
                    self._resolve(future, result=message.value)
        elif isinstance(message, WorkerHello):
            child.ready = True
            if child is self._predictor:
                return
            if self._devices is None:
                self._fit_pool_to_devices(message.devices)
            self._dispatch()

    def _on_exit(self, child: _Child) -> None:
        self._receive(child)  # what it sent before it died
        child.process.join(5)
        child.conn.close()
        how = describe_exit(child.process.exitcode)
        if child is self._predictor:
            self._predictor = None
            error = WorkerDied(child.label, "answering a predict request", how)
            for future, predictor in self._predictions.values():
                if predictor is child:
                    self._resolve(future, exception=error)
            log.warning("%s died: %s; a new one starts when needed", child.label, how)
            return
        if child not in self._workers:
            return
        self._workers.remove(child)
        if child.retired:
            return
        if child.job is not None and child.unaccepted is not None:
            # Sent to a worker that died before it read it (a send into a killed process's pipe can
            # succeed while its threads are torn down, or it fails): the job never started there.
            if child.cancel_deadline is not None:
                self._emit(JobFinished(child.job.job_id, "cancelled"))
            else:
                log.info("%s died before taking job %s; it waits for another worker", child.label, child.job.job_id)
                self._queue.put_back(child.unaccepted)
                if child.unaccepted_controls:
                    self._carried_controls[child.job.job_id] = child.unaccepted_controls
                self._dispatch()
        elif child.job is not None:
            if child.killed_for_cancel:
                self._emit(
                    JobFinished(
                        child.job.job_id,
                        "cancelled",
                        error=(
                            f"The job did not stop within {self.settings.cancel_grace_seconds:g} s of the "
                            f"cancel, so worker {child.label} was killed; its metrics so far are kept."
                        ),
                    )
                )
            else:
                error = WorkerDied(child.label, "running the job", how)
                log.warning("%s", error)
                self._emit(JobFinished(child.job.job_id, "failed", error=str(error)))

        if not child.ready:  # died before hello: a worker that cannot start
            failures = child.start_failures + 1
            if self._starting:
                self._start_error = WorkerDied(child.label, "starting", how)
                return
            if failures >= MAX_START_FAILURES:
                log.error(
                    "%s died %d times while starting (%s); the pool goes on without it", child.name, failures, how
                )
                if not self._workers:
                    self._fail_everything(f"No worker could start: {WorkerDied(child.label, 'starting', how)}")
                return
        else:
            failures = 0
        replacement = self._spawn_worker(child.index, child.gpu)
        replacement.start_failures = failures
        self._workers.append(replacement)
        self._workers.sort(key=lambda w: w.index)
        log.info("%s replaces %s", replacement.label, child.label)

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for worker in self._workers:
            if worker.job is None or worker.cancel_deadline is None or worker.killed_for_cancel:
                continue
            if now < worker.cancel_deadline:
                continue
            self._receive(worker)  # it may have just finished
            if worker.job is not None:
                worker.killed_for_cancel = True
                worker.process.kill()

    def _fail_everything(self, reason: str) -> None:
        self._broken = reason
        self._carried_controls.clear()
        for spec in self._queue.drain():
            self._emit(JobFinished(spec.job_id, "failed", error=reason))

    # ------------------------------------------------------------------------------------------
    # Hand-offs to the event loop

    def _emit(self, event: ExecutorEvent) -> None:
        if self._loop is None or self._on_event is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            self._loop.call_soon_threadsafe(self._on_event, event)

    def _resolve(self, future: asyncio.Future[Any], result: Any = None, exception: BaseException | None = None) -> None:
        def settle() -> None:
            if future.done():
                return
            if exception is not None:
                future.set_exception(exception)
            else:
                future.set_result(result)

        with contextlib.suppress(RuntimeError):
            future.get_loop().call_soon_threadsafe(settle)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # full: a wake-up is already pending
            os.write(self._wake_w, b"\0")

    def _kill_now(self) -> None:
        """At interpreter exit without stop(): no orphans, and multiprocessing's own exit hook would
        otherwise wait for our (non-daemonic) children forever."""
        with self._lock:
            self._stopping = True
            children = list(self._workers) + ([self._predictor] if self._predictor else [])
        self._wake()
        _terminate(children, 0.0)


def _pick_worker(spec: JobSpec, idle: list[_Child], busy_gpus: set[str]) -> _Child | None:
    if spec.device == "cpu":
        # Keep free GPUs for CUDA jobs: prefer a worker without a GPU or whose GPU is in use.
        return min(idle, key=lambda w: (w.gpu is not None and w.gpu not in busy_gpus, w.index), default=None)
    free = [w for w in idle if w.gpu is not None and w.gpu not in busy_gpus]
    return min(free, key=lambda w: (w.gpu != spec.device, w.index), default=None)


def _terminate(children: list[_Child], grace: float) -> None:
    """SIGTERM, up to ``grace`` seconds for them to exit, then SIGKILL; reap them all."""
    alive = [c for c in children if c.process.exitcode is None]
    for child in alive:
        with contextlib.suppress(OSError):
            if grace > 0:
                child.process.terminate()
            else:
                child.process.kill()
    deadline = time.monotonic() + grace
    while alive and (left := deadline - time.monotonic()) > 0:
        wait([c.process.sentinel for c in alive], left)
        alive = [c for c in alive if c.process.exitcode is None]
    for child in alive:
        with contextlib.suppress(OSError):
            child.process.kill()
    for child in children:
        child.process.join(5)
        child.conn.close()


# Executors started and not stopped; killed at interpreter exit. Registered after multiprocessing's
# own exit hook (imported above), so it runs first: atexit runs hooks last-in first-out.
_live_executors: weakref.WeakSet[LocalExecutor] = weakref.WeakSet()


@atexit.register
def _kill_live_executors() -> None:
    for executor in list(_live_executors):
        executor._kill_now()
