"""Where the server keeps its jobs' checkpoints: ``PLAYGROUND_HOME/checkpoints/<job id>/``. No torch.

The bytes come from the training side (``app.experiments.checkpoints`` format), from a local worker
or a Ray node alike; the server's disk is the source of truth. One file per checkpoint, named by
its position so the server can pick one without reading it::

    000001250-000000003-e.ckpt      step 1250, epoch 3, taken at the epoch's end (m: mid-epoch)

A file is written to a temporary name, flushed to the disk, and renamed into place: a kill during a
write leaves the previous checkpoints readable. Retention keeps at most ``keep`` of a job's
checkpoints plus its newest: when there are more, every other one of the older ones goes, so what
stays is spread evenly over the run (a long class session cannot fill the disk).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^(\d{9})-(\d{9})-([em])\.ckpt$")


@dataclass(frozen=True, order=True)
class StoredCheckpoint:
    step: int
    epoch: int
    epoch_end: bool
    path: Path


class CheckpointStore:
    def __init__(self, root: Path, keep: int = 100) -> None:
        self.root = root
        self.keep = keep

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def write(self, job_id: str, step: int, epoch: int, epoch_end: bool, payload: bytes) -> StoredCheckpoint:
        folder = self.folder(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{step:09d}-{epoch:09d}-{'e' if epoch_end else 'm'}.ckpt"
        tmp = folder / f".{path.name}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._thin(job_id)
        return StoredCheckpoint(step, epoch, epoch_end, path)

    def list(self, job_id: str) -> list[StoredCheckpoint]:
        folder = self.folder(job_id)
        if not folder.is_dir():
            return []
        found = []
        for path in folder.iterdir():
            match = _NAME.match(path.name)
            if match:
                found.append(StoredCheckpoint(int(match[1]), int(match[2]), match[3] == "e", path))
        return sorted(found)

    def at_or_before(self, job_id: str, step: int) -> StoredCheckpoint | None:
        """The newest checkpoint at or before ``step``; None if there is none."""
        earlier = [c for c in self.list(job_id) if c.step <= step]
        return earlier[-1] if earlier else None

    def read(self, checkpoint: StoredCheckpoint) -> bytes:
        return checkpoint.path.read_bytes()

    def delete(self, job_id: str) -> None:
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def _thin(self, job_id: str) -> None:
        stored = self.list(job_id)
        if len(stored) <= self.keep + 1:
            return
        older = stored[:-1]
        for checkpoint in older[1::2]:  # every other one, the first (earliest) kept
            checkpoint.path.unlink(missing_ok=True)
