"""Per-job event logs and their fan-out to any number of SSE watchers.

A job that is queued or running has an open log in memory: every event it has had, in id order.
A watcher gets the events after its ``Last-Event-ID`` from that log and then each new one as it is
published, from its own queue, so one slow watcher delays no one else. A finished job has no log
here; its events are replayed from the database (the service writes them there before it closes
the log, so nothing falls between the two).

Everything but ``watch``'s waiting runs on the event loop's thread without awaiting, which makes
"take the backlog, then subscribe" atomic: an event is either in the backlog or in the queue.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from app.models import EventType


@dataclass(frozen=True)
class Event:
    id: int
    type: EventType
    data: Any  # the job (status, done) or a list of metric points (metric)

    @cached_property
    def json(self) -> str:
        """The data as JSON, encoded once however many watchers send it."""
        return json.dumps(self.data, separators=(",", ":"), allow_nan=False)


# Reads a finished job's events with id > after from the database.
Replay = Callable[[str, int], Awaitable[list[Event]]]

_CLOSED = object()  # put on a watcher's queue when the server shuts down


@dataclass
class _Log:
    events: list[Event] = field(default_factory=list)
    watchers: set[asyncio.Queue] = field(default_factory=set)

    @property
    def last_id(self) -> int:
        return self.events[-1].id if self.events else 0


class EventBroker:
    def __init__(self, replay: Replay) -> None:
        self._replay = replay
        self._logs: dict[str, _Log] = {}
        self._closed = False

    def open(self, job_id: str, history: list[Event]) -> None:
        """Make a job live; ``history`` is what it had before (its ``queued`` status at least)."""
        self._logs[job_id] = _Log(events=list(history))

    def is_open(self, job_id: str) -> bool:
        return job_id in self._logs

    def watcher_count(self, job_id: str) -> int:
        log = self._logs.get(job_id)
        return len(log.watchers) if log else 0

    def publish(self, job_id: str, event: Event) -> None:
        log = self._logs[job_id]
        if event.id != log.last_id + 1:
            raise ValueError(f"event id {event.id} of job {job_id} does not follow {log.last_id}")
        log.events.append(event)
        for queue in log.watchers:
            queue.put_nowait(event)

    def close(self, job_id: str) -> None:
        """Forget a finished job's log: its watchers already have ``done`` in their queues."""
        self._logs.pop(job_id, None)

    def shutdown(self) -> None:
        """End every open stream now (the server is stopping and waits for open connections)."""
        self._closed = True
        for log in self._logs.values():
            for queue in log.watchers:
                queue.put_nowait(_CLOSED)

    async def watch(self, job_id: str, after: int = 0) -> AsyncIterator[Event]:
        """The job's events with id > ``after``, live until ``done`` (or until shutdown)."""
        if self._closed:
            return
        log = self._logs.get(job_id)
        if log is None:
            for event in await self._replay(job_id, after):
                yield event
            return

        # Ids are consecutive from the first event in the log, so the backlog is a slice.
        first = log.events[0].id if log.events else 1
        backlog = log.events[max(0, after + 1 - first) :]
        queue: asyncio.Queue = asyncio.Queue()
        log.watchers.add(queue)
        try:
            for event in backlog:
                yield event
                if event.type == EventType.DONE:
                    return
            while True:
                item = await queue.get()
                if item is _CLOSED:
                    return
                if item.id <= after:  # a Last-Event-ID from the future: skip up to it
                    continue
                yield item
                if item.type == EventType.DONE:
                    return
        finally:
            log.watchers.discard(queue)
