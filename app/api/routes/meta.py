"""Health and the experiment kinds."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app import __version__
from app.api.deps import ReadAccess, ServiceDep, SettingsDep
from app.config import Settings
from app.experiments.registry import EXPERIMENTS

router = APIRouter(tags=["meta"])


class Health(BaseModel):
    status: str
    version: str
    executor: str
    devices: list[str]
    workers: int
    queued: int
    running: int
    resources: dict[str, Any]  # what the executor has: CPUs, GPUs (and nodes, on Ray)


class KindPublic(BaseModel):
    kind: str
    title: str
    description: str
    params_schema: dict[str, Any]
    defaults: dict[str, Any]
    default_data: list[list[float]] | None = Field(
        None, description="The [x, y] points a run fits when its `data` is empty (the book's); null: no such points."
    )


@router.get("/health")
def health(service: ServiceDep) -> Health:
    info = service.executor.info()
    return Health(
        status="ok",
        version=__version__,
        executor=info.executor,
        devices=info.devices,
        workers=info.workers,
        queued=info.queued,
        running=info.running,
        resources=info.resources,
    )


def params_schema(model: type[BaseModel], settings: Settings) -> dict[str, Any]:
    """The kind's JSON Schema, with this server's limits where they are tighter than the model's."""
    schema = copy.deepcopy(model.model_json_schema())
    props = schema.get("properties", {})
    if "epochs" in props:
        props["epochs"]["maximum"] = min(props["epochs"].get("maximum", settings.max_epochs), settings.max_epochs)
    if "data" in props:
        for option in props["data"].get("anyOf", [props["data"]]):
            if option.get("type") == "array":
                option["maxItems"] = min(option.get("maxItems", settings.max_data_points), settings.max_data_points)
    return schema


@router.get("/kinds", dependencies=[ReadAccess])
def kinds(settings: SettingsDep) -> list[KindPublic]:
    return [
        KindPublic(
            kind=spec.kind,
            title=spec.title,
            description=spec.description,
            params_schema=params_schema(spec.params_model, settings),
            defaults=spec.defaults(),
            default_data=spec.default_data,
        )
        for spec in EXPERIMENTS.values()
    ]
