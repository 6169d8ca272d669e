"""``playground serve``: the app under uvicorn, with a shutdown that does not hang on open streams."""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
from types import FrameType

import asyncio
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings, get_settings
from app.main import create_app

# Seconds uvicorn waits for open connections before it cancels them. The SSE streams are ended
# before that (see PlaygroundServer.shutdown); this bounds a slow download or a stuck request.
GRACEFUL_SHUTDOWN_S = 3
# Each connection's kernel send buffer (Linux doubles it): see HeaderTimeoutProtocol.connection_made.
SEND_BUFFER_BYTES = 128 * 1024


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request line and headers take longer
    than ``header_timeout`` seconds (uvicorn has no such limit: a client that sends half a request
    line holds its connection forever, and a few hundred of them hold the server's connections).

    The clock starts when the connection opens and again at the first byte of each later request
    on it; it stops when the headers are complete. Reading a slow body is the app's business, and
    an idle connection between requests is closed by uvicorn's keep-alive timeout.
    """

    header_timeout: float = 10.0  # set per server by header_timeout_protocol()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A client that stops reading (an event stream of a long history left open in a background
        # tab) fills its socket's kernel buffer before the server feels any back-pressure; Linux
        # grows that buffer by itself to megabytes, which the server encodes and the kernel keeps,
        # per client. A fixed buffer bounds it (plenty for this app's answers on any link).
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        self._start_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:  # the first request's clock runs from connection_made
            self._start_header_timer()

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _start_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_timed_out)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.logger.debug("Closed a connection that sent no complete request headers in %s s.", self.header_timeout)
            self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutProtocol]:
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": seconds})


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
        # No single client may hold the server's connections (PLAYGROUND_HEADER_TIMEOUT and co.).
        http=header_timeout_protocol(settings.header_timeout),
        timeout_keep_alive=settings.keep_alive_timeout,
        limit_concurrency=settings.max_connections,
    )
    server = PlaygroundServer(config, app)
    server.run()
    # uvicorn returns without raising when the lifespan startup fails (e.g. no worker came up).
    return 0 if server.started else 1
