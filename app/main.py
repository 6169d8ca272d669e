"""The FastAPI app: ``create_app(settings)`` and its lifespan. No torch here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import __version__
from app.api.compression import SelectiveGZip
from app.api.csrf import CrossSiteWriteGuard
from app.api.docs import mount_docs
from app.api.errors import register_error_handlers
from app.api.main import build_api_router
from app.api.openapi import install_openapi
from app.api.routes.pages import mount_pages
from app.api.security_headers import SecurityHeaders
from app.config import Settings, get_settings
from app.db import init_db, make_engine
from app.jobs.executor import Executor
from app.jobs.factory import make_executor
from app.jobs.service import JobService

log = logging.getLogger(__name__)

# JSON bodies: a [x, y] pair takes at most ~50 bytes, plus room for the rest of the request.
BYTES_PER_DATA_POINT = 64
JSON_BODY_SLACK = 1024 * 1024


def create_app(settings: Settings | None = None, executor: Executor | None = None) -> FastAPI:
    """The app with its database, executor and job service (``executor``: a test's fake)."""
    settings = settings or get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_path)
    service = JobService(settings=settings, engine=engine, executor=executor or make_executor(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Open the database, mark running jobs interrupted, start the executor, queue again what waited.
        init_db(engine)
        await service.start()
        log.info("job service ready: %s", service.executor.info())
        try:
            yield
        finally:
            await service.stop()
            engine.dispose()

    app = FastAPI(
        title="PyTorch Playground",
        version=__version__,
        description="Train the models of 'Deep Learning with PyTorch' chapters 5-7 and watch them learn.",
        lifespan=lifespan,
        max_body_size=settings.max_data_points * BYTES_PER_DATA_POINT + JSON_BODY_SLACK,
        docs_url=None,  # mount_docs: Swagger UI from static/, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.service = service
    register_error_handlers(app)
    app.include_router(build_api_router(settings), prefix="/api")
    mount_pages(app)
    mount_docs(app)
    install_openapi(app, settings)
    app.add_middleware(SelectiveGZip)  # innermost: the guard and the headers see every response
    app.add_middleware(CrossSiteWriteGuard)
    app.add_middleware(SecurityHeaders)  # the last added runs first: the guard's 403 gets the headers too
    return app
