"""The Ray executor: every job is a Ray task on a cluster. No torch here; Ray is imported lazily.

``PLAYGROUND_EXECUTOR=ray`` picks it (``pip install '.[ray]'``); ``RAY_ADDRESS`` picks the cluster
(``auto``, ``ray://host:10001``, ``host:6379``), and without it the server starts a local Ray.

- A job is a streaming generator task (``app.jobs.ray_tasks.run_job``) that reserves
  ``PLAYGROUND_RAY_NUM_CPUS`` CPUs and, for a CUDA job, one GPU (Ray sets ``CUDA_VISIBLE_DEVICES``).
- The server decides the order, not Ray: jobs wait here in the fair queue (``app.jobs.fair_queue``:
  users in turn, FIFO within a user, PLAYGROUND_MAX_RUNNING_PER_USER) and go to Ray when a slot
  is free -- as many tasks at once as the cluster has CPUs for (``info().workers``). A CUDA job
  that finds no free GPU still waits in Ray's own queue, holding its slot.
- One thread per job reads the task's stream (started, metric batches, outcome) and hands each item
  to the event loop, where it becomes the executor event; the trained weights come back as bytes and
  are written to ``model_path`` before ``JobFinished(has_model=True)``.
- Cancel: the cooperative check first (the ``CancelBoard`` actor the task polls), then
  ``ray.cancel(force=True)`` after ``PLAYGROUND_CANCEL_GRACE_SECONDS``.
- A task whose worker or node dies surfaces as a Ray error on the stream: the job fails with it.
- The code runs on the cluster as shipped by this process (``runtime_env`` ``py_modules``: the
  ``app`` package), so the nodes need Python, torch, torchvision and the same Ray, not this project.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import app
from app.config import Settings
from app.errors import ModelUnavailable, PlaygroundError, WorkerDied
from app.jobs.executor import (
    JobCheckpoint,
    JobControlApplied,
    Executor,
    ExecutorEvent,
    ExecutorInfo,
    JobFinished,
    JobMetrics,
    JobSpec,
    JobStarted,
    OnEvent,
    model_path,
)
from app.jobs.fair_queue import FairQueue
from app.jobs.ray_tasks import NODE_HOME, TaskOptions, TaskOutcome, TaskStarted
from app.jobs.worker import save_error

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0  # a head's GCS port that does not accept a connection in this long is down
START_TIMEOUT_S = 180.0  # a fresh worker imports torch: seconds, much longer on a loaded 2-core box
STOP_JOIN_S = 5.0  # how long stop() waits for the stream readers after force-cancelling their tasks
MAX_WARM_WORKERS = 4  # workers that import torch while the server starts (at most one per job slot)
RESOURCES_TTL_S = 2.0  # /api/health reads the cluster's resources at most this often
# Predictions are milliseconds of one thread: they reserve no CPU, so they never wait behind jobs
# that hold all of them.
PREDICT_NUM_CPUS = 0


class RayUnavailable(PlaygroundError):
    """Ray is not installed, or the cluster cannot be reached or cannot run our code."""


@dataclasses.dataclass(eq=False)
class _RayJob:
    spec: JobSpec
    stream: Any = None  # ray.ObjectRefGenerator
    started: bool = False
    finished: bool = False
    cancel_requested: bool = False
    worker: str | None = None
    reader: threading.Thread | None = None
    kill_timer: asyncio.TimerHandle | None = None


class RayExecutor(Executor):
    name = "ray"
    predict_timeout_s = 120.0  # includes starting a worker on a busy cluster

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._watchdog: subprocess.Popen[bytes] | None = None
        self.settings = settings
        self._lock = threading.RLock()
        self._jobs: dict[str, _RayJob] = {}  # given to Ray, not finished
        self._held = FairQueue()  # not given to Ray yet: they go when a slot frees up
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_event: OnEvent | None = None
        self._ray: Any = None  # the ray module, once started
        self._run_task: Any = None
        self._predict_task: Any = None
        self._board: Any = None
        self._stopping = False
        self._resources: dict[str, Any] = {}
        self._devices: list[str] = ["cpu"]
        self._resources_read_at = 0.0

    # ------------------------------------------------------------------------------------------
    # Lifecycle

    async def start(self, on_event: OnEvent) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_event = on_event
        # ray.init blocks for seconds (and starts a whole local Ray when there is no address). In a
        # thread it also leaves the server's signal handlers alone: on the main thread it installs a
        # SIGTERM handler that would exit uvicorn without its graceful shutdown.
        await asyncio.to_thread(self._connect)
        self._refresh_resources(force=True)
        log.info("ray executor ready: %s", self._resources)

    def _connect(self) -> None:
        try:
            import ray
        except ImportError as exc:
            raise RayUnavailable(
                f"PLAYGROUND_EXECUTOR=ray needs Ray ({exc}); install it with pip install '.[ray]'."
            ) from None
        from app.jobs import ray_tasks

        address = self.settings.ray_address
        _probe_gcs(address)
        app_dir = str(Path(app.__file__).parent)
        try:
            context = ray.init(
                address=address,
                # The cluster runs the code of this web process, whatever the nodes have installed.
                runtime_env={"py_modules": [app_dir]},
                # Job output stays in Ray's logs; the server's log is for the server.
                log_to_driver=False,
                # Only used when there is no address and ray.init starts a local Ray.
                include_dashboard=False if address is None else None,
                configure_logging=False,
            )
        except Exception as exc:
            raise RayUnavailable(
                f"Cannot connect to the Ray cluster ({self._address_text()}): {type(exc).__name__}: {exc}"
            ) from exc
        self._ray = ray
        if address is None:
            self._watch_local_ray(context.address_info.get("session_dir"))
        # max_retries=0: a job that dies with its worker or node fails (and says so); running it again
        # from the start would repeat metric points the web process already stored.
        self._run_task = ray.remote(max_retries=0, num_returns="streaming")(ray_tasks.run_job)
        self._predict_task = ray.remote(num_cpus=PREDICT_NUM_CPUS, max_retries=0)(ray_tasks.predict)
        self._board = ray.remote(num_cpus=0)(ray_tasks.CancelBoard).remote()
        # Tasks that import torch and the experiments: they prove the cluster can run our code (the
        # right Python, torch installed) before the server says it is ready, and leave that many
        # workers warm, so the first jobs start in milliseconds instead of seconds. They reserve no
        # CPU: a busy cluster must not hold up the server's start.
        slots = int(float(ray.cluster_resources().get("CPU", 1)) // self.settings.ray_num_cpus)
        warm_up = ray.remote(num_cpus=0, max_retries=0)(ray_tasks.warm_up)
        try:
            warms = ray.get([warm_up.remote() for _ in range(max(1, min(slots, MAX_WARM_WORKERS)))],
                            timeout=START_TIMEOUT_S)
            ray.get(self._board.is_cancelled.remote(""), timeout=START_TIMEOUT_S)
        except Exception as exc:
            ray.shutdown()
            raise RayUnavailable(
                f"The Ray cluster ({self._address_text()}) cannot run the playground's tasks: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        for warm in warms:
            if warm.problems:
                log.warning("ray node %s cannot import: %s", warm.node, "; ".join(warm.problems))
        log.info("ray cluster runs torch %s (checked by %d worker(s): %s)", warms[0].torch_version, len(warms),
                 ", ".join(f"{w.node} pid {w.pid}" for w in warms))

    def _watch_local_ray(self, session_dir: str | None) -> None:
        """A local Ray of ours must not outlive the server, even a ``kill -9`` of it (ray_watchdog)."""
        if not session_dir:
            log.warning("the local Ray has no session folder to watch: a kill -9 may leave its processes")
            return
        self._watchdog = subprocess.Popen(
            [sys.executable, "-m", "app.jobs.ray_watchdog", session_dir],
            stdin=subprocess.PIPE,
            cwd=str(Path(app.__file__).parent.parent),
            start_new_session=True,  # not in the server's process group: it must see the server go
        )

    def _end_watchdog(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            with contextlib.suppress(OSError):
                watchdog.stdin.close()  # type: ignore[union-attr]  # EOF: it tidies up (nothing left) and exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                watchdog.wait(10)

    async def stop(self) -> None:
        with self._lock:
            self._stopping = True
            jobs = list(self._jobs.values())
            self._jobs.clear()
            self._held.drain()  # still queued in the database: queued again at the next start
        if self._ray is None:
            return
        # Jobs still running get no JobFinished (the service marks them interrupted); their tasks
        # are killed so nothing keeps training for a server that is gone.
        for job in jobs:
            if job.kill_timer is not None:
                job.kill_timer.cancel()
            self._force_cancel(job)
        await asyncio.to_thread(self._join_and_shutdown, jobs)

    def _join_and_shutdown(self, jobs: list[_RayJob]) -> None:
        deadline = time.monotonic() + STOP_JOIN_S
        for job in jobs:
            if job.reader is not None:
                job.reader.join(max(0.0, deadline - time.monotonic()))
        # Disconnects; a local Ray that ray.init started is stopped with it.
        self._ray.shutdown()
        self._end_watchdog()

    # ------------------------------------------------------------------------------------------
    # Jobs

    def submit(self, spec: JobSpec) -> None:
        if self._ray is None or self._stopping:
            raise RuntimeError("the Ray executor is not running")
        with self._lock:
            self._held.push(spec)
            self._give_to_ray()

    def _slots(self) -> int:
        """Tasks of the configured size the cluster runs at once (at least one)."""
        self._refresh_resources()
        return max(1, int(float(self._resources.get("cpus") or 0) // self.settings.ray_num_cpus))

    def _give_to_ray(self) -> None:
        """Hand held jobs to Ray, in the fair queue's order, while it has free slots (lock held)."""
        if self._ray is None or self._stopping:
            return
        limit = self.settings.max_running_per_user
        running = Counter(job.spec.owner for job in self._jobs.values() if job.spec.owner is not None)
        free = self._slots() - len(self._jobs)
        while free > 0:
            spec = self._held.pop(
                lambda s: limit is None or s.owner is None or running[s.owner] < limit
            )
            if spec is None:
                return
            if spec.owner is not None:
                running[spec.owner] += 1
            free -= 1
            self._submit_to_ray(spec)

    def _submit_to_ray(self, spec: JobSpec) -> None:
        cuda = spec.device.startswith("cuda")
        options = TaskOptions(
            # Absolute: a relative path would be taken from the Ray worker's own working directory.
            data_dir=str(Path(self.settings.data_dir).resolve()),
            allow_download=self.settings.allow_download,
            threads=max(1, int(self.settings.ray_num_cpus)),
        )
        job = _RayJob(spec)
        with self._lock:
            self._jobs[spec.job_id] = job
            # Ray queues the task until a node has the CPUs (and the GPU) free; tasks of the same
            # shape start in the order they were submitted.
            try:
                job.stream = self._run_task.options(
                    num_cpus=self.settings.ray_num_cpus, num_gpus=1 if cuda else 0, name=f"job-{spec.job_id}"
                ).remote(spec, options, self._board)
            except Exception as exc:  # the cluster is gone: the job fails, the server goes on
                log.warning("job %s: cannot submit it to Ray: %s", spec.job_id, exc)
                error = (
                    f"Could not submit the job to the Ray cluster ({self._address_text()}): "
                    f"{_describe_ray_error(exc)}"
                )
                self._post(job, JobFinished(spec.job_id, "failed", error=error))
                return
            job.reader = threading.Thread(target=self._read, args=(job,), name=f"ray-{spec.job_id}", daemon=True)
            job.reader.start()

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            if self._held.remove(job_id) is not None:
                self._emit(JobFinished(job_id, "cancelled"))
                return True
            job = self._jobs.get(job_id)
            if job is None or job.finished:
                return False
            if job.cancel_requested:
                return True
            job.cancel_requested = True
            if not job.started:
                # Queued (as far as anyone was told): gone at once. If the task has just begun on a
                # node, the force-cancel kills it there.
                self._force_cancel(job)
                self._finish(job, JobFinished(job_id, "cancelled"))
                return True
        try:
            self._board.cancel.remote(job_id)
        except Exception as exc:  # no cooperative stop then: the force-cancel after the grace period
            log.warning("job %s: cannot reach the cancel board: %s", job_id, exc)
        loop = self._loop
        assert loop is not None

        def arm_kill_timer() -> None:
            with self._lock:
                if not job.finished:
                    job.kill_timer = loop.call_later(
                        self.settings.cancel_grace_seconds, self._kill_after_grace, job
                    )

        if _on_loop_thread(loop):
            arm_kill_timer()
        else:
            loop.call_soon_threadsafe(arm_kill_timer)
        return True

    def withdraw(self, job_id: str) -> bool:
        """A job Ray has not started yet is taken back (its task cancelled) without a word."""
        with self._lock:
            if self._held.remove(job_id) is not None:
                return True
            job = self._jobs.get(job_id)
            if job is None or job.finished or job.started:
                return False
            job.finished = True  # its reader's items (the cancellation) are dropped from now on
            self._jobs.pop(job_id, None)
            self._force_cancel(job)
            self._give_to_ray()
            return True

    def control(self, job_id: str, *, pause: bool = False, patch: dict[str, Any] | None = None) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.finished:
                return False
        try:
            if patch:
                self._board.patch.remote(job_id, patch)
            if pause:
                self._board.pause.remote(job_id)
        except Exception as exc:
            log.warning("job %s: cannot reach the command board: %s", job_id, exc)
            return False
        return True

    def _kill_after_grace(self, job: _RayJob) -> None:
        with self._lock:
            if job.finished:
                return
        log.info("job %s did not stop within %g s of its cancel: force-cancelling its Ray task",
                 job.spec.job_id, self.settings.cancel_grace_seconds)
        self._force_cancel(job)

    def _force_cancel(self, job: _RayJob) -> None:
        try:
            self._ray.cancel(job.stream, force=True)
        except Exception as exc:  # already finished, or the cluster is gone: the reader reports it
            log.debug("ray.cancel(job %s): %s", job.spec.job_id, exc)

    # ------------------------------------------------------------------------------------------
    # Reading a job's stream (one thread per job) and turning it into events (on the loop)

    def _read(self, job: _RayJob) -> None:
        ray = self._ray
        try:
            for ref in job.stream:
                # The database is behind: stop pulling (the task's stream backs up in Ray instead).
                while not self.accepting.wait(0.5) and not self._stopping:
                    pass
                item = ray.get(ref)
                if isinstance(item, TaskOutcome):
                    item = self._save_weights(job, item)
                self._post(job, item)
            self._post(job, RuntimeError("the task ended without an outcome"))
        except Exception as exc:  # a RayError: the task was cancelled, its worker or node died, ...
            self._post(job, exc)

    def _save_weights(self, job: _RayJob, outcome: TaskOutcome) -> JobFinished:
        job_id = job.spec.job_id
        has_model = False
        if outcome.weights is not None:
            path = model_path(self.settings.models_dir, job_id)
            try:
                _write_atomically(path, outcome.weights)
            except OSError as exc:
                error = save_error(path, exc)
                return JobFinished(job_id, "failed", result=outcome.result, error=error, at=outcome.at)
            has_model = True
        return JobFinished(
            job_id,
            outcome.status,  # type: ignore[arg-type]  # one of JobFinished's statuses, from the worker
            result=outcome.result,
            error=outcome.error,
            has_model=has_model,
            at=outcome.at,
        )

    def _post(self, job: _RayJob, item: Any) -> None:
        if self._loop is None or self._stopping:
            return
        try:
            self._loop.call_soon_threadsafe(self._handle, job, item)
        except RuntimeError:  # the loop is closed: the server is gone
            pass

    def _handle(self, job: _RayJob, item: Any) -> None:
        job_id = job.spec.job_id
        with self._lock:
            if job.finished or self._stopping:
                return  # e.g. the items of a job cancelled while it was starting
            if isinstance(item, TaskStarted):
                job.started = True
                gpu = f", GPU {','.join(item.gpu_ids)}" if item.gpu_ids else ""
                job.worker = f"ray {item.hostname} {item.node}{gpu} (pid {item.pid})"
                event: ExecutorEvent = JobStarted(job_id, job.spec.device, job.worker, item.at)
            elif isinstance(item, list):
                event = JobMetrics(job_id, item)
            elif isinstance(item, (JobControlApplied, JobCheckpoint)):
                event = item
            elif isinstance(item, JobFinished):
                self._finish(job, item)
                return
            elif job.cancel_requested:  # the force-cancel after the grace period
                self._finish(job, JobFinished(
                    job_id,
                    "cancelled",
                    error=(
                        f"The job did not stop within {self.settings.cancel_grace_seconds:g} s of the "
                        f"cancel, so its Ray task was cancelled by force; its metrics so far are kept."
                    ),
                ))
                return
            else:
                how = _describe_ray_error(item)
                error = WorkerDied(job.worker or "ray (before the task reported in)", "running the job", how)
                log.warning("job %s: %s", job_id, error)
                self._finish(job, JobFinished(job_id, "failed", error=str(error)))
                return
        self._emit(event)

    def _finish(self, job: _RayJob, event: JobFinished) -> None:
        job.finished = True
        self._jobs.pop(job.spec.job_id, None)
        if job.kill_timer is not None:
            job.kill_timer.cancel()
        if job.started and self._board is not None:
            with contextlib.suppress(Exception):  # only tidiness: the board forgets a finished job
                self._board.forget.remote(job.spec.job_id)
        self._emit(event)
        with self._lock:
            self._give_to_ray()  # its slot is free

    def _emit(self, event: ExecutorEvent) -> None:
        assert self._loop is not None and self._on_event is not None
        if _on_loop_thread(self._loop):
            self._on_event(event)
        else:
            self._loop.call_soon_threadsafe(self._on_event, event)

    # ------------------------------------------------------------------------------------------
    # Predict

    def _data_where(self) -> dict[str, Any]:
        return {
            "data_dir": str(Path(self.settings.data_dir).resolve()),
            "cache_dir": str(NODE_HOME / "cache"),
            "threads": max(1, int(self.settings.ray_num_cpus)),
        }

    async def _on_model(
        self, kind: str, params: dict[str, Any], job_id: str, inputs: Any, action: str, timeout: float
    ) -> Any:
        path = model_path(self.settings.models_dir, job_id)
        try:
            weights = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise ModelUnavailable(job_id, f"without a weights file at {str(path)!r}") from None
        if self._ray is None or self._stopping:
            raise RuntimeError("the Ray executor is not running")
        ref = self._predict_task.remote(kind, params, weights, inputs, action)
        try:
            value, error = await asyncio.wait_for(asyncio.wrap_future(ref.future()), timeout)
        except TimeoutError:
            self._ray.cancel(ref, force=True)
            raise WorkerDied("ray", f"answering a {action} request",
                             f"no answer within {timeout:g} s, cancelled") from None
        except self._ray.exceptions.RayError as exc:
            raise WorkerDied("ray", f"answering a {action} request", _describe_ray_error(exc)) from None
        if error is not None:
            raise error.rebuild()
        return value

    # ------------------------------------------------------------------------------------------
    # Info

    def info(self) -> ExecutorInfo:
        self._refresh_resources()
        with self._lock:
            jobs = list(self._jobs.values())
            held = len(self._held)
        cpus = float(self._resources.get("cpus") or 0)
        return ExecutorInfo(
            executor=self.name,
            devices=list(self._devices),
            # How many jobs of the configured size run at once (CPU jobs; GPU jobs also need a GPU).
            workers=int(cpus // self.settings.ray_num_cpus),
            queued=held + sum(not j.started for j in jobs),
            running=sum(j.started for j in jobs),
            resources=dict(self._resources),
        )

    def _address_text(self) -> str:
        address = self.settings.ray_address
        return f"RAY_ADDRESS={address}" if address else "a local Ray started by the server"

    def _refresh_resources(self, force: bool = False) -> None:
        if self._ray is None or self._stopping:
            return
        now = time.monotonic()
        if not force and now - self._resources_read_at < RESOURCES_TTL_S:
            return
        self._resources_read_at = now
        ray = self._ray
        try:
            total = ray.cluster_resources()
            free = ray.available_resources()
            nodes = [n for n in ray.nodes() if n.get("Alive")]
        except Exception as exc:  # the cluster is unreachable for a moment: keep the last figures
            log.warning("cannot read the Ray cluster's resources: %s", exc)
            return
        gpus = float(total.get("GPU", 0))
        self._resources = {
            "address": self.settings.ray_address or "local (started by the server)",
            "nodes": len(nodes),
            "cpus": float(total.get("CPU", 0)),
            "gpus": gpus,
            "cpus_free": float(free.get("CPU", 0)),
            "gpus_free": float(free.get("GPU", 0)),
            "cpus_per_job": self.settings.ray_num_cpus,
            "node_addresses": sorted(n.get("NodeManagerAddress", "?") for n in nodes),
        }
        # Ray picks the GPU; inside the task it is the only one visible, cuda:0.
        self._devices = ["cpu", "cuda:0"] if gpus >= 1 else ["cpu"]


def _probe_gcs(address: str | None) -> None:
    """Fail fast when a ``host:port`` address does not answer: ray.init would retry for minutes."""
    if not address or address == "auto" or "://" in address:
        return  # a local Ray, the address file of `ray start`, or Ray Client (with its own timeout)
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except (OSError, ValueError) as exc:
        raise RayUnavailable(
            f"Cannot reach the Ray cluster at RAY_ADDRESS={address!r} ({exc}); expected host:port of a "
            f"running head (`ray start --head --port=PORT`), 'auto' or 'ray://host:10001'."
        ) from None


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _describe_ray_error(exc: BaseException) -> str:
    """Ray's error, in one line: its class and the first line of its message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else 'no details'}"


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
