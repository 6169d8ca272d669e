"""Collects the routers under /api."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.routes import (
    compare,
    events,
    export,
    jobs,
    lessons,
    meta,
    predict,
    server_events,
    snapshots,
)
from app.config import Settings


def build_api_router(settings: Settings) -> APIRouter:
    api_router = APIRouter()
    api_router.include_router(meta.router)
    api_router.include_router(jobs.router)
    api_router.include_router(events.router)
    api_router.include_router(server_events.router)
    api_router.include_router(export.router)
    api_router.include_router(snapshots.router)
    api_router.include_router(compare.router)
    api_router.include_router(lessons.router)
    # The upload limit is a setting, so this router's body limit is set when the app is built.
    api_router.include_router(predict.router, max_body_size=settings.max_upload_bytes + predict.MULTIPART_SLACK)
    return api_router
