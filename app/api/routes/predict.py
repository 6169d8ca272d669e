"""Predictions with a job's trained weights (run by the executor, never in the web process).

linear and mlp take JSON ``{"inputs": [x, ...]}`` in data units; cifar takes an image upload
(multipart field ``file``, PNG or JPEG). The router is included with a body limit of
``max_upload_bytes`` plus room for the multipart framing, which FastAPI enforces while it reads
(413); the file's own size is checked against ``max_upload_bytes`` exactly.

A cifar run's confusion cells are paged here too (``GET .../confusion/{true}/{pred}``): the worker
evaluates the run's test split with its weights again (``app.experiments.cifar_cells``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from app.api.deps import (
    MAX_INDEX,
    JobId,
    ReadAccess,
    ServiceDep,
    SettingsDep,
    WriteAccess,
)
from app.api.openapi import ERROR_DESCRIPTIONS, ErrorMessage
from app.config import Settings
from app.errors import (
    InvalidField,
    InvalidInput,
    JobConflict,
    ModelUnavailable,
    UploadTooLarge,
)
from app.models import Job

router = APIRouter(prefix="/jobs", tags=["jobs"])

# Bytes of multipart boundaries and part headers allowed on top of the file itself.
MULTIPART_SLACK = 64 * 1024
IMAGE_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}


class PredictInputs(BaseModel):
    inputs: list[float] = Field(min_length=1, description="Inputs in data units (like the book's t_u).")


_IMAGE_UPLOAD = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {"file": {"type": "string", "format": "binary", "description": "PNG or JPEG"}},
            "required": ["file"],
        }
    },
}
_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PredictInputs.model_json_schema()}, **_IMAGE_UPLOAD},
    }
}
_IMAGE_OPENAPI = {"requestBody": {"required": True, "content": _IMAGE_UPLOAD}}

CELL_PAGE = 24  # images per page unless `limit` says otherwise: four rows of six on the run page
MAX_CELL_PAGE = 100  # each is a PNG data URI of about 3 KB


class CellImage(BaseModel):
    index: int = Field(description="Its place in the run's test split (0-based).")
    image: str = Field(description="The 32x32 picture as a PNG data URI.")
    confidence: float = Field(description="The softmax probability of the class the net predicted for it.")


class ConfusionCellPage(BaseModel):
    true: str = Field(description="The cell's row: the images' true class.")
    pred: str = Field(description="The cell's column: the class the net predicted for them.")
    count: int = Field(description="How many test images the cell holds (the confusion matrix's number).")
    offset: int
    limit: int
    images: list[CellImage] = Field(description="The cell's images offset to offset + limit, in test-split order.")


@router.post("/{job_id}/predict", dependencies=[WriteAccess], openapi_extra=_OPENAPI)
async def predict(job_id: JobId, request: Request, service: ServiceDep, settings: SettingsDep) -> dict[str, Any]:
    """linear, mlp: `{"outputs": [...]}`; cifar: `{"label", "probabilities": {class: p}}`."""
    job = service.get_job(job_id)
    if job.kind == "cifar":
        inputs: Any = await read_image(request, settings)
    else:
        inputs = await read_numbers(request, settings)
    return await service.predict(job_id, inputs)


@router.post("/{job_id}/inside", dependencies=[WriteAccess], openapi_extra=_IMAGE_OPENAPI)
async def inside(job_id: JobId, request: Request, service: ServiceDep, settings: SettingsDep) -> dict[str, Any]:
    """Inside a cifar run's net for one uploaded image (PNG or JPEG, multipart field `file`):
    `label`, `probabilities`, `image` (the 32x32 picture the net saw), `saliency` (where the
    predicted class's score is most sensitive to the pixels), `layers` (each convolution's output
    shape and its strongest channels' maps) and `filters` (the first convolution's kernels). The
    pictures are PNG data URIs; `low`/`high` give the values their black and white stand for."""
    job = service.get_job(job_id)
    if job.kind != "cifar":
        raise InvalidInput(
            f"Inside the model is for cifar runs (an image through convolution layers); job {job_id!r} is "
            f"a {job.kind} run: its page draws its fitted curve instead."
        )
    return await service.inside(job_id, await read_image(request, settings))


@router.get(
    "/{job_id}/confusion/{true}/{pred}",
    dependencies=[ReadAccess],
    responses={
        400: {"model": ErrorMessage, "description": "The run's data set is not on this server any more."},
        409: {"model": ErrorMessage, "description": "Not a cifar run with trained weights (unfinished, diverged)."},
        503: {"model": ErrorMessage, "description": ERROR_DESCRIPTIONS[503]},
    },
)
async def confusion_cell(
    job_id: JobId,
    true: Annotated[int, Path(ge=0, description="The row: a true class, 0 to the number of classes - 1.")],
    pred: Annotated[int, Path(ge=0, description="The column: a predicted class, as `true`.")],
    service: ServiceDep,
    offset: Annotated[int, Query(ge=0, le=MAX_INDEX, description="Images of the cell to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_CELL_PAGE, description="Images to return at most.")] = CELL_PAGE,
) -> ConfusionCellPage:
    """Every test image of one cell of a finished cifar run's confusion matrix, a page at a time: the
    run's net evaluates its test split again in a worker, as the run's last evaluation did (seconds,
    once; the next pages are quick), so `count` is the matrix's number (for a run evaluated on a GPU
    an all-but-tied image may land in the next cell). In test-split order: the first page starts
    with the result's `confusion_examples` for the cell."""
    job = service.get_job(job_id)
    check_cell(job, {"true": true, "pred": pred})
    page = await service.confusion_cell(job_id, {"true": true, "pred": pred, "offset": offset, "limit": limit})
    return ConfusionCellPage.model_validate(page)


