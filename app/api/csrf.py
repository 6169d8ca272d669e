"""Refuse requests that change something when a browser says they come from another site (CSRF).

A page on any other site can make a visitor's browser send a form POST here (and ``fetch`` with
``mode: "no-cors"`` can send a DELETE): on a server without a token, the default, nothing else would
stop it cancelling or deleting jobs; with a token, the cookie is never taken for a change, but one
check in one place is simpler to trust than a rule per route. Browsers say where a request comes from:

- ``Sec-Fetch-Site`` (Chromium, Firefox, Safari): ``same-origin`` and ``none`` (typed in the address
  bar, a bookmark) pass. ``same-site`` is refused too: it means another origin of the same site, and
  another port on 127.0.0.1 or another app under the same domain is exactly such an origin.
- ``Origin`` (every browser sends it with a cross-origin POST, and with same-origin POST, PUT, PATCH
  and DELETE): it must be this server's own ``scheme://host:port``; ``null`` (a sandboxed frame, a
  file:// page) is refused.

A client that is not a browser (curl, httpx, the CLI, a script) sends neither header and passes, as
do reads (GET, HEAD, OPTIONS), which change nothing. The refusal is a 403 that says which header
refused it.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def own_origin(scope: Scope, headers: Headers) -> str:
    """This request's own origin as a browser writes it: ``scheme://host[:port]``, the default port left out."""
    scheme = scope.get("scheme", "http")
    host = headers.get("host")
    if not host and scope.get("server"):
        server_host, server_port = scope["server"]
        host = f"{server_host}:{server_port}" if server_port else server_host
    return normalize_origin(f"{scheme}://{host or ''}")


def normalize_origin(origin: str) -> str:
    """Lower case, without the scheme's default port: ``http://Host:80`` is ``http://host``."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:  # not an origin at all: it matches nothing
        return origin
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS.get(parts.scheme):
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def cross_site_reason(scope: Scope) -> str | None:
    """Why this request must be refused, or None when it may go on."""
    if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
        return None
    headers = Headers(scope=scope)
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.lower() not in ALLOWED_FETCH_SITES:
        return (
            f"Refused a cross-site {scope['method']}: the browser says it comes from another site "
            f"(Sec-Fetch-Site: {fetch_site}). Changes are accepted from this server's own pages "
            "and from clients that are not browsers."
        )
    origin = headers.get("origin")
    if origin is not None:
        expected = own_origin(scope, headers)
        if normalize_origin(origin) != expected:
            return (
                f"Refused a cross-site {scope['method']}: it comes from a page of {origin!r}, not of this "
                f"server ({expected!r}). Changes are accepted from this server's own pages and from "
                "clients that are not browsers."
            )
    return None


class CrossSiteWriteGuard:
    """Pure ASGI middleware: 403 for a state-changing request that a browser says is cross-site."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reason = cross_site_reason(scope) if scope["type"] == "http" else None
        if reason is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": reason}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
