"""gzip for the responses that gain from it, when the client asks (``Accept-Encoding: gzip``).

Compressed: the job list (``GET /api/jobs``: its summaries shrink about tenfold) and what is not
under ``/api/`` (the pages, their scripts and styles). Left as they are: event streams (a gzip
stream would hold events back until its buffer fills; Starlette skips ``text/event-stream`` too),
the metric histories (megabytes that stream from a cache, where compressing at level 6 would cost
the web process more CPU than the transfer saves on a local network), model files and downloads.
"""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

COMPRESSED_API_PATHS = frozenset({"/api/jobs", "/api/kinds"})
# zlib's default: about 4x faster than level 9 for a few per cent more bytes.
COMPRESS_LEVEL = 6


class SelectiveGZip:
    def __init__(self, app: ASGIApp, minimum_size: int = 1000) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=COMPRESS_LEVEL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and compressible(scope["path"]):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def compressible(path: str) -> bool:
    return path in COMPRESSED_API_PATHS or not path.startswith("/api/")
