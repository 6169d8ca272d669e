"""The order in which queued jobs start: users in turn, first-in first-out within a user.

One student's 39-value "also try" queues 39 jobs; a classmate's single run must not wait for all
of them. So the queue keeps a lane per owner and serves the owners round robin: the next job comes
from the owner served longest ago (one never served comes first, ties by who queued first), and is
that owner's oldest job that can start. A user with many queued jobs thus delays another user's one
job by at most one job per worker. Jobs without an owner (no users on the server) share one lane, so
without users this is plain first-in first-out.

A pure data structure, no locks: the executor that holds it guards it.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator

from app.jobs.executor import JobSpec

Owner = str | None


class FairQueue:
    def __init__(self) -> None:
        self._lanes: dict[Owner, deque[tuple[int, JobSpec]]] = {}  # owner -> (arrival, job), oldest first
        self._served_at: dict[Owner, int] = {}  # owner -> when they last had a job started (0: never)
        self._clock = itertools.count(1)
        self._last_pop: tuple[str, Owner, int | None] | None = None  # job id, owner, their turn before it

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes.values())

    def __bool__(self) -> bool:
        return bool(self._lanes)

    def __iter__(self) -> Iterator[JobSpec]:
        """Every queued job, in the order they would start if all could."""
        for owner in self._turns():
            for _, spec in self._lanes[owner]:
                yield spec

    def push(self, spec: JobSpec) -> None:
        self._lanes.setdefault(spec.owner, deque()).append((next(self._clock), spec))

    def remove(self, job_id: str) -> JobSpec | None:
        """Take the job out (cancelled, withdrawn); None if it is not queued."""
        for owner, lane in self._lanes.items():
            for item in lane:
                if item[1].job_id == job_id:
                    lane.remove(item)
                    if not lane:
                        del self._lanes[owner]
                    return item[1]
        return None

    def pop(self, can_start: Callable[[JobSpec], bool] = lambda spec: True) -> JobSpec | None:
        """The next job to start: the first, in turn order, that ``can_start`` (a free worker for its
        device, its owner under their running limit); None if none can. A job that cannot start
        does not hold back a later one, of its owner or another, that can."""
        for owner in self._turns():
            lane = self._lanes[owner]
            for item in lane:
                if can_start(item[1]):
                    lane.remove(item)
                    if not lane:
                        del self._lanes[owner]
                    self._last_pop = (item[1].job_id, owner, self._served_at.get(owner))
                    self._served_at[owner] = next(self._clock)
                    return item[1]
        return None

    def put_back(self, spec: JobSpec) -> None:
        """The job just popped could not start after all (the worker it went to had died): it goes
        back to the head of its owner's lane, and the owner gets back the turn it had."""
        self._lanes.setdefault(spec.owner, deque()).appendleft((0, spec))
        if self._last_pop is not None and self._last_pop[0] == spec.job_id:
            _, owner, turn = self._last_pop
            if turn is None:
                self._served_at.pop(owner, None)
            else:
                self._served_at[owner] = turn
        self._last_pop = None

    def drain(self) -> list[JobSpec]:
        """Every queued job (in turn order), leaving the queue empty."""
        specs = list(self)
        self._lanes.clear()
        return specs

    def owners(self) -> dict[Owner, int]:
        """How many jobs each owner has queued."""
        return {owner: len(lane) for owner, lane in self._lanes.items()}

    def _turns(self) -> list[Owner]:
        """The owners with queued jobs, whose turn is first first."""
        return sorted(self._lanes, key=lambda owner: (self._served_at.get(owner, 0), self._lanes[owner][0][0]))
