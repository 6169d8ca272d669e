"""Named exceptions. Each message carries the offending value and what is allowed.

    PlaygroundError
    ├── UnknownKind          an experiment kind that does not exist
    ├── DeviceUnavailable    a device this machine does not have ("cuda" without a GPU)
    ├── DatasetMissing       the CIFAR-10 files are not where the settings say
    ├── InvalidParams        parameters that fail their kind's model (pydantic's errors, with loc)
    ├── LimitExceeded        a value over a server limit (max epochs, max data points)
    ├── QueueFull            too many jobs waiting (PLAYGROUND_MAX_QUEUED)
    ├── JobNotFound          no job with that id
    ├── LessonNotFound       no lesson with that id (a run's lesson_id)
    ├── JobConflict          the job's status does not allow that (cancel a finished job, ...)
    ├── ModelUnavailable     the job has no trained weights (not succeeded, or deleted)
    ├── CheckpointInvalid    a checkpoint that cannot be read or used (garbage, other kind or version)
    ├── UploadTooLarge       an uploaded file over PLAYGROUND_MAX_UPLOAD_BYTES
    ├── InvalidInput         predict inputs that cannot be used (not an image, wrong shape)
    │   └── InvalidImage     an upload that does not decode as a PNG or JPEG image
    ├── WorkerDied           a worker or predictor process died (killed, out of memory, crashed)
    ├── DatabaseUnavailable  the database refused a request's write for too long (locked, full)
    ├── StreamLimit          too many open event streams (per job, or on the server)
    ├── NoCheckpoint         a fork or resume at a step the job has no checkpoint for
    └── InvalidField         one field of a request that cannot be used (a parameter that is not live)

The api layer turns these into HTTP errors; the CLI into exit status 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class PlaygroundError(Exception):
    pass


class UnknownKind(PlaygroundError):
    def __init__(self, kind: str, allowed: list[str]) -> None:
        self.kind = kind
        self.allowed = allowed
        super().__init__(f"Unknown experiment kind {kind!r}; allowed: {', '.join(allowed)}.")


class DeviceUnavailable(PlaygroundError):
    def __init__(self, device: str, available: list[str]) -> None:
        self.device = device
        self.available = available
        super().__init__(
            f"Device {device!r} is not available on this machine; available: {', '.join(available)} "
            "(or 'auto', which picks CUDA when there is a GPU)."
        )


class DatasetMissing(PlaygroundError):
    def __init__(self, data_dir: Path, detail: str = "") -> None:
        self.data_dir = data_dir
        super().__init__(
            f"CIFAR-10 was not found in {str(data_dir)!r}{': ' + detail if detail else ''}. Put either "
            f"torchvision's 'cifar-10-batches-py/' or an image-folder layout 'cifar10/train/<class>/*' "
            f"and 'cifar10/test/<class>/*' (PNG or JPEG) there, or set PLAYGROUND_DATA_DIR to the folder "
            f"that has them; with PLAYGROUND_ALLOW_DOWNLOAD=true torchvision downloads it."
        )


class InvalidParams(PlaygroundError):
    """Parameters that fail validation; ``errors`` are pydantic's, ``loc`` relative to the params."""

    def __init__(self, kind: str, errors: list[dict[str, Any]]) -> None:
        self.kind = kind
        self.errors = errors
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in errors)
        super().__init__(f"Invalid parameters for {kind!r}: {problems}")


class LimitExceeded(PlaygroundError):
    """A value over a limit the server sets (``setting`` names the environment variable)."""

    def __init__(self, field: str, value: int, limit: int, setting: str) -> None:
        self.field = field
        self.value = value
        self.limit = limit
        self.setting = setting
        super().__init__(
            f"{field}={value} is over this server's limit of {limit} (set by {setting})."
        )


class QueueFull(PlaygroundError):
    def __init__(self, queued: int, limit: int) -> None:
        self.queued = queued
        self.limit = limit
        super().__init__(
            f"{queued} jobs are already waiting, the most this server queues (PLAYGROUND_MAX_QUEUED="
            f"{limit}); try again when some have started, or cancel some."
        )


