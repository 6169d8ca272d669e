"""Who may change which run: the one rule, for every route that changes a job.

- Everyone signed in reads every run (a class learns from each other's runs), downloads its weights
  and asks its model for predictions: those are reads.
- Anyone may fork anyone's run; the fork is theirs.
- A student pauses, resumes, steps, changes, cancels and deletes only their own runs.
- A teacher, the admin token (PLAYGROUND_API_TOKEN) and anyone on an open server: every run.

Refused: 403, naming the run's owner and the action.
"""

from __future__ import annotations

from fastapi import HTTPException, status

from app.models import Job
from app.users import Principal


def may_change(who: Principal, owner: str | None) -> bool:
    return who.role != "student" or (owner is not None and owner == who.name)


def check_may_change(who: Principal, job: Job, action: str) -> None:
    if may_change(who, job.owner):
        return
    owner = f"{job.owner}'s" if job.owner is not None else "a run made before this server had users, so nobody's"
    raise HTTPException(
        status_code=status.HTTP_403_FORBIDDEN,
        detail=(
            f"Job {job.id!r} is {owner}: {who.name} (student) may not {action} it; a student changes only "
            "their own runs. Fork it to play with a copy of your own, or ask a teacher."
        ),
    )
