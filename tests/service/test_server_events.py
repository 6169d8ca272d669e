"""GET /api/events: every job's changes on one stream, with ids, resume and reset (issue 13).

Jobs are created paused (they hold no worker until resumed), so no test races the clock; a
``Listener`` reads the stream in a thread and waits for the server's ``live`` event before the test
acts, so nothing the test does falls before the subscription.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import pytest

from app.jobs.server_events import ServerEvents
from tests.service.helpers import post_job, wait_for
from tests.service.server_process import Server


class Listener:
    """``/api/events`` read in a thread: ``.events`` as (type, id, data), in arrival order."""

    def __init__(self, base_url: str, last_event_id: str | None = None, params: dict[str, str] | None = None) -> None:
        self.events: list[tuple[str, str, Any]] = []
        self.live = threading.Event()
        self.greeting: dict[str, Any] = {}
        self.status: int | None = None
        self._stop = False
        headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
        self._thread = threading.Thread(target=self._read, args=(base_url, headers, params or {}), daemon=True)
        self._thread.start()
        assert self.live.wait(30), f"no 'live' event (status {self.status})"

    def _read(self, base_url: str, headers: dict[str, str], params: dict[str, str]) -> None:
        with (
            httpx.Client(base_url=base_url, timeout=httpx.Timeout(60, connect=10)) as client,
            client.stream("GET", "/api/events", headers=headers, params=params) as response,
        ):
            self.status = response.status_code
            if response.status_code != 200:
                self.live.set()
                return
            event, data, event_id = "message", [], None
            for line in response.iter_lines():
                if self._stop:
                    return
                if line.startswith(":"):
                    continue
                if line == "":
                    if data and event == "live":
                        assert event_id is None, "live has no id"
                        self.greeting = json.loads("\n".join(data))
                        self.live.set()
                    elif data:
                        self.events.append((event, event_id, json.loads("\n".join(data))))
                    event, data, event_id = "message", [], None
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    event = value
                elif name == "data":
                    data.append(value)
                elif name == "id":
                    event_id = value

    def of(self, job_id: str) -> list[tuple[str, str, Any]]:
        return [e for e in self.events if e[2].get("id") == job_id]

    def wait(self, predicate, timeout: float = 60) -> list[tuple[str, str, Any]]:
        deadline = time.monotonic() + timeout
        while not predicate(self.events):
            assert time.monotonic() < deadline, f"timed out; got {[(t, i) for t, i, _ in self.events]}"
            time.sleep(0.05)
        return list(self.events)

    def close(self) -> None:
        self._stop = True  # the thread ends at its next line (a keep-alive at the latest); it is a daemon


def seq(event_id: str) -> tuple[str, int]:
    run, _, n = event_id.rpartition("-")
    return run, int(n)


def has(job_id: str, type_: str, status: str | None = None):
    return lambda events: any(
        t == type_ and d.get("id") == job_id and (status is None or d.get("status") == status) for t, _, d in events
    )


@pytest.fixture
def client(server: Server):
    with server.client() as c:
        yield c


def test_a_jobs_life_arrives_in_order_with_increasing_ids(server: Server, client: httpx.Client) -> None:
    listener = Listener(server.url)
    assert listener.greeting["resumed"] is False and set(listener.greeting["counts"]) == {"running", "queued"}
    job = post_job(client, "linear", {"epochs": 200}, seed=1, paused=True)
    listener.wait(has(job["id"], "created"))
    assert client.post(f"/api/jobs/{job['id']}/resume").status_code == 202
    wait_for(client, job["id"])
    listener.wait(has(job["id"], "status", "succeeded"))
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 204
    listener.wait(has(job["id"], "deleted"))
    listener.close()

    mine = listener.of(job["id"])
    types = [t for t, _, _ in mine]
    statuses = [d["status"] for t, _, d in mine if t in ("created", "status")]
    assert types[0] == "created" and types[-1] == "deleted", types
    assert statuses[0] == "paused" and statuses[-1] == "succeeded", statuses
    assert statuses.index("queued") < statuses.index("running") < statuses.index("succeeded")
    # progress between running and the end, with the job's step
    running_at = types.index("status", types.index("status") + 1)  # queued, then running
    progress = [d for t, _, d in mine if t == "progress"]
    assert progress and "progress" in types[running_at:]
    assert all(p["progress"]["step"] > 0 and set(p) == {"id", "progress"} for p in progress)
    assert types.index("progress") < len(types) - 2  # before the succeeded status and the deletion
    # the summary is the list's: no result samples, the parameters, and the server's counts
    created = mine[0][2]
    assert created["kind"] == "linear" and created["params"]["epochs"] == 200
    assert set(created["counts"]) == {"running", "queued"}
    assert mine[-1][2]["counts"]["running"] == 0
    # ids increase across the whole stream, in one run
    ids = [seq(i) for _, i, _ in listener.events]
    assert len({run for run, _ in ids}) == 1
    assert [n for _, n in ids] == sorted({n for _, n in ids})


def test_reconnect_with_last_event_id_gets_exactly_the_missed_events(server: Server, client: httpx.Client) -> None:
    watching = Listener(server.url)
    first = post_job(client, "linear", {}, paused=True)
    watching.wait(has(first["id"], "created"))
    left_at = next(i for t, i, d in watching.events if d.get("id") == first["id"])
    # while away: two created, one deleted
    second = post_job(client, "linear", {}, paused=True)
    third = post_job(client, "mlp", {}, paused=True)
    assert client.delete(f"/api/jobs/{second['id']}").status_code == 204
    watching.wait(has(second["id"], "deleted"))

    back = Listener(server.url, last_event_id=left_at)
    assert back.greeting["resumed"] is True
    expected = [e for e in watching.events if seq(e[1])[1] > seq(left_at)[1]]
    back.wait(lambda events: len(events) >= len(expected))
    time.sleep(0.3)  # nothing more than the missed ones
    assert back.events == expected
    assert [(t, d["id"]) for t, _, d in back.events if d["id"] in (second["id"], third["id"])] == [
        ("created", second["id"]),
        ("created", third["id"]),
        ("deleted", second["id"]),
    ]
    # the query parameter does the same for a first connection (an EventSource cannot set the header)
    by_query = Listener(server.url, params={"last_event_id": left_at})
    by_query.wait(lambda events: len(events) >= len(expected))
    assert by_query.events[: len(expected)] == expected
    # and what follows comes live on the resumed stream
    client.delete(f"/api/jobs/{third['id']}")
    back.wait(has(third["id"], "deleted"))
    for listener in (watching, back, by_query):
        listener.close()
    client.delete(f"/api/jobs/{first['id']}")


@pytest.mark.parametrize("last_event_id", ["nope", "0abc-3", "xyz", "run-from-before-1"])
def test_an_id_from_another_run_gets_reset(server: Server, last_event_id: str) -> None:
    listener = Listener(server.url, last_event_id=last_event_id)
    assert listener.greeting["resumed"] is True  # and the reset follows
    events = listener.wait(lambda events: len(events) >= 1)
    listener.close()
    type_, event_id, data = events[0]
    assert type_ == "reset" and "read the list again" in data["reason"]
    assert set(data["counts"]) == {"running", "queued"}
    seq(event_id)  # an id to resume from


def test_an_id_not_handed_out_yet_gets_reset(server: Server, client: httpx.Client) -> None:
    listener = Listener(server.url)
    job = post_job(client, "linear", {}, paused=True)
    listener.wait(has(job["id"], "created"))
    listener.close()
    run, n = seq(next(i for t, i, d in listener.events if d.get("id") == job["id"]))
    ahead = Listener(server.url, last_event_id=f"{run}-{n + 1000}")
    assert ahead.wait(lambda events: len(events) >= 1)[0][0] == "reset"
    ahead.close()
    client.delete(f"/api/jobs/{job['id']}")


def test_a_deleted_job_is_announced_with_the_counts(server: Server, client: httpx.Client) -> None:
    job = post_job(client, "mlp", {}, paused=True)
    listener = Listener(server.url)
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 204
    events = listener.wait(has(job["id"], "deleted"))
    listener.close()
    deleted = [d for t, _, d in events if t == "deleted"]
    assert deleted == [{"id": job["id"], "counts": deleted[0]["counts"]}]


def test_the_stream_counts_against_the_server_limit(server_factory) -> None:
    srv = server_factory(env={"PLAYGROUND_MAX_STREAMS": "1"}, workers=1)
    listener = Listener(srv.url)
    with srv.client() as client:
        refused = client.get("/api/events")
        assert refused.status_code == 503, refused.text
        assert "PLAYGROUND_MAX_STREAMS" in refused.text
    listener.close()


def test_pages_open_more_server_wide_streams_than_one_jobs_limit(server_factory) -> None:
    # One per open page: held to PLAYGROUND_MAX_STREAMS, not to a job's PLAYGROUND_MAX_STREAMS_PER_JOB.
    srv = server_factory(env={"PLAYGROUND_MAX_STREAMS": "2", "PLAYGROUND_MAX_STREAMS_PER_JOB": "1"}, workers=1)
    listeners = [Listener(srv.url), Listener(srv.url)]  # two, over the per-job limit of one
    with srv.client() as client:
        refused = client.get("/api/events")  # the third: over the server's limit
        assert refused.status_code == 503, refused.text
        assert "PLAYGROUND_MAX_STREAMS" in refused.text and "PER_JOB" not in refused.text
    for listener in listeners:
        listener.close()


def test_the_stream_needs_the_token_where_reads_do_and_takes_the_cookie(server_factory) -> None:
    token = "t" * 24
    srv = server_factory(env={"PLAYGROUND_API_TOKEN": token, "PLAYGROUND_AUTH_READS": "true"}, workers=1)
    assert httpx.get(f"{srv.url}/api/events", timeout=10).status_code == 401
    with (
        httpx.Client(base_url=srv.url, cookies={"playground_token": token}, timeout=10) as client,
        client.stream("GET", "/api/events") as response,
    ):
        assert response.status_code == 200  # the browser's EventSource sends the cookie, not a header
        assert next(response.iter_lines()) == "event: live"


# ----------------------------------------------------------------------------------------------
# The ring and the queues, without a server


def test_the_ring_keeps_the_newest_and_resets_older_ids() -> None:
    events = ServerEvents(keep=3, run="r")
    for i in range(5):
        events.publish("deleted", {"id": str(i)})
    assert events.missed("r-5") == []
    assert [e.id for e in events.missed("r-2")] == ["r-3", "r-4", "r-5"]
    assert events.missed("r-1") is None  # r-2 fell out of the ring
    assert events.missed("r-6") is None and events.missed("s-4") is None and events.missed("r-x") is None


def test_progress_goes_out_at_most_once_a_second_per_job() -> None:
    events = ServerEvents(run="r")
    sent = [events.publish_progress({"id": job, "progress": {"step": t}}, now=t) for t in (0.0, 0.5, 1.0) for job in "ab"]
    assert [e is not None for e in sent] == [True, True, False, False, True, True]


def test_a_client_that_stops_reading_is_dropped_to_a_reset() -> None:
    async def scenario() -> list[str]:
        events = ServerEvents(run="r")
        stream = events.watch(None)
        assert (await anext(stream)).type == "live"  # subscribed
        for i in range(1000):  # more than a queue holds
            events.publish("deleted", {"id": str(i)})
        subscriber = next(iter(events._subscribers))
        assert subscriber.queue.qsize() == 1  # dropped: only the reset marker is held
        events.publish("deleted", {"id": "after"})
        first = await anext(stream)
        events.publish("deleted", {"id": "later"})
        second = await anext(stream)
        await stream.aclose()
        return [first.type, first.id, second.data["id"]]

    assert asyncio.run(scenario()) == ["reset", "r-1001", "later"]
