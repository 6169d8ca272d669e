"""The event broker over a store: history in pages, then live events; slow watchers; limits."""

from __future__ import annotations

import asyncio
import gc

import pytest

from app.errors import StreamLimit
from app.jobs import broker as broker_module
from app.jobs.broker import Event, EventBroker
from app.models import EventType


def status(i: int, name: str = "running") -> Event:
    return Event(i, EventType.STATUS, {"status": name})


def metric(i: int) -> Event:
    return Event(i, EventType.METRIC, [{"step": i}])


def done(i: int) -> Event:
    return Event(i, EventType.DONE, {"status": "succeeded"})


class Store:
    """The database as the broker sees it: committed events, read a page at a time."""

    def __init__(self, page: int = 3) -> None:
        self.events: dict[str, list[Event]] = {}
        self.page = page
        self.pages_read = 0

    def commit(self, broker: EventBroker, job_id: str, event: Event) -> None:
        self.events.setdefault(job_id, []).append(event)
        broker.publish(job_id, event)

    async def read_page(self, job_id: str, after: int) -> tuple[list[Event], bool]:
        self.pages_read += 1
        later = [e for e in self.events.get(job_id, []) if e.id > after]
        return later[: self.page], len(later) > self.page

    async def read_latest(self, job_id: str) -> tuple[list[Event], int]:
        events = self.events.get(job_id, [])
        statuses = [e for e in events if e.type == EventType.STATUS]
        latest = statuses[-1:] + ([events[-1]] if events and events[-1].type == EventType.DONE else [])
        return latest, events[-1].id if events else 0


def make(page: int = 3, **limits: int) -> tuple[Store, EventBroker]:
    store = Store(page)
    return store, EventBroker(store.read_page, store.read_latest, **limits)


async def collect(broker: EventBroker, job_id: str, after: int = 0) -> list[int]:
    return [e.id async for e in broker.watch(job_id, after)]


def test_watchers_get_the_history_in_pages_then_live_events_until_done():
    async def scenario():
        store, broker = make(page=2)
        for i in range(1, 6):
            store.commit(broker, "j", status(1) if i == 1 else metric(i))
        early = asyncio.create_task(collect(broker, "j"))
        resumed = asyncio.create_task(collect(broker, "j", after=4))
        await asyncio.sleep(0.01)
        for i in range(6, 9):
            store.commit(broker, "j", metric(i))
        store.commit(broker, "j", done(9))
        late = await collect(broker, "j", after=7)  # after the end: replayed from the store
        return await early, await resumed, late

    early, resumed, late = asyncio.run(scenario())
    assert early == list(range(1, 10))
    assert resumed == list(range(5, 10))
    assert late == [8, 9]


def test_a_watcher_that_falls_behind_reads_what_it_missed_from_the_store(monkeypatch):
    monkeypatch.setattr(broker_module, "QUEUE_EVENTS", 4)

    async def scenario():
        store, broker = make(page=3)
        store.commit(broker, "j", status(1))
        seen: list[int] = []
        got_first = asyncio.Event()
        release = asyncio.Event()

        async def slow_watcher():
            async for event in broker.watch("j"):
                seen.append(event.id)
                got_first.set()
                await release.wait()  # a client that does not read for a while

        task = asyncio.create_task(slow_watcher())
        await got_first.wait()
        for i in range(2, 50):  # far more than its queue holds
            store.commit(broker, "j", metric(i))
        assert all(len(s.queue._queue) <= 4 for s in broker._subscribers["j"])  # type: ignore[attr-defined]
        release.set()
        await asyncio.sleep(0.01)
        store.commit(broker, "j", done(50))
        await asyncio.wait_for(task, 1)
        return seen

    assert asyncio.run(scenario()) == list(range(1, 51)), "every event once, in order"


def test_a_last_event_id_beyond_the_jobs_events_gets_the_status_and_then_the_end():
    async def scenario():
        store, broker = make()
        store.commit(broker, "j", status(1, "queued"))
        store.commit(broker, "j", status(2, "running"))
        watcher = asyncio.create_task(collect(broker, "j", after=1000))
        await asyncio.sleep(0.01)
        store.commit(broker, "j", metric(3))
        store.commit(broker, "j", done(4))
        return await asyncio.wait_for(watcher, 1)

    assert asyncio.run(scenario()) == [2, 3, 4]


def test_a_finished_job_with_an_id_from_the_future_gets_its_status_and_done():
    async def scenario():
        store, broker = make()
        store.commit(broker, "j", status(1, "queued"))
        store.commit(broker, "j", status(2, "succeeded"))
        store.commit(broker, "j", done(3))
        return await asyncio.wait_for(collect(broker, "j", after=99), 1)

    assert asyncio.run(scenario()) == [2, 3]


def test_a_done_followed_by_more_events_does_not_end_the_replay():
    # A failed job resumed from its checkpoint goes on after its first done.
    async def scenario():
        store, broker = make(page=2)
        for event in (status(1), metric(2), status(3, "failed"), done(4), status(5, "queued"), metric(6)):
            store.commit(broker, "j", event)
        watcher = asyncio.create_task(collect(broker, "j"))
        await asyncio.sleep(0.01)
        store.commit(broker, "j", done(7))
        return await asyncio.wait_for(watcher, 1)

    assert asyncio.run(scenario()) == [1, 2, 3, 4, 5, 6, 7]


def test_shutdown_ends_every_stream():
    async def scenario():
        store, broker = make()
        store.commit(broker, "a", status(1))
        store.commit(broker, "b", status(1))
        watchers = [asyncio.create_task(collect(broker, job)) for job in ("a", "a", "b")]
        await asyncio.sleep(0.01)
        broker.shutdown()
        return await asyncio.wait_for(asyncio.gather(*watchers), timeout=10)

    assert asyncio.run(scenario()) == [[1], [1], [1]]


def test_streams_are_limited_per_job_and_per_server_and_released():
    store, broker = make(max_streams=3, max_streams_per_job=2)
    a1, a2 = broker.open_stream("a"), broker.open_stream("a")
    with pytest.raises(StreamLimit, match="PLAYGROUND_MAX_STREAMS_PER_JOB=2"):
        broker.open_stream("a")
    b1 = broker.open_stream("b")
    with pytest.raises(StreamLimit, match="PLAYGROUND_MAX_STREAMS=3"):
        broker.open_stream("c")
    a1.release()
    a1.release()  # twice counts once
    assert broker.open_streams == 2
    broker.open_stream("a").release()
    del a2, b1  # never released explicitly (a response whose stream never started)
    gc.collect()
    assert broker.open_streams == 0
