"""Security headers on every response: Content-Security-Policy, X-Frame-Options, and two more.

The pages load everything from this server (templates/, static/): scripts from files only, no inline
``<script>`` and no inline ``<style>``. What they do need beyond ``'self'``:

- ``style-src-attr 'unsafe-inline'``: the scripts build bars and colour swatches with a ``style``
  attribute (``el("span", {style: "width:40%"})`` in static/js); attributes only, never a
  ``<style>`` element (``style-src-elem 'self'``).
- ``img-src data: blob:``: the empty icon (``<link rel="icon" href="data:,">``) and pictures made
  in the page.

``/docs`` (app/api/docs.py) has one inline script, Swagger UI's start-up, which it allows by its hash.
A response that already has a header keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def content_security_policy(script_hashes: Iterable[str] = ()) -> str:
    """The pages' policy; ``script_hashes`` (``sha256-...``) allow those inline scripts too."""
    scripts = " ".join(["'self'", *(f"'{h}'" for h in script_hashes)])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self'",
            "style-src-elem 'self'",
            "style-src-attr 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


SECURITY_HEADERS = {
    "content-security-policy": content_security_policy(),
    "x-frame-options": "DENY",  # frame-ancestors 'none' for browsers that predate CSP 2
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",  # job ids in the address stay on this server
}


class SecurityHeaders:
    """Pure ASGI middleware (a streamed answer, e.g. SSE, is passed through as it is sent)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
