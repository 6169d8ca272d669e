"""The API description (``/openapi.json``), made to say what this server answers.

FastAPI documents each operation's success and its request validation (422). The rest is added
here, once, for the server the description comes from:

- the errors each operation can answer (app/api/errors.py maps the named errors to them), with
  ``{"detail": "..."}`` bodies;
- security: the token is declared required only where this server requires it (everywhere once it
  has users; else writes when it has a token, reads only with PLAYGROUND_AUTH_READS too); elsewhere
  it is optional (``{}``). Users can be added while it runs, so there is one description per mode;
- a job's ``kind`` is one of the registry's, and its ``params`` follow that kind's model with this
  server's limits (the same schema as ``/api/kinds``); ``device`` is one this server has.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from app import crud
from app.api.routes.meta import params_schema
from app.config import Settings
from app.experiments.registry import EXPERIMENTS

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ErrorMessage(BaseModel):
    detail: str


ERROR_DESCRIPTIONS = {
    400: "The body could not be read (not JSON, a broken upload), or the job cannot run here.",
    401: "This server needs `Authorization: Bearer <token>` (a user's, or PLAYGROUND_API_TOKEN) for this request.",
    403: (
        "A student may change only their own runs (the message names the owner and the action), or a browser "
        "sent this change from a page of another site (app/api/csrf.py)."
    ),
    404: "No job with that id.",
    409: "The job's status does not allow this (e.g. cancel a finished job, the model of a failed one).",
    413: "The body is over this server's limit (PLAYGROUND_MAX_DATA_POINTS, PLAYGROUND_MAX_UPLOAD_BYTES).",
    429: (
        "Too many jobs are waiting (PLAYGROUND_MAX_QUEUED), or the user has as many queued or running as one "
        "may (PLAYGROUND_MAX_QUEUED_PER_USER, PLAYGROUND_MAX_RUNNING_PER_USER); see `Retry-After`."
    ),
    503: "The predictor died or hung and is being replaced; see `Retry-After`.",
}

# What each operation can answer besides those every operation of its sort can (operation_errors):
# the named errors its route raises (app/errors.py) and the limits of its body.
OPERATION_ERRORS: dict[tuple[str, str], set[int]] = {
    ("post", "/api/jobs"): {400, 404, 409, 413, 429, 503},  # 404, 409: a fork's parent, its checkpoint; the lesson
    ("post", "/api/lessons"): {400, 413, 503},
    ("post", "/api/lessons/instructions/preview"): {400, 413},  # 400: a body that is not JSON; nothing is written
    ("delete", "/api/lessons/{lesson_id}"): {503},
    ("post", "/api/jobs/{job_id}/cancel"): {409, 503},
    ("post", "/api/jobs/{job_id}/pause"): {409, 503},
    ("post", "/api/jobs/{job_id}/resume"): {409, 429, 503},  # 429: the owner's per-user limits
    ("post", "/api/jobs/{job_id}/step"): {400, 409, 429, 503},
    ("patch", "/api/jobs/{job_id}"): {400, 409, 503},
    ("patch", "/api/jobs/{job_id}/label"): {400, 503},  # 400: a body that is not JSON
    ("delete", "/api/jobs/{job_id}"): {409, 503},
    ("get", "/api/jobs/{job_id}/events"): {503},
    ("get", "/api/events"): {503},  # the stream limits (PLAYGROUND_MAX_STREAMS)
    ("get", "/api/jobs/{job_id}/model"): {409, 503},  # 503: the worker making the ONNX file died
    ("get", "/api/jobs/{job_id}/script"): {409},  # a fork whose parent is gone or has another seed
    ("post", "/api/jobs/{job_id}/predict"): {400, 409, 413, 503},
    ("post", "/api/jobs/{job_id}/inside"): {400, 409, 413, 503},
}


def operation_errors(method: str, path: str, settings: Settings, has_users: bool = False) -> set[int]:
    codes = set(OPERATION_ERRORS.get((method, path), set()))
    if "{job_id}" in path:
        codes.add(404)
    if method.upper() in WRITE_METHODS:
        codes.add(403)
    if token_required(method, settings, has_users):
        codes.add(401)
    return codes


def token_required(method: str, settings: Settings, has_users: bool = False) -> bool:
    if has_users:
        return True
    if settings.api_token is None:
        return False
    return method.upper() in WRITE_METHODS or settings.auth_reads


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Replace ``app.openapi`` by one that builds the description above (once per mode: with users or not)."""
    schemas: dict[bool, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        has_users = _has_users(app)
        if has_users not in schemas:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema["components"]["schemas"]["ErrorMessage"] = ErrorMessage.model_json_schema()
            for path, operations in schema["paths"].items():
                for method, operation in operations.items():
                    for code in sorted(operation_errors(method, path, settings, has_users)):
                        operation["responses"].setdefault(str(code), _error_response(code))
                    if "security" in operation and not token_required(method, settings, has_users):
                        operation["security"].append({})  # {}: no credentials is fine too
            _predict_detail_may_be_a_message(schema)
            _job_create_by_kind(schema, settings, _devices(app))
            _parameters_without_null(schema)
            _links_from_a_created_job(schema)
            schemas[has_users] = schema
        app.openapi_schema = schemas[has_users]
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _error_response(code: int) -> dict[str, Any]:
    return {
        "description": ERROR_DESCRIPTIONS[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorMessage"}}},
    }


def _has_users(app: FastAPI) -> bool:
    engine = getattr(app.state, "engine", None)
    if engine is None:
        return False
    with Session(engine) as session:
        try:
            return crud.any_users(session)
        except OperationalError:  # before init_db made the table
            return False


def _devices(app: FastAPI) -> list[str]:
    service = getattr(app.state, "service", None)
    return list(service.executor.info().devices) if service is not None else []


def _predict_detail_may_be_a_message(schema: dict[str, Any]) -> None:
    # predict's and inside's own checks of their inputs (app/api/routes/predict.py) answer 422 with a message.
    for path, operations in schema["paths"].items():
        if path.endswith(("/predict", "/inside")) and "422" in operations.get("post", {}).get("responses", {}):
            content = operations["post"]["responses"]["422"]["content"]["application/json"]
            content["schema"] = {
                "anyOf": [
                    {"$ref": "#/components/schemas/HTTPValidationError"},
                    {"$ref": "#/components/schemas/ErrorMessage"},
                ]
            }


def _job_create_by_kind(schema: dict[str, Any], settings: Settings, devices: list[str]) -> None:
    """JobCreate as one schema per kind: ``kind`` a constant, ``params`` that kind's model.

    ``kind`` stays a plain string in the model (app/models.py), so that an unknown one gets the
    service's message naming the allowed kinds; the description lists them.
    """
    schemas = schema["components"]["schemas"]
    base = schemas.get("JobCreate")
    if base is None:
        return
    mapping = {}
    for kind, spec in EXPERIMENTS.items():
        params_name = spec.params_model.__name__
        params = schemas[params_name] = params_schema(spec.params_model, settings)
        # A default over this server's limit (epochs 5000, PLAYGROUND_MAX_EPOCHS=50) is refused:
        # on this server the field must be given.
        over = [
            name
            for name, prop in params["properties"].items()
            if isinstance(prop.get("default"), int | float) and prop["default"] > prop.get("maximum", float("inf"))
        ]
        if over:
            params["required"] = sorted({*params.get("required", []), *over})
        properties = {
            **base["properties"],
            "kind": {**base["properties"]["kind"], "const": kind},
            "params": {
                "$ref": f"#/components/schemas/{params_name}",
                "description": base["properties"]["params"]["description"],
            },
        }
        if devices:
            properties["device"] = {**properties["device"], "enum": ["auto", *devices]}
        name = f"JobCreate{kind.capitalize()}"
        required = [*base.get("required", []), *(["params"] if over else [])]
        schemas[name] = {**base, "title": name, "properties": properties, "required": required}
        mapping[kind] = f"#/components/schemas/{name}"
    schemas["JobCreate"] = {
        "title": "JobCreate",
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "kind", "mapping": mapping},
    }


def _parameters_without_null(schema: dict[str, Any]) -> None:
    """``int | None`` parameters are documented as "integer or null"; an absent parameter is the
    None, and a header or a query string cannot hold a JSON null."""
    for operations in schema["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                options = parameter["schema"].get("anyOf")
                if options and {"type": "null"} in options:
                    rest = [option for option in options if option != {"type": "null"}]
                    del parameter["schema"]["anyOf"]
                    if len(rest) == 1:
                        parameter["schema"].update(rest[0])
                    else:
                        parameter["schema"]["anyOf"] = rest


def _links_from_a_created_job(schema: dict[str, Any]) -> None:
    """The 201 of ``POST /api/jobs`` links to every operation on the job it created (by its id)."""
    created = schema["paths"].get("/api/jobs", {}).get("post", {}).get("responses", {}).get("201")
    if created is None:
        return
    links = {}
    for path, operations in schema["paths"].items():
        if "{job_id}" in path:
            for method, operation in operations.items():
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": {"job_id": "$response.body#/id"},
                }
    created["links"] = links
