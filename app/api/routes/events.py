"""A job's events as Server-Sent Events (FastAPI's own ``fastapi.sse``)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from app.api.deps import MAX_INDEX, JobId, ReadAccess, ServiceDep

router = APIRouter(prefix="/jobs", tags=["events"])


async def stream_slot(job_id: JobId, service: ServiceDep) -> AsyncIterator[str]:
    """The job exists and a stream may open (else 404, or 503 at the limits); held until it ends.

    Checked in a dependency, before the 200 and the stream start: a 404 must be a 404. Not with
    SessionDep, whose session would stay open (a pooled connection per watcher) until the stream ends.
    """
    await run_in_threadpool(service.get_job, job_id)
    slot = service.broker.open_stream(job_id)
    try:
        yield job_id
    finally:
        slot.release()


@router.get("/{job_id}/events", response_class=EventSourceResponse, dependencies=[ReadAccess])
async def job_events(
    job_id: Annotated[str, Depends(stream_slot)],
    service: ServiceDep,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_INDEX, description="Resume after this event id.")] = None,
    after: Annotated[
        int | None,
        Query(
            alias="last_event_id",
            ge=0,
            le=MAX_INDEX,
            description="Start after this event id, e.g. the metrics' `last_event_id`; the header wins.",
        ),
    ] = None,
) -> AsyncIterable[ServerSentEvent]:
    """`status` at every change of status, `metric` (a list of points), then `done` and the end.

    Each event's `id` is one more than the last of the same job. After a reconnect with
    `Last-Event-ID: N` the stream resumes at N+1; after the job ended it replays the whole history.
    `?last_event_id=N` does the same for a first connection (a browser's EventSource cannot set the
    header), so a page that loaded the history from `/metrics` starts where that ended. The
    header, which the browser sends when it reconnects by itself, is newer and wins.
    FastAPI sends a keep-alive comment when nothing happened for 15 seconds.
    """
    start = last_event_id if last_event_id is not None else after
    async for event in service.broker.watch(job_id, start or 0):
        yield ServerSentEvent(event=event.type, id=str(event.id), raw_data=event.json)
