"""``playground serve``: the app under uvicorn, with a shutdown that does not hang on open streams."""

from __future__ import annotations

import logging
import socket
import sys
from types import FrameType

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from app.config import Settings, get_settings
from app.main import create_app

# Seconds uvicorn waits for open connections before it cancels them. The SSE streams are ended
# before that (see PlaygroundServer.shutdown); this bounds a slow download or a stuck request.
GRACEFUL_SHUTDOWN_S = 3


class PlaygroundServer(uvicorn.Server):
    """uvicorn waits for open connections to finish before it runs the app's shutdown, and an SSE
    stream of a running job does not finish by itself: end the streams first."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._app.state.service.close_streams()
        await super().shutdown(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # uvicorn re-raises SIGTERM/SIGINT after its shutdown, so the process dies of the signal
        # (exit 143 in Docker). Our shutdown is complete by then -- running jobs are marked
        # interrupted, workers joined -- so `docker stop` and Ctrl-C end with status 0 instead.
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int | None = None) -> int:
    try:
        # --workers overrides PLAYGROUND_WORKERS, checked against the same bounds.
        settings = Settings(workers=workers) if workers is not None else get_settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e['input']!r})" for e in exc.errors())
        print(f"playground: error: invalid settings: {problems}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        log_level="info",
    )
    server = PlaygroundServer(config, app)
    server.run()
    # uvicorn returns without raising when the lifespan startup fails (e.g. no worker came up).
    return 0 if server.started else 1
