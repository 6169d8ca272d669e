"""The one place that picks the executor from ``settings.executor``."""

from __future__ import annotations

from app.config import Settings
from app.jobs.executor import Executor


def make_executor(settings: Settings) -> Executor:
    # Imported lazily: a server that runs one backend never loads the other (Ray is heavy).
    if settings.executor == "ray":
        from app.jobs.ray_executor import RayExecutor

        return RayExecutor(settings)
    from app.jobs.local import LocalExecutor

    return LocalExecutor(settings)
