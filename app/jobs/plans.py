"""How a job starts: from the beginning, from its newest checkpoint, or from its parent's. No torch.

One decision for a new job, a resumed one (paused, or interrupted or failed with a checkpoint), a
fork, and a job still queued at a restart: ``Plans.for_job`` gives the executor's ``ControlPlan``
(see ``app.jobs.control``), the parameters the run starts with when they are not the job's own (a
fork replays its parent's up to the fork step), and where the run starts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from app import crud
from app.errors import JobNotFound
from app.experiments.params import live_params
from app.jobs.checkpoint_store import CheckpointStore
from app.jobs.executor import ControlPlan
from app.models import Job

# linear and mlp checkpoint after each this many seconds of training (and at the end): a checkpoint
# costs ~0.5-2 ms, ten to fifty of the book's steps, and a fork replays at most this long to its step.
CHECKPOINT_EVERY_S = 1.0


class Plans:
    def __init__(self, engine: Engine, checkpoints: CheckpointStore) -> None:
        self.engine = engine
        self.checkpoints = checkpoints

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def for_job(self, job: Job, params: Any) -> tuple[ControlPlan, dict[str, Any] | None, tuple[int, int, bool]]:
        """How a job (about to be queued) starts: from its own newest checkpoint (paused, or resumed
        after a crash), from its parent's (a fork that has not run yet), or from the beginning.

        Returns the plan, the parameters the run starts with when they are not the job's (a fork
        replays its parent's), and where it starts: (step, epoch, at an epoch's end).
        """
        plan = self.policy(job.kind, params)
        # The newest checkpoint the database knows of: a file a crash left ahead of it follows
        # points that were never stored.
        newest = None
        if job.checkpoint_step is not None:
            newest = self.checkpoints.at_or_before(job.id, job.checkpoint_step)
        if newest is not None:
            total, through = self._points_through(job.id, newest.step)
            plan = dataclasses.replace(
                plan,
                resume=self.checkpoints.read(newest),
                resume_step=newest.step,
                # A crashed job's points after its checkpoint are stored: the run goes through them
                # again (bit-identical) without sending them twice.
                replay_to_step=max(newest.step, self._last_stored_step(job.id)),
                skip_points=total - through,
                base_points=total,
                # Changes after the checkpoint (live ones before a crash, those made while paused).
                scheduled=tuple(
                    (max(ch["step"], newest.step), ch["params"]) for ch in job.changes if ch["step"] >= newest.step
                ),
            )
            return plan, None, (newest.step, newest.epoch, newest.epoch_end)
        if job.parent_id is not None and job.fork_step:
            with self._session() as session:
                parent = crud.get_job(session, job_id=job.parent_id)
            if parent is None:
                raise JobNotFound(job.parent_id)
            plan, run_params = self.for_fork(parent, job.fork_step, params, plan)
            checkpoint = self.checkpoints.at_or_before(parent.id, plan.resume_step or 0)
            epoch = checkpoint.epoch if checkpoint is not None else 0
            return plan, run_params, (job.fork_step, epoch, checkpoint.epoch_end if checkpoint else True)
        return plan, None, (0, 0, True)

    def for_fork(self, parent: Job, k: int, child: Any, plan: ControlPlan) -> tuple[ControlPlan, dict[str, Any]]:
        """A fork at step ``k`` > 0: the parent's nearest checkpoint at or before ``k``, its changes up to
        ``k`` replayed without sending a point, then the child's live parameters from ``k`` on."""
        # Before the parent's first checkpoint, the start is the checkpoint: the same seed replays
        # the parent from step 1 exactly.
        checkpoint = self.checkpoints.at_or_before(parent.id, k)
        c = checkpoint.step if checkpoint is not None else 0
        values = child.model_dump(mode="json")
        own = {name: values[name] for name in live_params(type(child))}
        scheduled = [(ch["step"], ch["params"]) for ch in parent.changes if c <= ch["step"] <= k]
        scheduled.append((k, own))
        plan = dataclasses.replace(
            plan,
            resume=self.checkpoints.read(checkpoint) if checkpoint is not None else None,
            resume_step=c if checkpoint is not None else None,
            replay_to_step=k,
            skip_points=self._count_points(parent.id, c, k),
            scheduled=tuple(scheduled),
        )
        run_params = params_at(original_params(parent), parent.changes, c)
        if "data" in values:
            run_params["data"] = values["data"]
        return plan, run_params

    def policy(self, kind: str, params: Any) -> ControlPlan:
        """When a job checkpoints: cifar at every epoch end (an epoch is minutes); linear and mlp
        (thousands of one-step epochs) after each second of training; all at their last step."""
        if kind == "cifar":
            return ControlPlan(checkpoint_epoch_ends=True)
        return ControlPlan(checkpoint_every_s=CHECKPOINT_EVERY_S)

    def _count_points(self, job_id: str, after_step: int, through_step: int) -> int:
        with self._session() as session:
            return crud.count_metrics_between(session, job_id=job_id, after_step=after_step, through_step=through_step)

    def _points_through(self, job_id: str, step: int) -> tuple[int, int]:
        """(all the job's points, those with step <= ``step``)."""
        with self._session() as session:
            total = crud.count_metrics(session, job_id=job_id)
            return total, total - crud.count_metrics_between(session, job_id=job_id, after_step=step, through_step=None)

    def _last_stored_step(self, job_id: str) -> int:
        with self._session() as session:
            return crud.last_metric_step(session, job_id=job_id)


def original_params(job: Job) -> dict[str, Any]:
    """The parameters the job started with: its current ones with every change undone."""
    params = dict(job.params)
    for change in reversed(job.changes):
        params.update(change.get("before", {}))
    return params


def params_at(original: dict[str, Any], changes: list[dict[str, Any]], step: int) -> dict[str, Any]:
    """The parameters in effect after step ``step`` (changes made at that step's boundary included)."""
    params = dict(original)
    for change in changes:
        if change["step"] <= step:
            params.update(change["params"])
    return params
