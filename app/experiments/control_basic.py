"""A control point for runs in the foreground (the CLI, tests): pause at a step, change live parameters.

The job side has its own (commands arrive from the server); this one is told everything up front.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.experiments.base import Checkpoint, RunControl, RunStatus, SaveState
from app.experiments.params import live_params


def with_changes(params: BaseModel, changes: dict[str, Any]) -> BaseModel:
    """``params`` with ``changes`` applied and validated; only live parameters may change.

    Raises ValueError naming a parameter that is not live, and pydantic's ValidationError for a
    value out of range.
    """
    live = live_params(type(params))
    fixed = sorted(set(changes) - set(live))
    if fixed:
        raise ValueError(
            f"{', '.join(fixed)} cannot change during a run; the live parameters are: {', '.join(live)}"
        )
    return type(params).model_validate({**params.model_dump(), **changes})


def make_checkpoint(
    kind: str, step: int, epoch: int, params: BaseModel, save: SaveState, epoch_end: bool
) -> Checkpoint:
    return Checkpoint(
        kind=kind,
        step=step,
        epoch=epoch,
        epoch_end=epoch_end,
        params=params.model_dump(mode="json"),
        state=save(),
    )


class PauseAtStep(RunControl):
    """Pauses at the first boundary at or after step ``at_step`` and keeps the checkpoint taken there.

    ``changes``: {step: {param: value}} applied at that step's boundary (before a pause there).
    """

    def __init__(self, kind: str, at_step: int | None = None, changes: dict[int, dict[str, Any]] | None = None) -> None:
        self.kind = kind
        self.at_step = at_step
        self.changes = dict(changes or {})
        self.checkpoint: Checkpoint | None = None

    def boundary(
        self, step: int, epoch: int, params: Any, save: SaveState, *, epoch_end: bool = True
    ) -> tuple[Any, RunStatus | None]:
        if step in self.changes:
            params = with_changes(params, self.changes.pop(step))
        if self.at_step is not None and step >= self.at_step:
            self.checkpoint = make_checkpoint(self.kind, step, epoch, params, save, epoch_end)
            self.at_step = None  # once: a resumed run in the same process goes on
            return params, RunStatus.PAUSED
        return params, None
