"""The one place where named errors become HTTP responses.

Validation-like errors come back the way FastAPI reports its own: 422 with a ``detail`` list whose
entries have a ``loc`` (``["body", "params", "lr"]``), so a form can show each message by its field.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from app.errors import (
    DeviceUnavailable,
    InvalidInput,
    InvalidParams,
    JobConflict,
    JobNotFound,
    LimitExceeded,
    ModelUnavailable,
    PlaygroundError,
    QueueFull,
    UnknownKind,
    UploadTooLarge,
    WorkerDied,
)


def _field_errors(errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": jsonable_encoder(errors)})


def _detail(code: int, exc: Exception, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=code, content={"detail": str(exc)}, headers=headers)


def to_response(exc: PlaygroundError) -> JSONResponse:
    match exc:
        case InvalidParams():
            return _field_errors(
                [{**{k: v for k, v in e.items() if k != "url"}, "loc": ["body", "params", *e["loc"]]} for e in exc.errors]
            )
        case LimitExceeded():
            return _field_errors(
                [
                    {
                        "type": "server_limit",
                        "loc": ["body", "params", exc.field],
                        "msg": str(exc),
                        "input": exc.value,
                        "ctx": {"limit": exc.limit, "setting": exc.setting},
                    }
                ]
            )
        case UnknownKind():
            return _field_errors(
                [{"type": "unknown_kind", "loc": ["body", "kind"], "msg": str(exc), "input": exc.kind, "ctx": {"allowed": exc.allowed}}]
            )
        case DeviceUnavailable():
            return _field_errors(
                [
                    {
                        "type": "device_unavailable",
                        "loc": ["body", "device"],
                        "msg": str(exc),
                        "input": exc.device,
                        "ctx": {"available": exc.available},
                    }
                ]
            )
        case InvalidInput():
            return _detail(status.HTTP_422_UNPROCESSABLE_CONTENT, exc)
        case JobNotFound():
            return _detail(status.HTTP_404_NOT_FOUND, exc)
        case JobConflict() | ModelUnavailable():
            return _detail(status.HTTP_409_CONFLICT, exc)
        case QueueFull():
            return _detail(status.HTTP_429_TOO_MANY_REQUESTS, exc, headers={"Retry-After": "5"})
        case UploadTooLarge():
            return _detail(status.HTTP_413_CONTENT_TOO_LARGE, exc)
        case WorkerDied():  # the predictor died or hung: it is replaced, so a retry can work
            return _detail(status.HTTP_503_SERVICE_UNAVAILABLE, exc, headers={"Retry-After": "5"})
        case _:
            return _detail(status.HTTP_400_BAD_REQUEST, exc)


def register_error_handlers(app: FastAPI) -> None:
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PlaygroundError)
        return to_response(exc)

    app.add_exception_handler(PlaygroundError, handle)
