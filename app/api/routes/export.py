"""A job as code: ``GET /api/jobs/{id}/script`` (a standalone PyTorch script, or a notebook)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response

from app.api.deps import JobId, ReadAccess, SessionDep
from app.export import export, load_history

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get(
    "/{job_id}/script",
    dependencies=[ReadAccess],
    response_class=Response,
    responses={
        200: {
            "content": {"text/x-python": {}, "application/x-ipynb+json": {}},
            "description": "The script (py), or the same cells as a Jupyter notebook (ipynb)",
        }
    },
)
def read_script(
    job_id: JobId,
    session: SessionDep,
    format: Literal["py", "ipynb"] = Query("py", description="py: one Python file; ipynb: a notebook."),
) -> Response:
    """One Python file that trains the run again with plain PyTorch: its data, model, seed, optimizer,
    schedule and live changes at the steps they were made (a fork: its whole line). On a CPU, linear
    and mlp give the job's weights and loss bit for bit; it ends with one line of the final numbers."""
    exported = export(load_history(session, job_id), format)
    return Response(
        exported.body,
        media_type=exported.media_type,
        headers={"Content-Disposition": f'attachment; filename="{exported.filename}"'},
    )
