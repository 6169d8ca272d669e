"""``/metrics``: a job's points as one table, in bounded time and memory however many ask. No torch.

A table is built in a worker thread from one read transaction (so its ``last_event_id`` matches its
rows exactly), at most ``concurrency`` at a time; fifty clients asking at once for a 100,000-point
job cost one or two builds, not fifty. A finished job's table cannot change, so it is kept, encoded,
in a cache bounded in bytes, and every later request is a copy-free read of it; the route sends it in
chunks, so a client that reads slowly holds a chunk, not the whole table.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from anyio import to_thread
from sqlalchemy import Engine
from sqlmodel import Session

from app import crud
from app.errors import JobNotFound
from app.experiments.base import METRIC_FIELDS
from app.jobs.downsample import downsample_min_max

Format = Literal["json", "csv"]
CHUNK_BYTES = 64 * 1024
MAX_ANCESTORS = 20  # a fork of a fork of ...: how far up ``with_parent`` goes


@dataclass
class MetricsTable:
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    total: int = 0  # points before downsampling
    last_event_id: int = 0  # the newest event whose points are in ``rows`` (before downsampling)
    snapshot: dict[str, Any] | None = None  # the newest picture of the model up to that event


def read_metrics_table(
    engine: Engine, job_id: str, max_points: int | None = None, with_parent: bool = False
) -> MetricsTable:
    """Every point of the job (or at most ``max_points``, extremes kept), in step order.

    Columns with no value at all are left out (a linear job has no accuracy). ``with_parent``: a
    fork's parent's points up to the fork step come first (and the parent's parent's, up the line).
    """
    with Session(engine) as session, session.begin():  # one snapshot of the database
        job = crud.get_job(session, job_id=job_id)
        if job is None:
            raise JobNotFound(job_id)
        last_event_id = crud.last_event_id(session, job_id=job_id)
        snapshot = crud.latest_snapshot(session, job_id=job_id, up_to=last_event_id)
        rows = crud.read_metric_rows(session, job_id=job_id)
        child = job
        for _ in range(MAX_ANCESTORS if with_parent else 0):
            if child.parent_id is None or child.fork_step is None:
                break
            parent = crud.get_job(session, job_id=child.parent_id)
            if parent is None:  # deleted: the line stops here
                break
            rows = crud.read_metric_rows(session, job_id=parent.id, through_step=child.fork_step) + rows
            child = parent
    keep = [
        i for i, name in enumerate(METRIC_FIELDS) if name in ("step", "epoch") or any(r[i] is not None for r in rows)
    ]
    columns = [METRIC_FIELDS[i] for i in keep]
    table = [[row[i] for i in keep] for row in rows]
    total = len(table)
    if max_points is not None:
        values = [j for j, name in enumerate(columns) if name not in ("step", "epoch")]
        table = [table[i] for i in downsample_min_max(table, values, max_points)]
    return MetricsTable(columns=columns, rows=table, total=total, last_event_id=last_event_id, snapshot=snapshot)


def encode(table: MetricsTable, fmt: Format) -> bytes:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(table.columns)
        writer.writerows(["" if v is None else v for v in row] for row in table.rows)
        return out.getvalue().encode()
    body = {
        "columns": table.columns,
        "rows": table.rows,
        "total": table.total,
        "last_event_id": table.last_event_id,
        "snapshot": table.snapshot,
    }
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def chunks(body: bytes) -> Iterator[bytes]:
    view = memoryview(body)
    for start in range(0, len(view), CHUNK_BYTES):
        yield bytes(view[start : start + CHUNK_BYTES])


class MetricsReader:
    def __init__(self, engine: Engine, *, cache_bytes: int = 64 * 1024 * 1024, concurrency: int = 2) -> None:
        self.engine = engine
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple[str, Format, int | None, bool], bytes] = OrderedDict()
        self._cached_bytes = 0
        self._builds = asyncio.Semaphore(concurrency)
        self._building: dict[tuple[str, Format, int | None, bool], asyncio.Future[bytes]] = {}

    async def body(
        self, job_id: str, fmt: Format, max_points: int | None, *, final: bool, with_parent: bool = False
    ) -> bytes:
        """The encoded table; ``final``: the job is over, so its table may be kept and shared."""
        key = (job_id, fmt, max_points, with_parent)
        if final and key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if key in self._building:  # the same table is being built for someone else: share it
            return await asyncio.shield(self._building[key])
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._building[key] = future
        try:
            async with self._builds:
                body = await to_thread.run_sync(
                    lambda: encode(read_metrics_table(self.engine, job_id, max_points, with_parent), fmt)
                )
            future.set_result(body)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when no one else waits
            raise
        finally:
            del self._building[key]
        if final:
            self._keep(key, body)
        return body

    def forget(self, job_id: str) -> None:
        """The job changed (deleted, resumed): its tables are stale."""
        for key in [k for k in self._cache if k[0] == job_id]:
            self._cached_bytes -= len(self._cache.pop(key))

    def _keep(self, key: tuple[str, Format, int | None, bool], body: bytes) -> None:
        if len(body) > self.cache_bytes // 4:
            return  # one table must not push out all the others
        self._cache[key] = body
        self._cached_bytes += len(body)
        while self._cached_bytes > self.cache_bytes:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= len(old)
