"""A job's events to any number of SSE watchers, in bounded memory.

The database is the log. The service publishes an event only after it is committed (see
``app.jobs.writer``), so everything a watcher could miss is already in the database. A watcher:

1. subscribes to the job's new events (a bounded queue of its own),
2. reads the history after its ``Last-Event-ID`` from the database, one page at a time,
3. then sends what arrives on its queue, skipping what the pages already sent.

Nothing is kept per job but the subscribers; a watcher holds at most one page and its queue. A
watcher that falls too far behind (a slow client on a fast job) loses its queue and reads from the
database again: it costs the database a page read, never the server its memory. A client that goes
away ends its watcher (the SSE response cancels the generator).

``done`` ends a stream, unless the job went on after it (a failed or interrupted job resumed from
its checkpoint): the pages show that by the events after it.

Everything but the waiting runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from app.errors import StreamLimit
from app.models import EventType

# Events a watcher's queue holds before the watcher is sent back to the database.
QUEUE_EVENTS = 256
# Pages of history read from the database at once, by all watchers together. Each read is a thread
# of the pool and a connection: unbounded, 100 clients replaying a long job kept 40 threads busy,
# and their contention for the GIL made every other request (``/api/health``) wait over a second.
PAGE_READS = 4


@dataclass(frozen=True)
class Event:
    id: int
    type: EventType
    data: Any  # the job (status, done), a list of metric points (metric), a picture, a change

    @cached_property
    def json(self) -> str:
        """The data as JSON, encoded once however many watchers send it."""
        return json.dumps(self.data, separators=(",", ":"), allow_nan=False)


# (job_id, after) → (events with id > after, a page of them; whether more follow)
ReadPage = Callable[[str, int], Awaitable[tuple[list[Event], bool]]]
# job_id → (the job's newest status event and its done if the job is over; the job's newest event id)
ReadLatest = Callable[[str], Awaitable[tuple[list[Event], int]]]

_CLOSED = object()  # the server is shutting down
_LAGGING = object()  # the queue overflowed: read from the database again


class _Subscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.lagging = False

    def put(self, item: Any) -> None:
        if self.lagging:
            return
        if item is not _CLOSED and self.queue.qsize() >= QUEUE_EVENTS:
            # Drop what it holds: those events are in the database, where it will read them.
            self.lagging = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(_LAGGING)
            return
        self.queue.put_nowait(item)


class StreamSlot:
    """One open stream counted against the limits; released once: explicitly, or when collected
    (a response that never started its generator never runs its ``finally``)."""

    def __init__(self, broker: EventBroker, job_id: str) -> None:
        broker._streams += 1
        broker._streams_per_job[job_id] = broker._streams_per_job.get(job_id, 0) + 1
        self._release = weakref.finalize(self, EventBroker._release_counts, weakref.ref(broker), job_id)

    def release(self) -> None:
        self._release()  # a finalizer runs at most once


class EventBroker:
    def __init__(
        self,
        read_page: ReadPage,
        read_latest: ReadLatest,
        *,
        max_streams: int = 1000,
        max_streams_per_job: int = 500,
    ) -> None:
        self._read_page = read_page
        self._read_latest = read_latest
        self.max_streams = max_streams
        self.max_streams_per_job = max_streams_per_job
        self._subscribers: dict[str, set[_Subscription]] = {}
        self._streams = 0
        self._streams_per_job: dict[str, int] = {}
        self._closed = False
        self._reads = asyncio.Semaphore(PAGE_READS)

    # ------------------------------------------------------------------------------------------
    # Publishing (the service, after each commit)

    def publish(self, job_id: str, event: Event) -> None:
        for subscription in self._subscribers.get(job_id, ()):
            subscription.put(event)

    def watcher_count(self, job_id: str) -> int:
        return len(self._subscribers.get(job_id, ()))

    def shutdown(self) -> None:
        """End every open stream now (the server is stopping and waits for open connections)."""
        self._closed = True
        for subscriptions in self._subscribers.values():
            for subscription in subscriptions:
                subscription.queue.put_nowait(_CLOSED)

    # ------------------------------------------------------------------------------------------
    # Limits

    def open_stream(self, job_id: str, *, per_job_limit: bool = True) -> StreamSlot:
        """Count a new stream, or refuse it with ``StreamLimit`` (503) when the server or the job is
        full. ``per_job_limit=False``: a stream that is not one job's (the server-wide
        ``/api/events``, one per open page) counts against the server's limit only."""
        if self._streams >= self.max_streams:
            raise StreamLimit("on this server", self._streams, self.max_streams, "PLAYGROUND_MAX_STREAMS")
        on_job = self._streams_per_job.get(job_id, 0)
        if per_job_limit and on_job >= self.max_streams_per_job:
            raise StreamLimit(
                "on this job", on_job, self.max_streams_per_job, "PLAYGROUND_MAX_STREAMS_PER_JOB"
            )
        return StreamSlot(self, job_id)

    @staticmethod
    def _release_counts(broker_ref: weakref.ref[EventBroker], job_id: str) -> None:
        broker = broker_ref()
        if broker is None:
            return
        broker._streams -= 1
        left = broker._streams_per_job.get(job_id, 0) - 1
        if left > 0:
            broker._streams_per_job[job_id] = left
        else:
            broker._streams_per_job.pop(job_id, None)

    @property
    def open_streams(self) -> int:
        return self._streams

    # ------------------------------------------------------------------------------------------
    # Watching

    async def watch(self, job_id: str, after: int = 0) -> AsyncIterator[Event]:
        """The job's events with id > ``after``, live until ``done`` (or until shutdown)."""
        if self._closed:
            return
        subscription = _Subscription()
        self._subscribers.setdefault(job_id, set()).add(subscription)
        try:
            last = after
            first_page = True
            while True:
                # 1-2. The history from the database, page by page.
                ended = False
                while True:
                    async with self._reads:
                        page, more = await self._read_page(job_id, last)
                    if first_page and not page and last > 0:
                        async with self._reads:
                            latest, newest = await self._read_latest(job_id)
                        if last > newest:
                            # A Last-Event-ID beyond the job's events (made up, or from a server
                            # that lost them): say where the job is now, and go on from there.
                            page, last = latest, newest
                    first_page = False
                    for event in page:
                        yield event
                        last = max(last, event.id)
                    if page and page[-1].type == EventType.DONE and not more:
                        ended = True
                    if not more:
                        break
                if ended:
                    return  # the newest event is the job's end: nothing will come after it
                # 3. What is published from now on (and what was since the subscription).
                while True:
                    item = await subscription.queue.get()
                    if item is _CLOSED:
                        return
                    if item is _LAGGING:
                        subscription.lagging = False
                        break  # back to the database for what it dropped
                    if item.id <= last:
                        continue
                    if item.id > last + 1:
                        # Published out of the order of the pages (cannot happen: ids are committed
                        # in order) -- read the gap from the database rather than skip it.
                        subscription.queue.put_nowait(item)
                        break
                    yield item
                    last = item.id
                    if item.type == EventType.DONE:
                        return
        finally:
            subs = self._subscribers.get(job_id)
            if subs is not None:
                subs.discard(subscription)
                if not subs:
                    del self._subscribers[job_id]

