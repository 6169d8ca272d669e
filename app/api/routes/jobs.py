"""Jobs: create, list, read, cancel, delete, metrics, model download."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from app import crud
from app.api.conditional import NOT_MODIFIED_RESPONSE, json_or_not_modified
from app.api.deps import (
    MAX_INDEX,
    JobId,
    ReadAccess,
    ServiceDep,
    SessionDep,
    Writer,
    job_change,
)
from app.api.openapi import ERROR_DESCRIPTIONS, ErrorMessage
from app.experiments.onnx_export import MEDIA_TYPE as ONNX_MEDIA_TYPE
from app.experiments.params import live_params
from app.experiments.registry import EXPERIMENTS
from app.job_filters import (
    FILTER_PATTERN,
    MAX_FILTER_CHARS,
    MAX_FILTERS,
    JobSort,
    parse_filters,
)
from app.jobs.history import chunks
from app.jobs.repeats import MAX_SEEDS, MIN_SEEDS
from app.models import JobCreate, JobLabel, JobPublic, JobsPublic, JobStatus, JobSummary
from app.users import Principal

router = APIRouter(prefix="/jobs", tags=["jobs"])


class MetricsPublic(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    total: int  # points the job has; more than len(rows) when downsampled
    last_event_id: int = Field(
        description="The newest event whose points these rows include: `/events?last_event_id=N` continues after it."
    )
    snapshot: dict[str, Any] | None = Field(
        description="The data of the newest `snapshot` event up to `last_event_id` (a picture of the model); null: none yet."
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_job(
    body: JobCreate, service: ServiceDep, who: Writer, request: Request, response: Response
) -> JobPublic:
    """A new job, owned by whoever sends it; a fork of anyone's run is the forker's."""
    # async: the service writes on the event loop's thread only (see app/jobs/service.py).
    job = await service.create(body, owner=who.owner, student=who.role == "student")
    response.headers["Location"] = request.url_for("read_job", job_id=job.id).path
    return job


SORT_DESCRIPTION = (
    "newest or oldest first; name, status (running, queued, paused, then the ended ones), or a final "
    "metric (train_loss, val_loss, train_acc, val_acc: lowest first); a leading `-` reverses it. "
    "Runs without the value come last, and runs that tie stay newest first."
)
FILTER_QUERY = Query(
    alias="filter",
    description=(
        "`<field><op><value>`, repeated: every one must hold. Fields: a parameter (as the run started: "
        "`lr=0.01`, `optimizer=adam`, `augment=true`), a final metric (`val_acc>0.8`), `seed`, `name` "
        "or `owner` (`name~book`: contains, ignoring ASCII case). Numbers take = != < <= > >=, "
        f"choices and booleans = !=, text = != ~. At most {MAX_FILTERS}."
    ),
    json_schema_extra={
        "maxItems": MAX_FILTERS,
        "items": {"type": "string", "maxLength": MAX_FILTER_CHARS, "pattern": FILTER_PATTERN},
    },
)


@router.get("", dependencies=[ReadAccess], response_model=JobsPublic, responses=NOT_MODIFIED_RESPONSE)
def list_jobs(
    request: Request,
    session: SessionDep,
    service: ServiceDep,
    kind: str | None = None,
    status: JobStatus | None = None,
    sort: Annotated[JobSort, Query(description=SORT_DESCRIPTION)] = JobSort.NEWEST,
    filters: Annotated[list[str], FILTER_QUERY] = [],  # noqa: B006 (FastAPI copies the default per request)
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_INDEX),
) -> Response:
    """A page of job summaries, newest first unless `sort` says otherwise, filtered by `kind`,
    `status` and `filter`: no pictures or curves (a job's own read has them). With an `ETag`: a page
    re-reading it with `If-None-Match` gets 304 while nothing changed."""
    conditions = parse_filters(filters or [])
    items, total = crud.list_jobs(
        session, kind=kind, status=status, filters=conditions, sort=sort, limit=limit, offset=offset
    )
    page = JobsPublic(items=[JobSummary.from_public(service.public(job)) for job in items], total=total)
    return json_or_not_modified(request, page)


@router.get("/{job_id}", dependencies=[ReadAccess])
def read_job(job_id: JobId, service: ServiceDep) -> JobPublic:
    """The job, with its own data points in `params.data` (lists and events leave them out)."""
    return service.read_job(job_id)


class RepeatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seeds: int = Field(
        description=f"How many new runs, {MIN_SEEDS} to {MAX_SEEDS}; each has its own seed.",
        json_schema_extra={"minimum": MIN_SEEDS, "maximum": MAX_SEEDS},
    )
    paused: StrictBool = Field(False, description="Create them paused, as POST /api/jobs does with `paused`.")

    # A count is a JSON number (3, or 3.0 which JSON Schema calls an integer too), never "3" or true.
    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds_a_number(cls, seeds: Any) -> Any:
        if isinstance(seeds, bool) or not isinstance(seeds, int | float):
            raise ValueError(  # noqa: TRY004 (pydantic turns a ValueError, not a TypeError, into a 422)
                f"seeds={seeds!r} is not a number: repeat a run with {MIN_SEEDS} to {MAX_SEEDS} seeds"
            )
        return seeds

    @field_validator("seeds")
    @classmethod
    def _seeds_in_range(cls, seeds: int) -> int:
        if not MIN_SEEDS <= seeds <= MAX_SEEDS:
            raise ValueError(f"seeds={seeds} is not allowed: repeat a run with {MIN_SEEDS} to {MAX_SEEDS} seeds")
        return seeds


@router.post(
    "/{job_id}/repeat",
    status_code=status.HTTP_201_CREATED,
    responses={
        400: {"model": ErrorMessage, "description": ERROR_DESCRIPTIONS[400]},
        409: {"model": ErrorMessage, "description": "A fork, or a run changed while it ran, cannot be repeated."},
        429: {"model": ErrorMessage, "description": "The queue (or the user's share) has no room for them all."},
    },
)
async def repeat_job(job_id: JobId, body: RepeatRequest, service: ServiceDep, who: Writer) -> JobsPublic:
    """`seeds` new runs with the job's kind, parameters and device and the seeds after its own (so
    another validation split and initialisation), named "<name> · seed N". Like a fork, anyone may
    repeat anyone's run; the new runs are the repeater's, within the same limits as POST /api/jobs."""
    jobs = await service.repeat(
        job_id, body.seeds, owner=who.owner, paused=body.paused, student=who.role == "student"
    )
    return JobsPublic(items=[JobSummary.from_public(job) for job in jobs], total=len(jobs))


@router.get("/{job_id}/data", dependencies=[ReadAccess])
def read_job_data(job_id: JobId, service: ServiceDep) -> list[list[float]] | None:
    """The job's own [x, y] points (`params.data`); null when it trains on the book's."""
    return service.job_data(job_id)


@router.post("/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED, dependencies=[job_change("cancel")])
async def cancel_job(job_id: JobId, service: ServiceDep) -> JobPublic:
    """Ask a queued or running job to stop; it becomes `cancelled` within about 2 seconds."""
    return await service.cancel(job_id)


class StepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"not": {"required": ["epochs", "steps"]}})

    epochs: int | None = Field(None, ge=1, le=100_000, description="Epochs to run (linear, mlp: one step each).")
    steps: int | None = Field(None, ge=1, le=10_000_000, description="Optimisation steps to run (cifar: batches).")

    @model_validator(mode="after")
    def _one_of(self) -> StepRequest:
        if self.epochs is not None and self.steps is not None:
            raise ValueError("give epochs or steps, not both")
        return self


def _live_params_schema() -> dict[str, Any]:
    """The live parameters of every kind (which of them a job takes depends on its kind)."""
    properties: dict[str, Any] = {}
    for spec in EXPERIMENTS.values():
        schema = spec.params_model.model_json_schema()["properties"]
        for name in live_params(spec.params_model):
            properties.setdefault(name, schema[name])
    return {"properties": properties, "additionalProperties": False, "minProperties": 1}


class ParamsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Validated by the service against the job's own kind, so that a parameter that is not live is
    # refused with the list of those that are; the schema lists every kind's live ones.
    params: dict[str, Any] = Field(
        description="Live parameters (x-live in the kind's schema) and their new values.",
        json_schema_extra=_live_params_schema(),
    )


@router.post("/{job_id}/pause", status_code=status.HTTP_202_ACCEPTED, dependencies=[job_change("pause")])
async def pause_job(job_id: JobId, service: ServiceDep) -> JobPublic:
    """A running job stops at its next step boundary (linear, mlp: an epoch; cifar: a batch) with a
    checkpoint and becomes `paused`, freeing its worker; a queued job does not start until resumed."""
    return await service.pause(job_id)


@router.post("/{job_id}/resume", status_code=status.HTTP_202_ACCEPTED, dependencies=[job_change("resume")])
async def resume_job(job_id: JobId, service: ServiceDep) -> JobPublic:
    """A paused job goes on (queued, then running on any free worker) from its checkpoint; so does an
    `interrupted` or `failed` one that is `resumable`. Its events go on with the next id and step."""
    return await service.resume(job_id)


@router.post("/{job_id}/step", status_code=status.HTTP_202_ACCEPTED, dependencies=[job_change("step")])
async def step_job(job_id: JobId, service: ServiceDep, body: StepRequest | None = None) -> JobPublic:
    """A paused job runs exactly `epochs` epochs or `steps` steps (default: one epoch), then pauses again."""
    body = body or StepRequest()
    epochs = body.epochs if body.epochs is not None or body.steps is not None else 1
    return await service.resume(job_id, steps=body.steps, epochs=epochs, action="step")


@router.patch("/{job_id}", status_code=status.HTTP_202_ACCEPTED)
async def patch_job(
    job_id: JobId, body: ParamsPatch, service: ServiceDep, who: Annotated[Principal, job_change("change")]
) -> JobPublic:
    """Change live parameters of a queued, running or paused job, from its next step on. A running
    job takes them at its next step boundary: a `control` event `{"step", "params"}` says where.
    A student may not change a parameter that the run's lesson locks or hides (422)."""
    return await service.patch(job_id, body.params, student=who.role == "student")


