"""The control protocol of a job, on the training side: commands in, events and checkpoints out.

One implementation for both executors. A worker process (local) or a Ray task builds a
``JobControl`` for the job it runs and hands it to the experiment as ``ctx.control``; the executor
only carries messages:

    in  (any thread)   pause(), cancel(), patch(changes)
    out (send)         JobMetrics (through the batcher), JobControlApplied, JobCheckpoint

and the run ends with ``RunStatus.PAUSED`` after a pause, which the worker reports as
``JobFinished(status="paused")`` and which frees the worker.

The ``ControlPlan`` says what the run does before it takes commands: which checkpoint it starts
from, which steps are a replay (a fork replays its parent from the nearest checkpoint up to the
fork step; a crashed job replays up to its last stored point) and so are neither sent nor
checkpointed again, which changes happen at which step (the parent's, the fork's overrides,
changes made while paused), where it pauses by itself (``step``), and how often it checkpoints.

Torch is imported only to serialise a checkpoint, in the process that trains.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.experiments.base import Checkpoint, MetricPoint, RunControl, RunStatus, SaveState
from app.jobs.executor import ControlPlan, JobCheckpoint, JobControlApplied


Send = Callable[[Any], None]


@dataclass
class _Commands:
    """What arrived from the server since the last boundary (written by another thread)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    pause: bool = False
    cancel: bool = False
    patches: list[dict[str, Any]] = field(default_factory=list)


