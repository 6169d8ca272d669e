"""A job's pictures of its model over time, for the run page's replay: ``GET /api/jobs/{id}/snapshots``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app import crud
from app.api.deps import JobId, ReadAccess, SessionDep
from app.errors import JobNotFound

router = APIRouter(prefix="/jobs", tags=["jobs"])

# mlp pictures its network a few dozen times a run and cifar once an epoch: far fewer than this,
# which only bounds what one request can ask the database for.
MAX_SNAPSHOTS = 1000


class Snapshots(BaseModel):
    snapshots: list[dict[str, Any]] = Field(
        description=(
            "Oldest first, each with its step and epoch: mlp's `curve` (the network's output over the "
            "input range), cifar's `confusion_matrix` and `per_class_acc` (after each epoch), and for "
            "both `histograms`: per layer with weights, histograms of its weights and gradients and "
            "the gradient norm."
        )
    )


@router.get("/{job_id}/snapshots", dependencies=[ReadAccess])
def read_snapshots(
    job_id: JobId,
    session: SessionDep,
    limit: Annotated[int, Query(ge=2, le=MAX_SNAPSHOTS, description="At most this many, evenly spread.")] = MAX_SNAPSHOTS,
) -> Snapshots:
    """Every picture of the model the run took while it trained (the `snapshot` events), so a page
    can replay them without a request per frame. Linear runs have none: their (w, b) are metrics."""
    if crud.get_job(session, job_id=job_id) is None:
        raise JobNotFound(job_id)
    return Snapshots(snapshots=crud.snapshots(session, job_id=job_id, limit=limit))
