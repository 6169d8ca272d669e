"""What the web process and its spawned worker and predictor processes send each other. No torch here.

Each process has one duplex pipe to the web process; everything on it is one of these (or one of the
executor events ``JobMetrics`` / ``JobFinished``, which a worker sends as they are).

    web → worker      RunJob, CancelJob, ControlJob
    worker → web      WorkerHello, JobAccepted, JobMetrics, JobControlApplied, JobCheckpoint, JobFinished
    web → predictor   PredictRequest
    predictor → web   WorkerHello, PredictReply

Closing the web end of a pipe tells the process on the other end to exit (so does the web process
dying, which closes it too).
"""

from __future__ import annotations

import builtins
import importlib
import sys
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath
from typing import Any

from app.jobs.executor import JobSpec


@dataclass(frozen=True)
class WorkerHello:
    """Sent once a process has imported torch: it is ready, and these are the machine's devices."""

    pid: int
    devices: list[str]
    threads: int  # torch intra-op threads it uses


@dataclass(frozen=True)
class RunJob:
    spec: JobSpec  # spec.device is the device this worker runs it on
    threads: int  # intra-op threads for this job (the web process's share of the CPUs per worker)


@dataclass(frozen=True)
class JobAccepted:
    """A worker's answer to ``RunJob``, before anything else of the job: the job reached it. A worker
    that dies before this never had the job (a send into a dead worker's pipe can still succeed while
    the kernel tears its threads down), so the job waits for another worker instead of failing."""

    job_id: str
    at: datetime  # the worker's clock: the job's started_at


@dataclass(frozen=True)
class CancelJob:
    job_id: str


@dataclass(frozen=True)
class ControlJob:
    """Pause the job at its next step boundary, and/or change live parameters from the next step on."""

    job_id: str
    pause: bool = False
    patch: dict[str, Any] | None = None


@dataclass(frozen=True)
class PredictRequest:
    request_id: int
    kind: str
    params: dict[str, Any]
    model_file: str
    inputs: Any
    # What to do with the weights: app.experiments.model_actions (predict, onnx, inside).
    action: str = "predict"


@dataclass(frozen=True)
class RemoteError:
    """An exception raised in another process, in a form the web process can rebuild without torch.

    Pickling the exception itself is not enough: exceptions whose ``__init__`` takes other arguments
    than the message (``UnknownKind(kind, allowed)``) do not unpickle, and unpickling would import the
    module of the exception's class (``torch.OutOfMemoryError`` would pull torch into the web process).
    """

    module: str
    qualname: str
    args: tuple[Any, ...]
    message: str
    state: dict[str, Any] = field(default_factory=dict)
    traceback: str = ""

    @classmethod
    def capture(cls, exc: BaseException) -> RemoteError:
        args = exc.args if _plain(exc.args) else (str(exc),)
        state = {k: v for k, v in vars(exc).items() if _plain(v)} if hasattr(exc, "__dict__") else {}
        return cls(
            module=type(exc).__module__,
            qualname=type(exc).__qualname__,
            args=args,
            message=str(exc),
            state=state,
            traceback="".join(traceback.format_exception(exc)),
        )

    def rebuild(self) -> BaseException:
        """The same exception class with the same message; ``RemoteFailure`` when the class is not at hand."""
        cls = self._exception_class()
        if cls is not None:
            for make in (self._call_class, self._bypass_init):
                try:
                    exc = make(cls)
                except Exception:  # e.g. an __init__ with another signature: UnknownKind(kind, allowed)
                    continue
                if str(exc) == self.message:
                    if hasattr(exc, "__dict__"):
                        vars(exc).update(self.state)
                    return exc
        return RemoteFailure(f"{self.qualname.rsplit('.', 1)[-1]}: {self.message}")

    def _call_class(self, cls: type[BaseException]) -> BaseException:
        return cls(*self.args)

    def _bypass_init(self, cls: type[BaseException]) -> BaseException:
        exc = cls.__new__(cls)
        exc.args = self.args
        return exc

    def _exception_class(self) -> type[BaseException] | None:
        # Only classes whose module is already loaded here, or our own error module: never import
        # torch (or anything heavy) into the web process to rebuild an error.
        if self.module == "builtins":
            module: Any = builtins
        elif self.module in sys.modules:
            module = sys.modules[self.module]
        elif self.module == "app.errors":
            module = importlib.import_module(self.module)
        else:
            return None
        obj: Any = module
        for part in self.qualname.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            return obj
        return None


class RemoteFailure(Exception):
    """An exception from a worker or the predictor whose class the web process does not have loaded."""


@dataclass(frozen=True)
class PredictReply:
    request_id: int
    value: Any = None
    error: RemoteError | None = None


def _plain(value: Any) -> bool:
    """Built-in data (and paths) only: unpickling anything else could import its module (torch) here."""
    if value is None or isinstance(value, (str, int, float, bool, bytes, PurePath)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False
