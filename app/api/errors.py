"""The one place where named errors become HTTP responses.

Validation-like errors come back the way FastAPI reports its own: 422 with a ``detail`` list whose
entries have a ``loc`` (``["body", "params", "lr"]``), so a form can show each message by its field.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import get_route_path

from app.errors import (
    DeviceUnavailable,
    InvalidInput,
    InvalidParams,
    JobConflict,
    JobNotFound,
    LessonNotFound,
    LimitExceeded,
    ModelUnavailable,
    PlaygroundError,
    QueueFull,
    UnknownKind,
    UploadTooLarge,
    WorkerDied,
    DatabaseUnavailable,
    StreamLimit,
    NoCheckpoint,
    InvalidField,
)


def json_safe(value: Any) -> Any:
    """``value`` with each float JSON cannot carry (NaN, ±Infinity) as the word JavaScript prints for it.

    Python's JSON parser reads ``NaN``, ``Infinity`` and ``1e400`` (as inf); an error that echoes such
    an input back must still be JSON, or the 422 becomes a 500.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def _field_errors(errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": json_safe(jsonable_encoder(errors))}
    )


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
        case InvalidField():
            return _field_errors(
                [{"type": "invalid_field", "loc": exc.loc, "msg": str(exc), "input": exc.value, "ctx": exc.ctx}]
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
        case JobNotFound() | LessonNotFound():
            return _detail(status.HTTP_404_NOT_FOUND, exc)
        case JobConflict() | ModelUnavailable() | NoCheckpoint():
            return _detail(status.HTTP_409_CONFLICT, exc)
        case QueueFull():
            return _detail(status.HTTP_429_TOO_MANY_REQUESTS, exc, headers={"Retry-After": "5"})
        case UploadTooLarge():
            return _detail(status.HTTP_413_CONTENT_TOO_LARGE, exc)
        case WorkerDied():  # the predictor died or hung: it is replaced, so a retry can work
            return _detail(status.HTTP_503_SERVICE_UNAVAILABLE, exc, headers={"Retry-After": "5"})
        case StreamLimit() | DatabaseUnavailable():  # a moment later it can work
            return _detail(status.HTTP_503_SERVICE_UNAVAILABLE, exc, headers={"Retry-After": "5"})
        case _:
            return _detail(status.HTTP_400_BAD_REQUEST, exc)


def register_error_handlers(app: FastAPI) -> None:
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PlaygroundError)
        return to_response(exc)

    async def handle_validation(_request: Request, exc: Exception) -> JSONResponse:
        # FastAPI's own handler, but safe for the non-finite numbers a request may carry.
        assert isinstance(exc, RequestValidationError)
        return _field_errors(list(exc.errors()))

    async def handle_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            # Starlette's Allow names the methods of the first route with this path only
            # (GET /api/jobs/{id} but not DELETE): name those of every route with it.
            path = get_route_path(request.scope)
            methods: set[str] = set()
            for route in iter_route_contexts(request.app.routes):
                if route.methods and route.path_regex.match(path):
                    methods |= route.methods
            if methods:
                allow = {"Allow": ", ".join(sorted(methods))}
                exc = StarletteHTTPException(exc.status_code, exc.detail, {**(exc.headers or {}), **allow})
        return await http_exception_handler(request, exc)

    app.add_exception_handler(PlaygroundError, handle)
    app.add_exception_handler(RequestValidationError, handle_validation)
    app.add_exception_handler(StarletteHTTPException, handle_http)
