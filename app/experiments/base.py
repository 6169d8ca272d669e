"""What every experiment takes and returns. No torch here: the web layer imports this module."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

# One metric point, e.g. {"step": 12, "epoch": 12, "train_loss": 3.1, "val_loss": 4.0}.
# Keys come from METRIC_FIELDS; a value is a finite float/int or None. A point may also carry a
# SNAPSHOT_FIELDS entry: a picture of the model at that step, which is not a column of the metrics.
MetricPoint = dict[str, Any]
EmitMetric = Callable[[MetricPoint], None]
ShouldStop = Callable[[], bool]

# Every key a metric point may carry, in the order the metrics table and CSV show them.
#   step        global, 1-based, increases by one per optimisation step (an epoch for linear/mlp,
#               a batch for cifar); epoch-end points of cifar repeat the last batch's step
#   epoch       1-based epoch the point belongs to
#   train_loss  loss of that step's forward pass, before its update (the book's printout); on a
#               cifar epoch-end point, the mean training loss of the epoch
#   w, b        linear only: the parameters used in that forward pass (model units), so a chart
#               can draw the path over the loss surface
#   lr          the learning rate used for that step (it moves under a one-cycle schedule)
METRIC_FIELDS: tuple[str, ...] = (
    "step",
    "epoch",
    "train_loss",
    "val_loss",
    "train_acc",
    "val_acc",
    "w",
    "b",
    "lr",
)

# What a point may carry besides its metrics, now and then:
#   curve             mlp: the network's output over the input range, [[x, y], ...] in data units
#   confusion_matrix  cifar, on epoch-end points: counts over the test split, rows the true classes
#   per_class_acc     cifar, on epoch-end points: {class name: test accuracy}, in class order
#   histograms        mlp (with its curve) and cifar (on epoch-end points): per layer with weights,
#                     histograms of the weights and gradients and the gradient norm (histograms.py)
SNAPSHOT_FIELDS: tuple[str, ...] = ("curve", "confusion_matrix", "per_class_acc", "histograms")


class RunStatus(StrEnum):
    SUCCEEDED = "succeeded"
    DIVERGED = "diverged"
    CANCELLED = "cancelled"
    PAUSED = "paused"  # stopped at a step boundary after a checkpoint: resumable from it


# ----------------------------------------------------------------------------------------------
# Stopping and going on: the control point at each step boundary
#
# A step boundary is the moment after step k's update (linear/mlp: after each epoch's one step;
# cifar: after each batch, and for an epoch's last batch after the epoch's evaluation, with
# epoch_end=True). There, and only there, a run may pause, take live parameter changes, and have
# its whole training state saved. The loop calls
#
#     params, stop = ctx.control.boundary(step, epoch, params, save, epoch_end=...)
#
# and carries on with the returned params (live changes applied: it must push them into the
# optimizer, the loss, the schedule), or ends with ``stop`` (CANCELLED or PAUSED) as its status.
# ``save()`` returns the kind's whole training state after step ``step`` (model, optimizer, schedule,
# random number generators, the position in the data order, running sums of the epoch): what
# ``RunContext.resume.state`` hands back to continue bit-identically.
#
# A resumed run (``ctx.resume``) builds everything from the seed as a fresh run does, loads the
# state, and then calls ``boundary`` once more at the restored step, before its first new step: that
# is where changes made while it was paused (or a fork's overrides) take effect.

SaveState = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class Checkpoint:
    """A run's whole state at a step boundary: restoring it and training on is bit-identical (CPU)."""

    kind: str
    step: int  # steps done (the next metric point is step + 1)
    epoch: int  # the epoch of step ``step`` (0 before the first step)
    epoch_end: bool  # taken after the epoch's evaluation (cifar); linear/mlp: always True
    params: dict[str, Any]  # the parameters in effect then (live changes applied), JSON form
    state: dict[str, Any]  # the kind's save(): tensors, RNG states, positions, plain numbers


class RunControl:
    """The control point. This default never stops a run, changes nothing and keeps no state: a
    plain run (the CLI, most tests). The job side's one is ``app.jobs.control.JobControl``."""

    def boundary(
        self, step: int, epoch: int, params: Any, save: SaveState, *, epoch_end: bool = True
    ) -> tuple[Any, RunStatus | None]:
        return params, None


@dataclass
class RunContext:
    """Everything a run needs besides its parameters."""

    seed: int
    device: str = "cpu"  # already resolved: "cpu", "cuda:0", ...
    emit: EmitMetric = field(default=lambda point: None)
    should_stop: ShouldStop = field(default=lambda: False)
    data_dir: Path = Path("var/data")
    allow_download: bool = False
    # Where decoded-dataset caches go when data_dir is read-only (a mounted volume); None: data_dir.
    cache_dir: Path | None = None
    control: RunControl = field(default_factory=RunControl)
    # Continue from this checkpoint (same kind and seed; non-live params must equal the checkpoint's,
    # live ones are the run's): the run builds everything from the seed as usual, then loads the
    # state and goes on at step resume.step + 1.
    resume: Checkpoint | None = None


@dataclass
class RunOutcome:
    status: RunStatus
    result: dict[str, Any]  # JSON-serialisable; shape depends on the kind
    error: str | None = None  # the message shown to the user (e.g. why a run diverged)
    state_dict: Any = None  # the trained weights, saved with torch.save; None if nothing to save


def finite_or_none(value: float) -> float | None:
    """JSON has no inf/nan: a value that is not finite is reported as null."""
    value = float(value)
    return value if math.isfinite(value) else None
