"""Conditional GET for JSON answers that a page re-reads on a timer (the job list).

The answer carries an ``ETag`` (a hash of its body) and ``Cache-Control: no-cache``: the browser
keeps it and asks again with ``If-None-Match``; when nothing changed the server answers ``304 Not
Modified`` with no body, so an idle list costs a few hundred bytes a poll. The body is still built
each time (it is a few small queries); what is saved is the transfer and the client's parsing.
"""

from __future__ import annotations

import hashlib

from fastapi import Request, Response
from pydantic import BaseModel

NOT_MODIFIED_RESPONSE = {304: {"description": "Not modified: the `ETag` sent in `If-None-Match` still holds."}}


def json_or_not_modified(request: Request, model: BaseModel) -> Response:
    body = model.model_dump_json().encode()
    tag = f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
    # Weak: the same JSON is sent gzip-compressed or not (app/api/compression.py).
    headers = {"ETag": f"W/{tag}", "Cache-Control": "no-cache"}
    if tag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
