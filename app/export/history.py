"""What a run did, read from the database: the parameters it started with and each live change.

A job's row keeps its current parameters and the list of live changes (``{"step", "params",
"before"}``, in effect from step + 1). A fork at step k > 0 did not start from scratch: it went on
from its parent's state at step k, so its whole history is its parent's up to step k (the parent's
own changes through step k included, its parent's before it, ...), then the fork's own parameters
from step k on, then its own changes. That is how ``app.jobs.service`` builds a fork
(``_original_params``, ``_params_at``); this module walks the same line back to the first job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session

from app import crud
from app.errors import JobConflict, JobNotFound
from app.experiments.registry import get_experiment
from app.models import Job

# A chain of forks longer than this is refused (each link is a database read).
MAX_FORK_DEPTH = 100


class HistoryUnavailable(JobConflict):
    """The run cannot be written out as a script; the message says why (answered with 409)."""

    def __init__(self, job_id: str, reason: str) -> None:
        self.job_id = job_id
        self.reason = reason
        Exception.__init__(self, f"Job {job_id!r} cannot be exported as a script: {reason}")


@dataclass(frozen=True)
class Change:
    step: int  # in effect from step + 1
    params: dict[str, Any]


@dataclass(frozen=True)
class RunHistory:
    """Everything a standalone script needs to train the run again."""

    job: Job
    params: BaseModel  # the kind's parameter model in effect at step 0, ``data`` included
    changes: tuple[Change, ...]  # live changes after step 0, in the order they took effect
    lineage: tuple[tuple[str, int], ...]  # (ancestor id, fork step), the oldest first; () if not a fork

    @property
    def kind(self) -> str:
        return self.job.kind

    @property
    def seed(self) -> int:
        return self.job.seed


def original_params(job: Job) -> dict[str, Any]:
    """The parameters the job started with: its current ones with every change undone."""
    params = dict(job.params)
    for change in reversed(job.changes):
        params.update(change.get("before", {}))
    return params


def params_at(original: dict[str, Any], changes: list[Change], step: int) -> dict[str, Any]:
    """The parameters in effect after step ``step`` (changes made at that step's boundary included)."""
    params = dict(original)
    for change in changes:
        if change.step <= step:
            params.update(change.params)
    return params


def _own_changes(job: Job) -> list[Change]:
    return [Change(int(c["step"]), dict(c["params"])) for c in job.changes]


Lineage = list[tuple[str, int]]  # (ancestor id, fork step), the oldest first


def _history_of(session: Session, job: Job, depth: int = 0) -> tuple[dict[str, Any], list[Change], Lineage]:
    """(the parameters at step 0, every change after that, the forks on the way) of ``job``."""
    own = _own_changes(job)
    if (job.params or {}).get("lr_finder"):
        raise HistoryUnavailable(
            job.id,
            "it is a learning-rate range test, not a training run: export the run you train with the "
            "suggested lr (result.lr_finder.suggested_lr) instead",
        )
    if job.parent_id is None or not job.fork_step:  # a fork at step 0 starts from scratch
        return original_params(job), own, []
    if depth >= MAX_FORK_DEPTH:
        raise HistoryUnavailable(job.id, f"it descends from more than {MAX_FORK_DEPTH} forks")
    parent = crud.get_job(session, job_id=job.parent_id)
    if parent is None:
        raise HistoryUnavailable(
            job.id,
            f"it was forked at step {job.fork_step} from job {job.parent_id!r}, which has been deleted, "
            "so the steps before the fork are unknown",
        )
    if parent.seed != job.seed:
        raise HistoryUnavailable(
            job.id,
            f"it was forked at step {job.fork_step} with seed {job.seed} from job {parent.id!r} (seed "
            f"{parent.seed}): its data split and image sample changed at the fork, which a script with "
            "one seed cannot repeat",
        )
    start, changes, lineage = _history_of(session, parent, depth + 1)
    k = job.fork_step
    before_fork = [c for c in changes if c.step <= k]
    at_fork = params_at(start, before_fork, k)
    # The fork's own parameters from step k on: what differs from its parent's there.
    mine = original_params(job)
    overrides = {name: value for name, value in mine.items() if name != "data" and at_fork.get(name) != value}
    if overrides:
        before_fork.append(Change(k, overrides))
    return start, before_fork + own, [*lineage, (parent.id, k)]


def load_history(session: Session, job_id: str) -> RunHistory:
    job = crud.get_job(session, job_id=job_id)
    if job is None:
        raise JobNotFound(job_id)
    start, changes, lineage = _history_of(session, job)
    data = crud.get_job_data(session, job_id=job.id) if job.data_points else None
    # Changes at step 0 (made while the job was queued) are in effect from the first step: the run
    # started with them, and so does the script.
    start = params_at(start, [c for c in changes if c.step <= 0], 0)
    changes = [c for c in changes if c.step > 0]
    model = get_experiment(job.kind).params_model
    values = {**start, "data": data} if "data" in model.model_fields else start
    return RunHistory(job=job, params=model.model_validate(values), changes=tuple(changes), lineage=tuple(lineage))
