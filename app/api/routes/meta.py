"""Health, who is signed in, and the experiment kinds."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app import __version__
from app.api.deps import ReadAccess, Reader, ServiceDep, SettingsDep
from app.config import Settings
from app.experiments.registry import EXPERIMENTS

router = APIRouter(tags=["meta"])


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description="`degraded`: it serves, but see `problems` (a full disk, a database that refuses writes)."
    )
    problems: list[str] = Field(default_factory=list, description="What is wrong, in words; empty when ok.")
    disk_free_mb: float | None = Field(None, description="Free space on PLAYGROUND_HOME's disk.")
    pending_writes: int = Field(0, description="Writes waiting for the database (points, status changes).")
    open_streams: int = Field(0, description="Event streams open now.")
    version: str
    executor: str
    devices: list[str]
    workers: int
    queued: int
    running: int
    resources: dict[str, Any]  # what the executor has: CPUs, GPUs (and nodes, on Ray)


class BookResultPublic(BaseModel):
    where: str = Field(description="Where in the book.")
    settings: dict[str, list[Any]] = Field(description="Parameter -> the values that count as the book's.")
    printed: dict[str, str] = Field(description="Result field -> the value as the book prints it.")
    exact: bool = Field(description="True: the same computation as the book's (false: its random draws differ).")
    tolerance_units: int = Field(description="A run matches within this many units of the last printed digit.")


class KindPublic(BaseModel):
    kind: str
    title: str
    description: str
    params_schema: dict[str, Any]
    defaults: dict[str, Any]
    default_data: list[list[float]] | None = Field(
        None, description="The [x, y] points a run fits when its `data` is empty (the book's); null: no such points."
    )
    book_results: list[BookResultPublic] = Field(
        default_factory=list, description="Results the book prints, with the settings that give them."
    )


@router.get("/health")
async def health(service: ServiceDep) -> Health:
    # async, and no database read: it answers at once even when every thread of the pool is busy
    # and the database is locked -- which is when someone asks.
    info = service.executor.info()
    problems = service.problems()
    return Health(
        status="degraded" if problems else "ok",
        problems=problems,
        disk_free_mb=service.disk_free_mb(),
        pending_writes=service.writer.pending(),
        open_streams=service.broker.open_streams,
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


class Me(BaseModel):
    name: str | None = Field(description="The signed-in user; null for the admin token or an open server.")
    role: Literal["student", "teacher", "admin", "open"] = Field(
        description=(
            "student: changes only their own runs; teacher, admin (PLAYGROUND_API_TOKEN): every run; "
            "open: a server without users or token, where anyone changes anything."
        )
    )


@router.get("/me")
def me(who: Reader) -> Me:
    """Who the request's token (header, or the pages' cookie) signs in as."""
    return Me(name=who.name, role=who.role)


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
            book_results=[BookResultPublic(**dataclasses.asdict(book)) for book in spec.book_results],
        )
        for spec in EXPERIMENTS.values()
    ]
