"""The embedded SQLite database: engine, pragmas, tables.

Only the web process writes, and only from its writer thread (``app.jobs.writer``); routes and
streams read from the thread pool. WAL mode lets those reads run while a write is in progress.
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
    _add_missing_columns(engine)


def _add_missing_columns(engine: Engine) -> None:
    """A database made by an older version: add the columns (and indexes) added since.

    Only additions happen between versions so far, and every added column may be null or has a
    server default, so ``ALTER TABLE ... ADD COLUMN`` is the whole migration.
    """
    with engine.begin() as conn:
        for table in SQLModel.metadata.sorted_tables:
            have = {row[1] for row in conn.exec_driver_sql(f"PRAGMA table_info({table.name})")}
            for column in table.columns:
                if column.name in have:
                    continue
                ddl = f"ALTER TABLE {table.name} ADD COLUMN {column.name} {column.type.compile(engine.dialect)}"
                if column.server_default is not None:
                    ddl += f" DEFAULT '{column.server_default.arg}'"
                conn.exec_driver_sql(ddl)
            for index in table.indexes:
                index.create(conn, checkfirst=True)


def iter_session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session
