"""Compare: the compared runs' metrics as one download (``GET /api/compare/metrics.csv?ids=...``)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from app.api.deps import ReadAccess, SessionDep
from app.jobs.comparison import (
    IDS_PATTERN,
    MAX_COMPARED,
    load_jobs,
    long_csv,
    parse_ids,
)

router = APIRouter(prefix="/compare", tags=["compare"])


@router.get(
    "/metrics.csv",
    dependencies=[ReadAccess],
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "CSV with a header row, one row per metric point"},
        404: {"description": "One of the ids is not a job's (the message names it)."},
    },
)
def compare_metrics_csv(
    request: Request,
    session: SessionDep,
    # The pattern is documented, not enforced here: parse_ids refuses a list that does not match it
    # with a message that names the offending id or the limit (pydantic's would quote the pattern).
    # The server's limit on a request line (h11's) bounds its length.
    ids: str = Query(
        description=f"Job ids, separated by commas (at most {MAX_COMPARED}).",
        json_schema_extra={"pattern": IDS_PATTERN},
    ),
) -> StreamingResponse:
    """Every metric point of the runs, in long form: `job_id`, `name`, the settings in which the runs
    differ (kind, seed, parameters), then the metric columns (`step`, `epoch`, losses, ...) any of them
    has; empty where a point has no value. Written one run after another, in the order of `ids`."""
    jobs = load_jobs(session, parse_ids(ids))
    return StreamingResponse(
        long_csv(request.app.state.engine, jobs),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="compared-metrics.csv"'},
    )