@router.patch("/{job_id}/label")
async def label_job(
    job_id: JobId, body: JobLabel, service: ServiceDep, _who: Annotated[Principal, job_change("rename or annotate")]
) -> JobPublic:
    """Rename a run or change its notes, whatever its status: a field left out stays, null or blank
    clears it. Open lists hear of it as a `status` change on `GET /api/events`. Its owner, a teacher
    or the admin may; another student may not (403)."""
    return await service.label(job_id, body.model_dump(include=body.model_fields_set))


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[job_change("delete")])
async def delete_job(job_id: JobId, service: ServiceDep) -> None:
    """Remove a finished job with its metrics and its model file."""
    await service.delete(job_id)


@router.get(
    "/{job_id}/metrics",
    dependencies=[ReadAccess],
    response_model=MetricsPublic,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with a header row"}},
)
async def read_metrics(
    job_id: JobId,
    service: ServiceDep,
    format: Literal["json", "csv"] = "json",
    max_points: int | None = Query(
        None, ge=2, le=1_000_000, description="At most this many rows; each bucket keeps its minimum and maximum."
    ),
    with_parent: bool = Query(
        False, description="A fork: its parent's rows up to the fork step first (and theirs, up the line)."
    ),
) -> Any:
    body = await service.metrics_body(job_id, format, max_points, with_parent=with_parent)
    if format == "csv":
        return StreamingResponse(
            chunks(body),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{job_id}-metrics.csv"'},
        )
    return StreamingResponse(chunks(body), media_type="application/json")


@router.get(
    "/{job_id}/model",
    dependencies=[ReadAccess],
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/octet-stream": {}, "application/onnx": {}},
            "description": "pt: torch.save of the state_dict; onnx: the model as ONNX (inputs and outputs named)",
        },
    },
)
async def download_model(
    job_id: JobId,
    service: ServiceDep,
    model_format: Annotated[
        Literal["pt", "onnx"],
        Query(
            alias="format",
            description="`pt`: the state_dict (torch.load). `onnx`: for onnxruntime, Netron and others; "
            "linear and mlp take `t_u` (float32 [batch], data units) and give `t_c`, cifar takes "
            "`image` (uint8 [batch, 3, 32, 32], RGB) and gives `logits` (the class names are in its "
            "metadata). Made by a worker on the first request (seconds), then kept.",
        ),
    ] = "pt",
) -> FileResponse:
    job = service.get_job(job_id)
    if model_format == "onnx":
        path = await service.onnx_file(job_id)
        return FileResponse(path, media_type=ONNX_MEDIA_TYPE, filename=f"{job.kind}-{job_id}.onnx")
    return FileResponse(
        service.model_file(job), media_type="application/octet-stream", filename=f"{job.kind}-{job_id}.pt"
    )
