"""The checkpoint file: one ``torch.save`` of a plain dict, written atomically, read back safely.

    {"format": "playground-checkpoint", "version": 1,
     "kind": "cifar", "step": 700, "epoch": 2, "epoch_end": False,
     "params": {...JSON form...}, "state": {...the kind's save()...}}

The CLI (``--pause-at`` / ``--resume``) and the job side write and read the same files. Reading uses
``torch.load(weights_only=True)``: a checkpoint holds tensors, numbers, strings, lists and dicts, so
a file from elsewhere cannot run code. torch is imported where it is used, so the web layer may
import this module (``check_resume``) without loading torch.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from app.errors import CheckpointInvalid
from app.experiments.base import Checkpoint
from app.experiments.params import live_params

FORMAT = "playground-checkpoint"
VERSION = 1  # bump when a field changes meaning; read_checkpoint refuses other versions
_FIELDS = ("kind", "step", "epoch", "epoch_end", "params", "state")


def checkpoint_to_bytes(cp: Checkpoint) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(
        {
            "format": FORMAT,
            "version": VERSION,
            "kind": cp.kind,
            "step": cp.step,
            "epoch": cp.epoch,
            "epoch_end": cp.epoch_end,
            "params": cp.params,
            "state": cp.state,
        },
        buffer,
    )
    return buffer.getvalue()


def checkpoint_from_bytes(data: bytes, source: Path | str = "<bytes>", kind: str | None = None) -> Checkpoint:
    """The checkpoint in ``data``; :class:`CheckpointInvalid` naming ``source`` if it is not one
    (unreadable, another format or version, another ``kind`` than asked for)."""
    import torch

    try:
        saved = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated, garbage, foreign pickle: all "unreadable"
        raise CheckpointInvalid(source, f"it is not a readable checkpoint file ({_why_unreadable(data, exc)})") from exc
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise CheckpointInvalid(source, "it is a torch file, but not a playground checkpoint")
    if saved.get("version") != VERSION:
        raise CheckpointInvalid(
            source, f"it has format version {saved.get('version')!r}; this version of the playground reads {VERSION}"
        )
    missing = [name for name in _FIELDS if name not in saved]
    if missing:
        raise CheckpointInvalid(source, f"it lacks {', '.join(missing)}")
    if kind is not None and saved["kind"] != kind:
        raise CheckpointInvalid(source, f"it is a {saved['kind']!r} checkpoint, not {kind!r}")
    return Checkpoint(
        kind=saved["kind"],
        step=int(saved["step"]),
        epoch=int(saved["epoch"]),
        epoch_end=bool(saved["epoch_end"]),
        params=dict(saved["params"]),
        state=dict(saved["state"]),
    )


def _why_unreadable(data: bytes, exc: Exception) -> str:
    """What the bytes are, in a line: torch's own messages run to paragraphs of advice that does
    not apply here (e.g. to load with weights_only=False, which would run a foreign file's code)."""
    if not data:
        return "the file is empty"
    if data[:4] != b"PK\x03\x04":
        return f"{len(data)} bytes starting with {data[:16]!r}, not a torch zip archive"
    detail = str(exc).split(". ")[0][:120]
    return f"{len(data)} bytes of a torch zip archive that does not load, truncated or damaged ({detail})"


def write_checkpoint(cp: Checkpoint, path: Path | str) -> Path:
    """Writes ``cp`` to ``path`` atomically: a temporary file in the same folder, fsync, rename.

    A kill at any moment leaves either the previous file or the new one, never half of one.
    """
    path = Path(path)
    data = checkpoint_to_bytes(cp)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    # The rename itself survives a power cut only once the folder is synced too.
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename is still atomic
    finally:
        os.close(dir_fd)
    return path


def read_checkpoint(path: Path | str, kind: str | None = None) -> Checkpoint:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointInvalid(path, f"it cannot be read ({exc.strerror or exc})") from exc
    return checkpoint_from_bytes(data, source=path, kind=kind)


def check_resume(cp: Checkpoint, kind: str, params: BaseModel, source: Path | str | None = None) -> None:
    """Refuses to resume ``cp`` as a ``kind`` run with ``params`` unless they agree on everything
    but the live parameters (those may differ: changes made while paused, or a fork's overrides)."""
    source = source if source is not None else f"{cp.kind} checkpoint at step {cp.step}"
    if cp.kind != kind:
        raise CheckpointInvalid(source, f"it is a {cp.kind!r} checkpoint, not {kind!r}")
    live = set(live_params(type(params)))
    given = params.model_dump(mode="json")
    changed = sorted(
        name
        for name in given.keys() | cp.params.keys()
        if name not in live and given.get(name) != cp.params.get(name)
    )
    if changed:
        shown = ", ".join(
            f"{name}={given.get(name)!r} (the checkpoint has {cp.params.get(name)!r})" for name in changed
        )
        raise CheckpointInvalid(
            source,
            f"the run's {shown} differ; only the live parameters may change on resume: "
            f"{', '.join(sorted(live))}",
        )


def detached(obj: Any) -> Any:
    """A copy of ``obj`` (a state_dict, an optimizer's state, nested lists and dicts) whose tensors
    are CPU copies: training goes on in place after ``save()``, and the caller may serialize later."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {key: detached(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(detached(value) for value in obj)
    return obj
