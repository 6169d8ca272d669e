"""Job changes across the server as Server-Sent Events: what keeps the pages' lists current."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from app.api.deps import ReadAccess, ServiceDep

router = APIRouter(tags=["events"])

# The server-wide stream's place in the broker's count of open streams: held to
# PLAYGROUND_MAX_STREAMS only (one per open page, not one job's watchers).
SERVER_STREAM = "*server*"


async def server_stream_slot(service: ServiceDep) -> AsyncIterator[None]:
    """A stream may open (else 503 at the limits), checked before the 200; held until it ends."""
    slot = service.broker.open_stream(SERVER_STREAM, per_job_limit=False)
    try:
        yield
    finally:
        slot.release()


@router.get(
    "/events",
    response_class=EventSourceResponse,
    dependencies=[ReadAccess, Depends(server_stream_slot)],
)
async def server_events(
    service: ServiceDep,
    last_event_id: Annotated[
        str | None, Header(max_length=41, description="Resume after this event id (as the browser sends it).")
    ] = None,
    after: Annotated[
        str | None,
        Query(alias="last_event_id", max_length=41, description="Start after this event id; the header wins."),
    ] = None,
) -> AsyncIterable[ServerSentEvent]:
    """Every job's changes, live. First `live` (no id): subscribed after `last_id`, with `counts`
    (the server's `running` and `queued` jobs); `resumed`: the missed events (or `reset`) follow,
    else read the list now (from here on nothing is missed). Then `created` and `status` (the
    job's summary, as `GET /api/jobs` lists it, with `counts`), `progress` (`id` and `progress`, at
    most once a second per job), `deleted` (`id`, `counts`); and `lesson_created` (the lesson as
    `GET /api/lessons` lists it) and `lesson_deleted` (`id`), with `counts`.

    Ids are `"<run>-<n>"`, increasing; `run` changes when the server restarts. Reconnecting with
    `Last-Event-ID` sends the events missed since (the newest 1,000 are kept); when they are not
    kept, or the id is from another run, or the client fell too far behind, it gets `reset`
    (`reason`, `counts`): read the list again, then go on with the events that follow. A first
    connection starts with what happens next. A keep-alive comment goes out after 15 quiet seconds.
    """
    start = last_event_id if last_event_id is not None else after
    async for event in service.server_events.watch(start):
        event_id = None if event.type == "live" else event.id
        yield ServerSentEvent(event=event.type, id=event_id, raw_data=event.json)