class JobNotFound(PlaygroundError):
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"No job with id {job_id!r}.")


class LessonNotFound(PlaygroundError):
    def __init__(self, lesson_id: int) -> None:
        self.lesson_id = lesson_id
        super().__init__(f"No lesson with id {lesson_id} (GET /api/lessons lists them).")


class JobConflict(PlaygroundError):
    def __init__(self, job_id: str, status: str, action: str, allowed: list[str]) -> None:
        self.job_id = job_id
        self.status = status
        self.action = action
        super().__init__(
            f"Cannot {action} job {job_id!r}: it is {status}; only a job that is "
            f"{' or '.join(allowed)} can be."
        )


class ModelUnavailable(PlaygroundError):
    def __init__(self, job_id: str, status: str) -> None:
        self.job_id = job_id
        self.status = status
        super().__init__(
            f"Job {job_id!r} has no trained weights (it is {status}); a job that succeeded has them."
        )


class CheckpointInvalid(PlaygroundError):
    """A checkpoint that cannot be used; ``source`` is its file (or what it is), ``reason`` what is wrong."""

    def __init__(self, source: Path | str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"The checkpoint {str(source)!r} cannot be used: {reason}.")


class UploadTooLarge(PlaygroundError):
    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"The upload is {size} bytes; this server takes at most {limit} bytes "
            "(PLAYGROUND_MAX_UPLOAD_BYTES)."
        )


class InvalidInput(PlaygroundError):
    """Inputs to ``predict`` that cannot be used; the message says what was expected."""


class InvalidImage(InvalidInput):
    """An image for a CIFAR model that PIL cannot use; ``received`` says what the bytes were."""

    def __init__(self, received: str) -> None:
        self.received = received
        super().__init__(
            f"The file is not a PNG or JPEG image that can be read (received {received}); "
            "upload a .png or .jpg picture."
        )


class WorkerDied(PlaygroundError):
    """A process of the executor died; ``how`` is its exit code or signal ("killed by signal SIGKILL")."""

    def __init__(self, worker: str, doing: str, how: str) -> None:
        self.worker = worker
        self.doing = doing
        self.how = how
        super().__init__(f"worker {worker} died while {doing}: {how}")


class DatabaseUnavailable(PlaygroundError):
    """The database refused writes (locked by another process, disk full, read-only) for too long."""

    def __init__(self, reason: str, seconds: float) -> None:
        self.reason = reason
        self.seconds = seconds
        super().__init__(
            f"The database has refused writes for {seconds:.1f} s ({reason}); nothing of this request was "
            "stored. Try again shortly."
        )


class StreamLimit(PlaygroundError):
    """Too many open event streams, on one job or on the whole server."""

    def __init__(self, scope: str, count: int, limit: int, setting: str) -> None:
        self.scope = scope
        self.count = count
        self.limit = limit
        self.setting = setting
        super().__init__(
            f"{count} event streams are open {scope}, the most this server allows ({setting}={limit}); "
            "try again in a few seconds."
        )


class NoCheckpoint(PlaygroundError):
    """A fork (or a resume) needs a checkpoint at or before a step, and the job has none there."""

    def __init__(self, job_id: str, step: int, earliest: int | None) -> None:
        self.job_id = job_id
        self.step = step
        self.earliest = earliest
        have = f"its earliest is at step {earliest}" if earliest is not None else "it has none"
        super().__init__(f"Job {job_id!r} has no checkpoint at or before step {step} ({have}).")


class InvalidField(PlaygroundError):
    """One field of a request that cannot be used as it is; ``loc`` as in FastAPI's 422 (body, ...)."""

    def __init__(self, loc: list[str | int], message: str, value: object = None, **ctx: object) -> None:
        self.loc = loc
        self.value = value
        self.ctx = ctx
        super().__init__(message)
