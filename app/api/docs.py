"""``/docs``: Swagger UI from static/vendor/swagger-ui (no CDN), allowed to run by its script's hash.

FastAPI's own ``/docs`` loads Swagger UI from a CDN without an integrity hash; ReDoc is off (it would
be one more bundle to vendor for the same description).
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from app.api.security_headers import content_security_policy

SWAGGER_UI = "/static/vendor/swagger-ui"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def inline_script_hashes(html: str) -> list[str]:
    """The CSP hash (``sha256-...``) of each inline ``<script>`` of ``html``."""
    return [
        "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        for script in _INLINE_SCRIPT.findall(html)
    ]


def mount_docs(app: FastAPI) -> None:
    """Add ``/docs``; the app must be built with ``docs_url=None, redoc_url=None``."""
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} - API",
        swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
        swagger_favicon_url="data:,",  # no icon request
    )
    html = page.body.decode()
    headers = {"content-security-policy": content_security_policy(inline_script_hashes(html))}

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)