def check_cell(job: Job, cell: dict[str, int]) -> None:
    """A cifar run with weights and a result (else 409: the job, not the request, is the matter),
    and a row and a column that are its classes (else 422 naming the one that is not)."""
    action = "page the confusion matrix of"
    if job.kind != "cifar":
        raise JobConflict(job.id, f"a {job.kind} run", action, ["a cifar run (a classifier)"])
    if not job.has_model:
        raise ModelUnavailable(job.id, job.status)
    classes = (job.result or {}).get("classes")
    if not classes:  # weights without a result: nothing says what its classes are
        raise JobConflict(job.id, f"{job.status} without a result", action, ["a cifar run that finished"])
    for name, value in cell.items():
        if value >= len(classes):
            raise InvalidField(
                ["path", name],
                f"{name}={value} is not a class of this run: its classes are 0 ({classes[0]}) to "
                f"{len(classes) - 1} ({classes[-1]}).",
                value,
                classes=classes,
            )


async def read_numbers(request: Request, settings: Settings) -> list[float]:
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise InvalidInput('This model takes JSON: {"inputs": [x, ...]} (Content-Type: application/json).')
    try:
        body = PredictInputs.model_validate_json(await request.body())
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f'Expected {{"inputs": [x, ...]}} with numbers: {problems}.') from None
    if len(body.inputs) > settings.max_data_points:
        raise InvalidInput(
            f"{len(body.inputs)} inputs is over this server's limit of {settings.max_data_points} "
            "(PLAYGROUND_MAX_DATA_POINTS)."
        )
    return body.inputs


async def read_image(request: Request, settings: Settings) -> bytes:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInput("This model takes an image: upload a PNG or JPEG as multipart/form-data field 'file'.")
    async with request.form(max_files=1, max_fields=4) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("No file in the upload: send the image as multipart/form-data field 'file'.")
        if upload.size is not None and upload.size > settings.max_upload_bytes:
            raise UploadTooLarge(upload.size, settings.max_upload_bytes)
        data = await upload.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise UploadTooLarge(len(data), settings.max_upload_bytes)
    # Only the signature is looked at here; decoding (with its risks) happens in the predictor.
    if not any(data.startswith(signature) for signature in IMAGE_SIGNATURES):
        raise InvalidInput(
            f"{upload.filename or 'The upload'!r} is not a PNG or JPEG image "
            f"(it starts with {data[:8]!r}); upload a .png or .jpg file."
        )
    return data
