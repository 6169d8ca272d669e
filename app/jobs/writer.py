"""The web process's one writer of the database, on a thread of its own. No torch here.

Every change to the database goes through ``DatabaseWriter``: the executor's events (points, status
changes, pictures of the model) and the requests' commands (create, delete, pause, ...). One thread,
one queue, so the writes keep their order without locks, and a slow or locked database never
blocks the event loop: requests that do not write (the pages, /api/health, the streams of the
points already written) go on as before.

Two kinds of writes:

- ``submit(op, then=...)``: a record of something that happened (a job's points, its end). It is
  kept until it is written, however long the database is away: retried with back-off, never
  dropped. ``then`` runs on the event loop once it is committed, which is when the service publishes
  the events to the watchers: a client is never sent an event that a crash could lose.
- ``await run(op)``: a request's command. It is retried until its deadline, then fails with
  ``DatabaseUnavailable`` (503), and nothing of it is written: the client was told it failed.

Queued writes are committed together (group commit, as databases do for their journals): one
transaction for all that waited, so a burst of points costs one commit.

Back-pressure: when more than ``high_water`` metric rows wait (the database has been away for a
while), ``accepting`` is cleared; the executors stop reading their workers' pipes until it is set
again below ``low_water``, so the workers block in their sends instead of the web process growing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from app.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

Op = Callable[[Session], Any]

RETRY_FIRST_S = 0.05
RETRY_MAX_S = 2.0
REQUEST_DEADLINE_S = 10.0  # a command waits this long for the database before it answers 503
GROUP_MAX_OPS = 2000  # writes per transaction at most


@dataclass(eq=False)
class _Write:
    op: Op
    rows: int = 0  # metric rows it writes, for the back-pressure count
    then: Callable[[Any], None] | None = None  # on the loop, after the commit (records)
    future: asyncio.Future[Any] | None = None  # requests
    deadline: float | None = None  # requests: monotonic time to give up
    done: bool = field(default=False)


class DatabaseWriter:
    def __init__(self, engine: Engine, *, high_water: int = 200_000, low_water: int = 50_000) -> None:
        self.engine = engine
        self.high_water = high_water
        self.low_water = low_water
        self.accepting = threading.Event()  # cleared while too many rows wait: executors hold back
        self.accepting.set()
        self._queue: collections.deque[_Write] = collections.deque()
        self._cond = threading.Condition()
        self._pending_rows = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.failing_since: float | None = None  # monotonic time the database started refusing
        self.last_error: str | None = None

    # ------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self._thread.start()

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Write what waits (up to ``drain_timeout`` seconds of retries), then end the thread."""
        deadline = time.monotonic() + drain_timeout
        while self.pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        left = self.pending()
        if left:
            log.error("stopping with %d write(s) the database did not take: %s", left, self.last_error)
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    # ------------------------------------------------------------------------------------------
    # Loop side

    def submit(self, op: Op, *, rows: int = 0, then: Callable[[Any], None] | None = None) -> None:
        """A record: written whatever it takes, in order; ``then(result)`` on the loop after the commit."""
        self._put(_Write(op, rows=rows, then=then))

    async def run(self, op: Op, *, deadline_s: float = REQUEST_DEADLINE_S) -> Any:
        """A command: its result once committed; ``DatabaseUnavailable`` if that takes over ``deadline_s``."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._put(_Write(op, future=future, deadline=time.monotonic() + deadline_s))
        return await future

    def _put(self, write: _Write) -> None:
        with self._cond:
            if self._stopping:
                raise RuntimeError("the database writer is stopped")
            self._queue.append(write)
            self._pending_rows += write.rows
            if self._pending_rows > self.high_water and self.accepting.is_set():
                log.warning("%d metric rows wait for the database: holding the workers back", self._pending_rows)
                self.accepting.clear()
            self._cond.notify()

    # ------------------------------------------------------------------------------------------
    # Writer thread

    def _run(self) -> None:
        delay = RETRY_FIRST_S
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                batch = [self._queue[i] for i in range(min(len(self._queue), GROUP_MAX_OPS))]
            try:
                results = self._write(batch)
            except Exception as exc:  # locked, full, read-only, gone: keep everything, try again
                self._failed(batch, exc)
                time.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
                continue
            delay = RETRY_FIRST_S
            if self.failing_since is not None:
                log.warning("the database takes writes again after %.1f s", time.monotonic() - self.failing_since)
                self.failing_since, self.last_error = None, None
            with self._cond:
                for _ in batch:
                    self._queue.popleft()
                self._pending_rows -= sum(w.rows for w in batch)
                if not self.accepting.is_set() and self._pending_rows < self.low_water:
                    self.accepting.set()
            for write, result in zip(batch, results, strict=True):
                self._settle(write, result=result)

    def _write(self, batch: list[_Write]) -> list[Any]:
        with Session(self.engine, expire_on_commit=False) as session:
            results = []
            for write in batch:
                # A savepoint each, so one write's own error (a constraint: a bug) fails only it;
                # retrying would not mend it, and must not hold back every write after it.
                try:
                    with session.begin_nested():
                        results.append(write.op(session))
                except Exception as exc:
                    if _is_database_down(exc):
                        raise
                    if write.future is None:
                        log.exception("a record could not be written and is dropped")
                    results.append(_Failure(exc))
            session.commit()
            return results

    def _failed(self, batch: list[_Write], exc: Exception) -> None:
        now = time.monotonic()
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        if self.failing_since is None:
            self.failing_since = now
            log.error("database write failed (%s); %d write(s) kept for the next try", message, len(batch))
        self.last_error = message
        with self._cond:
            expired = [w for w in self._queue if w.deadline is not None and now >= w.deadline]
            for write in expired:
                self._queue.remove(write)
        for write in expired:
            self._settle(write, error=DatabaseUnavailable(message, time.monotonic() - (self.failing_since or now)))

    def _settle(self, write: _Write, result: Any = None, error: BaseException | None = None) -> None:
        if isinstance(result, _Failure):
            if write.future is None:
                return  # a dropped record (logged): nothing to announce
            error, result = result.exc, None
        loop = self._loop
        if loop is None:
            return

        def settle() -> None:
            if write.future is not None:
                if not write.future.done():
                    if error is not None:
                        write.future.set_exception(error)
                    else:
                        write.future.set_result(result)
            elif write.then is not None:
                try:
                    write.then(result)
                except Exception:
                    log.exception("after a write")

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            loop.call_soon_threadsafe(settle)


@dataclass
class _Failure:
    exc: Exception


def _is_database_down(exc: Exception) -> bool:
    """Errors of the database itself (locked, full, read-only, I/O), not of one command's data."""
    from sqlalchemy.exc import OperationalError

    return isinstance(exc, OperationalError)
