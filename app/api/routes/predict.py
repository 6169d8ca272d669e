"""Predictions with a job's trained weights (run by the executor, never in the web process).

linear and mlp take JSON ``{"inputs": [x, ...]}`` in data units; cifar takes an image upload
(multipart field ``file``, PNG or JPEG). The router is included with a body limit of
``max_upload_bytes`` plus room for the multipart framing, which FastAPI enforces while it reads
(413); the file's own size is checked against ``max_upload_bytes`` exactly.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from app.api.deps import JobId, ServiceDep, SettingsDep, WriteAccess
from app.config import Settings
from app.errors import InvalidInput, UploadTooLarge

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
