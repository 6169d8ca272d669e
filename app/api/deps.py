"""Dependencies as named ``Annotated`` aliases (tests swap them with ``dependency_overrides``)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from app import crud
from app.api.permissions import check_may_change
from app.config import Settings
from app.jobs.service import JobService
from app.users import ADMIN, OPEN, Principal, authenticate


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

_bearer = HTTPBearer(
    auto_error=False, description="A user's token (playground users add), or PLAYGROUND_API_TOKEN."
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

# A browser's EventSource cannot send an Authorization header, only cookies: the pages copy the
# token into this cookie (SameSite=Strict), and reads accept it. Changes never do: a cookie rides
# along with any request the browser makes, which is how cross-site request forgery works.
TOKEN_COOKIE = "playground_token"
_cookie = APIKeyCookie(
    name=TOKEN_COOKIE, auto_error=False, description="The token as a cookie (URL-encoded); reads only."
)
CookieToken = Annotated[str | None, Depends(_cookie)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def _is_admin_token(settings: Settings, given: str) -> bool:
    if settings.api_token is None:
        return False
    # compare_digest takes as long whatever the first differing byte: no timing oracle.
    return secrets.compare_digest(given.encode(), settings.api_token.get_secret_value().encode())


def identify(request: Request, settings: Settings, given_token: str | None, *, read: bool) -> Principal:
    """Who sends this request (see ``app.users``): open server, admin token, or a user's token.

    401 when the request needs a token and has none, or one that is neither the admin's nor a
    user's. Reads need one only on a server with users, or with PLAYGROUND_AUTH_READS.
    """
    # A short session of its own: a stream's dependencies live as long as the stream.
    with Session(request.app.state.engine) as session:
        has_users = crud.any_users(session)
        if given_token is not None:
            if _is_admin_token(settings, given_token):
                return ADMIN
            user = authenticate(session, given_token) if has_users else None
            if user is not None:
                return Principal(user.name, user.role.value)
    if not has_users and settings.api_token is None:
        return OPEN  # the embedded single-user default: any token or none
    if not has_users and read and not settings.auth_reads:
        return OPEN  # admin mode reads are open (a wrong token on a read changes nothing, as before)
    if has_users:
        if given_token is None:
            raise _unauthorized(
                "This server has users: send 'Authorization: Bearer <token>' with your token "
                "(a teacher gives it out: playground users add NAME)."
            )
        raise _unauthorized("That token is not one of this server's users' (wrong, or the user was removed).")
    raise _unauthorized("This server needs 'Authorization: Bearer <token>' (PLAYGROUND_API_TOKEN) for this request.")


def require_token(request: Request, settings: SettingsDep, credentials: Credentials) -> Principal:
    """For every request that changes something: create, cancel, delete, predict. The header only."""
    return identify(request, settings, credentials.credentials if credentials is not None else None, read=False)


def require_read_token(
    request: Request, settings: SettingsDep, credentials: Credentials, cookie: CookieToken
) -> Principal:
    """For reads: the header, else the cookie (an EventSource cannot send a header)."""
    if credentials is not None:
        given: str | None = credentials.credentials
    else:
        given = unquote(cookie) if cookie is not None else None
    return identify(request, settings, given, read=True)


WriteAccess = Depends(require_token)
ReadAccess = Depends(require_read_token)
Writer = Annotated[Principal, WriteAccess]  # who makes a change
Reader = Annotated[Principal, ReadAccess]  # who reads


def job_change(action: str) -> Any:
    """A dependency for a route that changes a job: 404 without the job, 403 when the signed-in
    user may not ``action`` it (``app.api.permissions``)."""

    def check(job_id: JobId, who: Writer, service: ServiceDep) -> Principal:
        check_may_change(who, service.get_job(job_id), action)
        return who

    return Depends(check)
