"""The embedded SQLite database: engine, pragmas, tables.

Only the web process writes, and only from the event loop's thread (the job service); routes read
from the thread pool. WAL mode lets those reads run while a write is in progress.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, event
from sqlmodel import Session, SQLModel, create_engine

import app.models  # noqa: F401  (registers the tables on SQLModel.metadata)


def make_engine(path: Path) -> Engine:
    path.parent.mkdir(parents=True, exist_ok=True)
    # check_same_thread=False: sessions are opened on the loop thread and in the thread pool.
    # A connection per concurrent request of the thread pool (40 threads); SQLite opens them cheaply.
    engine = create_engine(
        f"sqlite:///{path}", connect_args={"check_same_thread": False}, pool_size=8, max_overflow=40
    )

    @event.listens_for(engine, "connect")
    def _set_pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across a process crash in WAL mode; only a power loss can drop the
        # last transactions, and it makes each commit an order of magnitude cheaper than FULL.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    return engine


def init_db(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine)


def iter_session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session
