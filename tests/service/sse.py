"""A small Server-Sent Events client for the tests (the parsing rules of the HTML standard).

It reads a real HTTP stream line by line as the bytes arrive, so a test sees what a browser would,
when it would -- an in-process test client can buffer a whole stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class SseEvent:
    event: str
    data: Any  # JSON-decoded
    id: int | None
    received_at: float = field(default_factory=time.perf_counter)


def iter_sse(response: httpx.Response, comments: list[str] | None = None) -> Iterator[SseEvent]:
    """Events of an open streaming response, until the server ends the stream."""
    event, data, event_id = "message", [], None
    for line in response.iter_lines():
        if line == "":
            if data:
                yield SseEvent(event, json.loads("\n".join(data)), event_id)
            event, data = "message", []
            continue
        if line.startswith(":"):
            if comments is not None:
                comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = int(value)


def read_events(
    base_url: str,
    job_id: str,
    last_event_id: int | None = None,
    stop_after: int | None = None,
    timeout: float = 120,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> list[SseEvent]:
    """A job's events until ``done`` (or until ``stop_after`` events, then disconnect)."""
    headers = dict(headers or {})
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    events: list[SseEvent] = []
    with (
        httpx.Client(base_url=base_url, timeout=httpx.Timeout(timeout, connect=10)) as client,
        client.stream("GET", f"/api/jobs/{job_id}/events", headers=headers, params=params) as response,
    ):
        response.raise_for_status()
        for sse in iter_sse(response):
            events.append(sse)
            if stop_after is not None and len(events) >= stop_after:
                break
    return events


def metric_points(events: list[SseEvent]) -> list[dict[str, Any]]:
    return [point for e in events if e.event == "metric" for point in e.data]