class JobControl(RunControl):
    def __init__(self, job_id: str, kind: str, plan: ControlPlan, send: Send, send_now: Send | None = None) -> None:
        """``send``: after the points emitted so far (a change at a step); ``send_now``: at once (a
        checkpoint: the server holds it back until it has the points it follows)."""
        self.job_id = job_id
        self.kind = kind
        self.plan = plan
        self._send = send
        self._send_now = send_now or send
        self._sent = 0  # points emitted and not skipped
        self._commands = _Commands()
        self._scheduled = list(plan.scheduled)
        self._skip = plan.skip_points
        # A resumed run does not write again the checkpoint it starts from.
        self.last_checkpoint_step: int | None = plan.resume_step
        # The fast path (most boundaries have nothing to do): a command arrived (any thread sets
        # it), or the step where the plan next wants something, or an epoch end that matters.
        self._attention = False
        self._epoch_ends_matter = plan.checkpoint_epoch_ends or plan.pause_at_epoch is not None
        self._last_step: int | None = None  # linear, mlp: the run's last step (epochs), once known
        self._due = 0  # the first boundary looks at everything (and learns the last step)
        # Checkpoints by training time (linear, mlp): the clock is read only at the step where the
        # interval is expected to end, estimated from the steps per second so far.
        self._clock = (0, time.monotonic())  # (step, time) of the last look at the clock
        self._last_checkpoint_time = self._clock[1]
        self._time_due = 1

    # ------------------------------------------------------------------------------------------
    # Commands (the executor's reader thread)

    def pause(self) -> None:
        self._commands.pause = True
        self._attention = True

    def cancel(self) -> None:
        self._commands.cancel = True
        self._attention = True

    def patch(self, changes: dict[str, Any]) -> None:
        with self._commands.lock:
            self._commands.patches.append(dict(changes))
        self._attention = True

    def should_stop(self) -> bool:
        """For the loops' own cancellation checks inside a step (cifar's evaluation)."""
        return self._commands.cancel

    # ------------------------------------------------------------------------------------------
    # The experiment's side (the training thread)

    def emit_filter(self, emit: Callable[[MetricPoint], None]) -> Callable[[MetricPoint], None]:
        """``emit`` without the points of the replay (``skip_points``)."""

        def filtered(point: MetricPoint) -> None:
            if self._skip > 0:
                self._skip -= 1
                return
            self._sent += 1
            emit(point)

        return filtered

    def boundary(
        self, step: int, epoch: int, params: Any, save: SaveState, *, epoch_end: bool = True
    ) -> tuple[Any, RunStatus | None]:
        # Speed: the book's fit takes ~40 us a step; this test keeps the control point at well under
        # a microsecond of it when nothing is due (bench/control_overhead.py).
        if not self._attention and step < self._due and not (epoch_end and self._epoch_ends_matter):
            return params, None
        self._attention = False  # cleared before reading the commands: one arriving now sets it again
        if self._commands.cancel:
            return params, RunStatus.CANCELLED
        replaying = step < self.plan.replay_to_step

        # Changes due at this step (a replay of the parent's, a fork's overrides, those made while
        # paused), then the ones that arrived live: all take effect from the next step on.
        while self._scheduled and self._scheduled[0][0] <= step:
            _, changes = self._scheduled.pop(0)
            params = _with_changes(params, changes)
        if not replaying:
            with self._commands.lock:
                patches, self._commands.patches = self._commands.patches, []
            for changes in patches:
                params = _with_changes(params, changes)
                self._send(JobControlApplied(self.job_id, step, changes))

        pausing = not replaying and (
            self._commands.pause
            or (self.plan.pause_at_step is not None and step >= self.plan.pause_at_step)
            or (self.plan.pause_at_epoch is not None and epoch_end and epoch >= self.plan.pause_at_epoch)
        )
        # The run's last state is kept too: "train longer" forks a finished run at its last step.
        epochs = getattr(params, "epochs", None)
        last = epochs is not None and epoch_end and epoch >= epochs
        if self.kind in ("linear", "mlp") and epochs is not None:
            self._last_step = epochs
        if not replaying and (pausing or last or self._checkpoint_due(step, epoch_end)):
            self._checkpoint(step, epoch, epoch_end, params, save)
        self._due = self._next_due(step)
        if pausing:
            return params, RunStatus.PAUSED
        return params, None

    def _next_due(self, step: int) -> int:
        """The first step after ``step`` where the plan wants something (a change, the end of the
        replay, a pause, a periodic checkpoint)."""
        candidates = [self._scheduled[0][0]] if self._scheduled else []
        if self.plan.replay_to_step > step:
            candidates.append(self.plan.replay_to_step)
        if self.plan.pause_at_step is not None and self.plan.pause_at_step > step:
            candidates.append(self.plan.pause_at_step)
        every = self.plan.checkpoint_every
        if every > 0:
            candidates.append((step // every + 1) * every)
        if self.plan.checkpoint_every_s > 0:
            candidates.append(self._time_due)
        if self._last_step is not None:
            candidates.append(self._last_step)
        later = [c for c in candidates if c > step]
        if self._scheduled and self._scheduled[0][0] <= step:
            return step + 1  # changes left for this step (a restored boundary): look again next step
        return min(later) if later else 2**62

    def _checkpoint_due(self, step: int, epoch_end: bool) -> bool:
        time_says = self._look_at_the_clock(step)
        if step == self.last_checkpoint_step:
            return False
        if time_says:
            return True
        if step == self.plan.replay_to_step and step > 0:
            return True  # a fork's (or a resumed job's) first state: its own from now on
        if self.plan.checkpoint_epoch_ends and epoch_end:
            return True
        every = self.plan.checkpoint_every
        return every > 0 and step % every == 0

    def _look_at_the_clock(self, step: int) -> bool:
        """With ``checkpoint_every_s``: whether that much training time has passed since the last
        checkpoint; and the step to look again at (where the interval should end)."""
        interval = self.plan.checkpoint_every_s
        if interval <= 0 or step < self._time_due:
            return False
        now = time.monotonic()
        last_step, last_time = self._clock
        rate = (step - last_step) / max(now - last_time, 1e-6)  # steps per second, lately
        self._clock = (step, now)
        due = now - self._last_checkpoint_time >= interval
        left = interval if due else interval - (now - self._last_checkpoint_time)
        self._time_due = step + max(1, min(int(rate * left), 1_000_000))
        return due

    def _checkpoint(self, step: int, epoch: int, epoch_end: bool, params: Any, save: SaveState) -> None:
        from app.experiments.checkpoints import checkpoint_to_bytes

        checkpoint = Checkpoint(
            kind=self.kind,
            step=step,
            epoch=epoch,
            epoch_end=epoch_end,
            params=params.model_dump(mode="json"),
            state=save(),
        )
        points = self.plan.base_points + self._sent
        self._send_now(JobCheckpoint(self.job_id, step, epoch, epoch_end, checkpoint_to_bytes(checkpoint), points))
        self.last_checkpoint_step = step
        self._last_checkpoint_time = time.monotonic()

    def resume_checkpoint(self) -> Checkpoint | None:
        if self.plan.resume is None:
            return None
        from app.experiments.checkpoints import checkpoint_from_bytes

        return checkpoint_from_bytes(self.plan.resume, source=f"the checkpoint of job {self.job_id}", kind=self.kind)


def _with_changes(params: Any, changes: dict[str, Any]) -> Any:
    """Validated by the server already; validated again, so a run never trains on a bad value."""
    return type(params).model_validate({**params.model_dump(), **changes})
