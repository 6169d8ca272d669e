"""A learning-rate range test (Leslie Smith's, as fastai's and Lightning's finders run it).

Instead of training, the run takes one step at each learning rate of an exponential ramp from
1e-7 to 10, going on from the state the previous step left, and records the loss before each step.
It stops when the loss blows up (not finite, or four times the lowest so far). The suggested rate
is where the smoothed loss falls fastest against log10(lr), before its lowest point: the rule of
the finders above ("steepest"), rounded down to two significant digits.

The kind supplies ``step(lr) -> loss``; this module owns the ramp, the stopping and the rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from app.experiments.base import RunContext, RunStatus

START_LR = 1e-7
END_LR = 10.0
STEPS = 100
BLOW_UP = 4.0  # a loss this many times the lowest so far ends the test
SMOOTHING = 0.8  # the debiased moving average over the recorded losses
RULE = (
    "the learning rate where the smoothed loss falls fastest against log10(lr), before its lowest "
    "point, rounded down to two significant digits"
)


def ramp(steps: int = STEPS) -> list[float]:
    ratio = END_LR / START_LR
    return [START_LR * ratio ** (i / (steps - 1)) for i in range(steps)]


def smoothed(losses: list[float], beta: float = SMOOTHING) -> list[float]:
    out, average = [], 0.0
    for i, loss in enumerate(losses, start=1):
        average = beta * average + (1 - beta) * loss
        out.append(average / (1 - beta**i))
    return out


def suggest(lrs: list[float], losses: list[float]) -> float | None:
    """The steepest descent of the smoothed loss against log10(lr), before its minimum."""
    if len(losses) < 3:
        return None
    curve = smoothed(losses)
    lowest = min(range(len(curve)), key=curve.__getitem__)
    slopes = [
        ((curve[i + 1] - curve[i]) / (math.log10(lrs[i + 1]) - math.log10(lrs[i])), i) for i in range(max(1, lowest))
    ]
    slope, i = min(slopes)
    if slope >= 0:
        return None  # the loss never fell: no rate to suggest
    lr = lrs[i]
    exponent = math.floor(math.log10(lr)) - 1
    return float(f"{math.floor(lr / 10**exponent)}e{exponent}")


def run_range_test(step: Callable[[float], float], ctx: RunContext) -> tuple[RunStatus, dict[str, Any]]:
    """Runs ``step`` over the ramp, emitting a metric point per step; returns the status and the
    result's ``lr_finder`` entry."""
    tried: list[float] = []
    losses: list[float] = []
    status = RunStatus.SUCCEEDED
    for i, lr in enumerate(ramp(), start=1):
        if ctx.should_stop():
            status = RunStatus.CANCELLED
            break
        loss = step(lr)
        if not math.isfinite(loss) or (losses and loss > BLOW_UP * min(losses)):
            break
        tried.append(lr)
        losses.append(loss)
        ctx.emit({"step": i, "epoch": i, "train_loss": loss, "lr": lr})
    return status, {
        "lrs": tried,
        "losses": losses,
        "smoothed": smoothed(losses),
        "suggested_lr": suggest(tried, losses),
        "rule": RULE,
    }
