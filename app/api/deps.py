"""Dependencies as named ``Annotated`` aliases (tests swap them with ``dependency_overrides``)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
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

# ----------------------------------------------------------------------------------------------
# The API token

_bearer = HTTPBearer(auto_error=False, description="PLAYGROUND_API_TOKEN, when the server has one.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _check_token(settings: Settings, credentials: HTTPAuthorizationCredentials | None) -> None:
    if settings.api_token is None:
        return
    expected = settings.api_token.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials is not None else b""
    # compare_digest takes as long whatever the first differing byte: no timing oracle.
    if credentials is None or not secrets.compare_digest(given, expected):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="This server needs 'Authorization: Bearer <token>' (PLAYGROUND_API_TOKEN) for this request.",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_token(settings: SettingsDep, credentials: Credentials) -> None:
    """For every request that changes something: create, cancel, delete, predict."""
    _check_token(settings, credentials)


def require_read_token(settings: SettingsDep, credentials: Credentials) -> None:
    """For reads: only when PLAYGROUND_AUTH_READS is on."""
    if settings.auth_reads:
        _check_token(settings, credentials)


WriteAccess = Depends(require_token)
ReadAccess = Depends(require_read_token)
