"""Many runs' metrics as one table in long form (``GET /api/compare/metrics.csv``). No torch.

One row per metric point: the run's id and name, the settings in which the compared runs differ
(kind, seed, parameters), then the metric columns any of them has, in ``METRIC_FIELDS`` order -- the
shape pandas' ``groupby`` or a spreadsheet's pivot table wants. It is written one run at a time, so
twenty long runs cost the memory of one.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from app import crud
from app.errors import InvalidField, JobNotFound
from app.experiments.base import METRIC_FIELDS
from app.models import Job, Metric

MAX_COMPARED = 50  # runs in one download; Compare shows far fewer at a time
CHUNK_BYTES = 64 * 1024
_JOB_ID = "0123456789abcdef"
IDS_PATTERN = rf"^[0-9a-f]{{32}}(,[0-9a-f]{{32}}){{0,{MAX_COMPARED - 1}}}$"


def parse_ids(text: str) -> list[str]:
    """``"a,b,c"`` as a list of job ids, each once, in order; 422 (naming the value) when one is not
    an id, there is none, or there are over ``MAX_COMPARED``."""
    ids = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not ids:
        raise InvalidField(["query", "ids"], "ids is empty: give one or more job ids, separated by commas.", text)
    for job_id in ids:
        if len(job_id) != 32 or any(c not in _JOB_ID for c in job_id):
            raise InvalidField(["query", "ids"], f"{job_id!r} is not a job id (32 hex digits).", job_id)
    if len(ids) > MAX_COMPARED:
        raise InvalidField(
            ["query", "ids"],
            f"ids lists {len(ids)} runs; at most {MAX_COMPARED} can be downloaded together.",
            len(ids),
            limit=MAX_COMPARED,
        )
    return ids


def load_jobs(session: Session, ids: list[str]) -> list[Job]:
    """The jobs, in the order asked; 404 naming the first id that is not one."""
    jobs = []
    for job_id in ids:
        job = crud.get_job(session, job_id=job_id)
        if job is None:
            raise JobNotFound(job_id)
        jobs.append(job)
    return jobs


def _facts(job: Job) -> dict[str, Any]:
    return {"kind": job.kind, "seed": job.seed, **{k: v for k, v in job.params.items() if k != "data"}}


def differing_settings(jobs: list[Job]) -> list[str]:
    """The settings (kind, seed, then parameters in first-seen order) whose value is not the same in all."""
    names = list(dict.fromkeys(name for job in jobs for name in _facts(job)))
    differ = []
    for name in names:
        values = {json.dumps(_facts(job).get(name), sort_keys=True) for job in jobs}
        if len(values) > 1:
            differ.append(name)
    return differ


def metric_columns(session: Session, ids: list[str]) -> list[str]:
    """``step``, ``epoch`` and each metric that any of the jobs has a value of (a linear run has no
    accuracy), in ``METRIC_FIELDS`` order."""
    counts = session.exec(
        select(*[func.count(getattr(Metric, name)) for name in METRIC_FIELDS]).where(col(Metric.job_id).in_(ids))
    ).one()
    return [name for name, n in zip(METRIC_FIELDS, counts) if name in ("step", "epoch") or n]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return value


def long_csv(engine: Engine, jobs: list[Job]) -> Iterator[bytes]:
    """The CSV in chunks: a header, then each job's points in its order."""
    ids = [job.id for job in jobs]
    settings = differing_settings(jobs)
    with Session(engine) as session:
        columns = metric_columns(session, ids)
    keep = [METRIC_FIELDS.index(name) for name in columns]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["job_id", "name", *settings, *columns])
    for job in jobs:
        facts = _facts(job)
        head = [job.id, job.name or "", *(_cell(facts.get(name)) for name in settings)]
        with Session(engine) as session:  # one run's rows in memory at a time
            rows = crud.read_metric_rows(session, job_id=job.id)
        for row in rows:
            writer.writerow(head + [_cell(row[i]) for i in keep])
            if out.tell() >= CHUNK_BYTES:
                yield out.getvalue().encode()
                out.seek(0)
                out.truncate()
    yield out.getvalue().encode()
