"""Job changes across the whole server, for ``GET /api/events`` (the runs list, the header's counts),
and the lessons made and removed (the Lessons page).

Unlike a job's own events (``app.jobs.broker``), these are not stored: they say what changed in the
job list, and the list itself (``GET /api/jobs``) is the state to start from. The service publishes
each one after the rows it describes are committed, so a client that reads the list on a ``reset``
sees at least what the events said.

- An event's id is ``"<run>-<n>"``: ``run`` is fixed when the server starts, ``n`` counts from 1. A
  reconnecting client's ``Last-Event-ID`` from another run (the server restarted) cannot be
  resumed: it gets ``reset`` (read the list again).
- The newest ``RING_EVENTS`` events are kept in memory: a client that was away for fewer gets
  exactly the ones it missed; one away for more gets ``reset``.
- Each subscriber has a queue of at most ``QUEUE_EVENTS``; a subscriber that stops reading loses
  its queue (and gets ``reset`` when it reads again) instead of holding the server's memory.

Everything runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from app.models import OPEN_STATUSES

ServerEventType = Literal[
    "live", "created", "status", "progress", "deleted", "reset", "lesson_created", "lesson_deleted"
]

# Events kept for reconnecting clients: minutes of a busy server (progress is once a second per job).
RING_EVENTS = 1000
# Events a subscriber's queue holds before it is dropped and told to reset.
QUEUE_EVENTS = 256
# A job's progress is sent at most this often (its status changes are always sent).
PROGRESS_INTERVAL_S = 1.0


@dataclass(frozen=True)
class ServerEvent:
    n: int  # position in this run's sequence (0: before the first)
    type: ServerEventType
    data: dict[str, Any]
    run: str

    @property
    def id(self) -> str:
        return f"{self.run}-{self.n}"

    @cached_property
    def json(self) -> str:
        """Encoded once however many clients send it."""
        return json.dumps(self.data, separators=(",", ":"), allow_nan=False)


_CLOSED = object()  # the server is shutting down
_OVERFLOW = object()  # the queue was dropped: send reset


class _Subscriber:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.dropped = False

    def put(self, item: Any) -> None:
        if self.dropped and item is not _CLOSED:
            return
        if item is not _CLOSED and self.queue.qsize() >= QUEUE_EVENTS:
            self.dropped = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(_OVERFLOW)
            return
        self.queue.put_nowait(item)


class ServerEvents:
    """The ring of recent server-wide events and their fan-out to subscribers."""

    def __init__(
        self, *, keep: int = RING_EVENTS, run: str | None = None, counts: Callable[[], dict[str, int]] | None = None
    ) -> None:
        # Milliseconds since the epoch in base 36: differs at each start, short in an id.
        self.run = run or _base36(time.time_ns() // 1_000_000)
        self._ring: deque[ServerEvent] = deque(maxlen=keep)
        self._n = 0
        self._subscribers: set[_Subscriber] = set()
        self._progress_sent: dict[str, float] = {}
        self._closed = False
        # The server's running and queued jobs, sent with every event but progress (the header's counts).
        self._counts = counts or (lambda: {})

    @property
    def last_id(self) -> str:
        return f"{self.run}-{self._n}"

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    # ------------------------------------------------------------------------------------------
    # Publishing (the service, after the commit)

    def publish(self, type: ServerEventType, data: dict[str, Any]) -> ServerEvent:
        self._n += 1
        if type != "progress":
            data = {**data, "counts": self._counts()}
        event = ServerEvent(self._n, type, data, self.run)
        self._ring.append(event)
        for subscriber in self._subscribers:
            subscriber.put(event)
        if type == "deleted" or (type == "status" and data.get("status") not in OPEN_STATUSES):
            self._progress_sent.pop(data.get("id", ""), None)
        return event

    def publish_progress(self, data: dict[str, Any], now: float | None = None) -> ServerEvent | None:
        """``progress`` unless one went out for the job less than ``PROGRESS_INTERVAL_S`` ago."""
        now = time.monotonic() if now is None else now
        job_id = data["id"]
        sent = self._progress_sent.get(job_id)
        if sent is not None and now - sent < PROGRESS_INTERVAL_S:
            return None
        self._progress_sent[job_id] = now
        return self.publish("progress", data)

    def shutdown(self) -> None:
        """End every open stream now (the server waits for open connections before it stops)."""
        self._closed = True
        for subscriber in self._subscribers:
            subscriber.put(_CLOSED)

    # ------------------------------------------------------------------------------------------
    # Watching

    def missed(self, last_event_id: str | None) -> list[ServerEvent] | None:
        """The kept events after ``last_event_id``; None when they cannot be told (another run's id,
        one not handed out yet, or older than the ring): the client must reset."""
        if last_event_id is None:
            return []
        run, _, n_text = last_event_id.strip().rpartition("-")
        if run != self.run or not n_text.isdigit():
            return None
        n = int(n_text)
        if n > self._n:
            return None
        oldest = self._ring[0].n if self._ring else self._n + 1
        if n < oldest - 1:
            return None  # some fell out of the ring
        return [event for event in self._ring if event.n > n]

    def reset(self, reason: str) -> ServerEvent:
        """A ``reset`` for one client (not kept, not counted): its id is the newest event's, so a
        reconnect after it resumes from here."""
        return ServerEvent(self._n, "reset", {"reason": reason, "counts": self._counts()}, self.run)

    async def watch(self, last_event_id: str | None = None) -> AsyncIterator[ServerEvent]:
        """``live``, then what the client missed after ``last_event_id`` (or ``reset``), then new
        events, until shutdown.

        ``live`` (sent without an id: a client's Last-Event-ID stays what it was) says the client is
        subscribed, from the newest event (``last_id``), with the server's ``counts``; ``resumed``:
        the client sent an id, and the missed events or a ``reset`` follow. A client that is not
        resuming reads the list after it: from then on it misses nothing.
        """
        if self._closed:
            return
        subscriber = _Subscriber()
        # Subscribed and the ring read without an await between: nothing falls in the gap.
        self._subscribers.add(subscriber)
        try:
            missed = self.missed(last_event_id)
            reset = None if missed is not None else self.reset(
                f"the events after {last_event_id!r} are no longer kept: read the list again"
            )
            last = self._n  # what is queued from here on is new
            resumed = last_event_id is not None
            yield ServerEvent(last, "live", {"last_id": self.last_id, "resumed": resumed, "counts": self._counts()}, self.run)
            if reset is not None:
                yield reset
            for event in missed or ():
                yield event
            while True:
                item = await subscriber.queue.get()
                if item is _CLOSED:
                    return
                if item is _OVERFLOW:
                    subscriber.dropped = False
                    last = self._n  # before the yield: what is queued while it is sent is new
                    yield self.reset("this client fell too far behind: read the list again")
                    continue
                if item.n <= last:
                    continue
                last = item.n
                yield item
        finally:
            self._subscribers.discard(subscriber)


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, r = divmod(value, 36)
        out = digits[r] + out
        if not value:
            return out
