"""The event broker: backlog then live events, Last-Event-ID, replay of finished jobs, shutdown."""

from __future__ import annotations

import asyncio

from app.jobs.broker import Event, EventBroker
from app.models import EventType


def status(i: int) -> Event:
    return Event(i, EventType.STATUS, {"n": i})


def metric(i: int) -> Event:
    return Event(i, EventType.METRIC, [{"step": i}])


async def collect(broker: EventBroker, job_id: str, after: int = 0) -> list[int]:
    return [e.id async for e in broker.watch(job_id, after)]


def test_watchers_get_backlog_then_live_events_until_done():
    async def scenario():
        broker = EventBroker(replay=None)  # type: ignore[arg-type]
        broker.open("j", [status(1)])
        early = asyncio.create_task(collect(broker, "j"))
        await asyncio.sleep(0)
        for i in range(2, 6):
            broker.publish("j", metric(i))
        late = asyncio.create_task(collect(broker, "j", after=3))
        resumed = asyncio.create_task(collect(broker, "j", after=5))
        await asyncio.sleep(0)
        broker.publish("j", status(6))
        broker.publish("j", Event(7, EventType.DONE, {}))
        broker.close("j")
        return await early, await late, await resumed

    early, late, resumed = asyncio.run(scenario())
    assert early == [1, 2, 3, 4, 5, 6, 7]
    assert late == [4, 5, 6, 7]
    assert resumed == [6, 7]


def test_a_finished_job_is_replayed_from_the_store():
    stored = [status(1), metric(2), status(3), Event(4, EventType.DONE, {})]

    async def replay(job_id: str, after: int) -> list[Event]:
        return [e for e in stored if e.id > after]

    async def scenario():
        broker = EventBroker(replay)
        return await collect(broker, "j"), await collect(broker, "j", after=2)

    assert asyncio.run(scenario()) == ([1, 2, 3, 4], [3, 4])


def test_ids_must_follow_each_other():
    broker = EventBroker(replay=None)  # type: ignore[arg-type]
    broker.open("j", [status(1)])
    try:
        broker.publish("j", metric(3))
    except ValueError as exc:
        assert "does not follow 1" in str(exc)
    else:
        raise AssertionError("a gap in the ids was accepted")


def test_shutdown_ends_every_open_stream():
    async def scenario():
        broker = EventBroker(replay=None)  # type: ignore[arg-type]
        broker.open("a", [status(1)])
        broker.open("b", [status(1)])
        watchers = [asyncio.create_task(collect(broker, job)) for job in ("a", "a", "b")]
        await asyncio.sleep(0)
        broker.shutdown()
        return await asyncio.wait_for(asyncio.gather(*watchers), timeout=1)

    assert asyncio.run(scenario()) == [[1], [1], [1]]
