"""Users of a class: who is signed in, their tokens, and how many jobs each may have. No torch here.

A teacher adds users with ``playground users add NAME --role student|teacher``, which prints a new
random token once; the database keeps only its SHA-256 (a token is 32 random bytes, so a fast hash
is enough: there is nothing to guess from it). The server then has three modes:

- **open**: no users and no ``PLAYGROUND_API_TOKEN`` -- the embedded single-user default, as before;
- **admin**: ``PLAYGROUND_API_TOKEN`` only -- one token for changes (and reads with
  ``PLAYGROUND_AUTH_READS``); it acts as a teacher;
- **users**: at least one user -- every API request carries a user's token (or the admin token).

Who may change which run is in ``app.api.permissions``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine
from sqlmodel import Session

from app import crud
from app.errors import PlaygroundError, QueueFull
from app.models import JobStatus, User, UserRole, utcnow

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TOKEN_BYTES = 32  # secrets.token_urlsafe: 43 characters


Role = Literal["student", "teacher", "admin", "open"]


@dataclass(frozen=True)
class Principal:
    """Who makes a request: a user (``name``, ``role`` student or teacher), the admin token
    (``name`` None, ``role`` "admin"), or anyone on an open server (None, "open")."""

    name: str | None
    role: Role

    @property
    def owner(self) -> str | None:
        """What a job it creates records as its owner."""
        return self.name


OPEN = Principal(None, "open")
ADMIN = Principal(None, "admin")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserError(PlaygroundError):
    """A ``playground users`` command that cannot be done (exit status 2)."""


def authenticate(session: Session, token: str) -> User | None:
    """The user whose token this is; None for any other token."""
    digest = hash_token(token)
    user = crud.user_by_token_hash(session, token_hash=digest)
    # The lookup matched the hash already; compare_digest keeps the final check constant-time.
    if user is None or user.token_hash is None or not secrets.compare_digest(user.token_hash, digest):
        return None
    return user


# ----------------------------------------------------------------------------------------------
# What ``playground users`` does


def add_user(engine: Engine, name: str, role: UserRole) -> str:
    """Create the user; return their token (shown once: only its hash is stored)."""
    if not NAME_PATTERN.match(name):
        raise UserError(
            f"user name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    token = new_token()
    with Session(engine) as session:
        existing = crud.get_user(session, name=name)
        if existing is not None:
            if existing.removed_at is not None:
                raise UserError(
                    f"user {name!r} was removed and their runs still carry the name; choose another name"
                )
            raise UserError(f"user {name!r} exists already (role {existing.role}); remove it first to give a new token")
        crud.add_user(session, name=name, role=role, token_hash=hash_token(token))
        session.commit()
    return token


def remove_user(engine: Engine, name: str) -> None:
    """The user can no longer sign in; their runs stay, owned by the removed user."""
    with Session(engine) as session:
        user = crud.get_user(session, name=name)
        if user is None or user.removed_at is not None:
            known = [u.name for u, _ in crud.list_users(session) if u.removed_at is None]
            raise UserError(f"no user {name!r}; the users are: {', '.join(known) or '(none)'}")
        user.token_hash = None
        user.removed_at = utcnow()
        session.add(user)
        session.commit()


def list_users(engine: Engine) -> list[tuple[User, int]]:
    with Session(engine) as session:
        return crud.list_users(session)


# ----------------------------------------------------------------------------------------------
# Per-user limits (PLAYGROUND_MAX_QUEUED_PER_USER, PLAYGROUND_MAX_RUNNING_PER_USER)


class UserLimitReached(QueueFull):
    """A user with as many queued (or running) jobs as one user may have: 429, like a full queue."""

    def __init__(self, user: str, what: str, count: int, limit: int, setting: str) -> None:
        self.user = user
        self.what = what
        self.count = count
        self.limit = limit
        self.queued = count
        PlaygroundError.__init__(
            self,
            f"{user} has {count} job(s) {what}, the most one user may have ({setting}={limit}); "
            f"try again when one of them has {'started' if what == 'queued' else 'ended'}, or cancel one.",
        )


def check_user_limits(
    user: str | None, statuses: list[JobStatus], *, max_queued: int | None, max_running: int | None
) -> None:
    """Refuse one more job for ``user``, whose open jobs have ``statuses``, when it would go over a
    limit. Jobs without an owner (open or admin mode) have no limits."""
    if user is None:
        return
    counts = Counter(statuses)
    queued, running = counts[JobStatus.QUEUED], counts[JobStatus.RUNNING]
    if max_queued is not None and queued >= max_queued:
        raise UserLimitReached(user, "queued", queued, max_queued, "PLAYGROUND_MAX_QUEUED_PER_USER")
    if max_running is not None and running >= max_running:
        raise UserLimitReached(user, "running", running, max_running, "PLAYGROUND_MAX_RUNNING_PER_USER")
