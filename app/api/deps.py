"""Dependencies as named ``Annotated`` aliases (tests swap them with ``dependency_overrides``)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from app.config import Settings
from app.jobs.service import JobService


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


def get_service(request: Request) -> JobService:
    return request.app.state.service


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
ServiceDep = Annotated[JobService, Depends(get_service)]

# A job id is a uuid4 in hex: nothing else reaches a query or a file name.
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The job's id (32 hex digits).")]

# The largest offset or event id a client may send. SQLite's integers are signed 64-bit, and a larger
# number fails inside the query (a 500, or a stream that dies after its 200); 2**53 - 1 is also the
# largest integer JavaScript holds exactly, and far beyond any count of jobs or events.
MAX_INDEX = 2**53 - 1

# ----------------------------------------------------------------------------------------------
# The API token

_bearer = HTTPBearer(auto_error=False, description="PLAYGROUND_API_TOKEN, when the server has one.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

# A browser's EventSource cannot send an Authorization header, only cookies: the pages copy the
# token into this cookie (SameSite=Strict), and reads accept it. Changes never do: a cookie rides
# along with any request the browser makes, which is how cross-site request forgery works.
TOKEN_COOKIE = "playground_token"
_cookie = APIKeyCookie(
    name=TOKEN_COOKIE, auto_error=False, description="The token as a cookie (URL-encoded); reads only."
)
CookieToken = Annotated[str | None, Depends(_cookie)]


def _check_token(settings: Settings, given_token: str | None) -> None:
    if settings.api_token is None:
        return
    expected = settings.api_token.get_secret_value().encode()
    given = (given_token or "").encode()
    # compare_digest takes as long whatever the first differing byte: no timing oracle.
    if given_token is None or not secrets.compare_digest(given, expected):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="This server needs 'Authorization: Bearer <token>' (PLAYGROUND_API_TOKEN) for this request.",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_token(settings: SettingsDep, credentials: Credentials) -> None:
    """For every request that changes something: create, cancel, delete, predict."""
    _check_token(settings, credentials.credentials if credentials is not None else None)


def require_read_token(settings: SettingsDep, credentials: Credentials, cookie: CookieToken) -> None:
    """For reads: only when PLAYGROUND_AUTH_READS is on; the header, else the cookie."""
    if settings.auth_reads:
        if credentials is not None:
            _check_token(settings, credentials.credentials)
        else:
            _check_token(settings, unquote(cookie) if cookie is not None else None)


WriteAccess = Depends(require_token)
ReadAccess = Depends(require_read_token)
