"""Engine and per-request session, bound to the app in `init_app` (no module-level state)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

EXTENSION_KEY = "selfcheck.platform.db"


class Database:
    """Owns the engine and the session factory of one app (or one CLI/test run)."""

    def __init__(
        self,
        url: str,
        sqlite_synchronous: str = "NORMAL",
        *,
        pre_ping: bool = True,
        synchronous_commit: str = "on",
    ) -> None:
        self.url = url
        self.engine = make_engine(
            url, sqlite_synchronous, pre_ping=pre_ping, synchronous_commit=synchronous_commit
        )
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Reads outside any unit of work (`read_connection`): on PostgreSQL without a
        # transaction, so no BEGIN and ROLLBACK around a single SELECT. The same pool; psycopg
        # switches autocommit on the client side, no round trip.
        self.reader = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.engine.dialect.name == "postgresql"
            else self.engine
        )

    def session(self) -> Session:
        return self.sessions()


def make_engine(
    url: str,
    sqlite_synchronous: str = "NORMAL",
    *,
    pre_ping: bool = True,
    synchronous_commit: str = "on",
) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and synchronous_commit != "on":
        # Sent with the connection's start-up packet: no round trip of its own.
        options = f"-c synchronous_commit={synchronous_commit}"
        return create_engine(url, pool_pre_ping=pre_ping, connect_args={"options": options})
    if parsed.get_backend_name() != "sqlite":
        # pre_ping: a connection closed by a PostgreSQL restart is replaced before use, at
        # the cost of one round trip per checkout (SELFCHECK_POSTGRES_PRE_PING=0 saves it;
        # then the first request of each worker after a restart fails, see docs/performance.md).
        return create_engine(url, pool_pre_ping=pre_ping)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Readable by its owner only (SQLite gives its -wal and -shm files the same mode),
        # also when an older version made it world-readable.
        os.close(os.open(parsed.database, os.O_CREAT | os.O_WRONLY, 0o600))
        with contextlib.suppress(PermissionError):
            os.chmod(parsed.database, 0o600)
    engine = create_engine(url, connect_args={"timeout": 15})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers work while one writer commits; NORMAL sync in WAL mode survives an
        # application crash (a committed transaction is in the WAL) and only risks the last
        # transactions on power loss. SELFCHECK_SQLITE_SYNCHRONOUS=FULL trades speed for that.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={sqlite_synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        # Deleted rows are overwritten with zeros, not left in free pages: an erased person
        # is not in the file, nor in a backup copied from it afterwards.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "savepoint")
    def _begin_before_savepoint(connection: Connection, _name: str | None) -> None:
        # pysqlite opens its transaction only before an INSERT/UPDATE/DELETE: a SAVEPOINT sent
        # first would open one in SQLite itself, and releasing it would commit everything.
        # Opening the transaction here keeps a savepoint nested in the request's unit of work.
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection is not None and not dbapi_connection.in_transaction:
            dbapi_connection.execute("BEGIN")

    return engine


def init_app(app: Flask, database: Database) -> None:
    app.extensions[EXTENSION_KEY] = database
    app.teardown_appcontext(_close_session)


def get_db() -> Database:
    database: Database = current_app.extensions[EXTENSION_KEY]
    return database


def get_session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = get_db().session()
    session: Session = g.db_session
    return session


@contextmanager
def read_connection() -> Iterator[Connection]:
    """A pooled connection for a request that only reads, without the ORM session.

    For the hot read-only pages (a question page: one SELECT). No ORM session is built and
    closed, and on PostgreSQL the SELECT runs without a transaction of its own: each
    statement then sees what was committed before it began, as it would inside the request's
    READ COMMITTED transaction, and BEGIN and ROLLBACK (two of a question page's four round
    trips) are not sent. Nothing may be written through it; writes go through `get_session`.
    """
    with get_db().reader.connect() as connection:
        yield connection


@contextmanager
def unit_of_work(session: Session) -> Iterator[Session]:
    """One unit of work: commit when the block ends, roll back if it raises.

    Operations (the `operations` modules, auth, structures, privacy…) never commit: they add,
    flush and lock, and the view or CLI command that called them commits once, here or with
    `commit_or_rollback`, so that a request's changes are saved together or not at all.
    Exceptions, each argued where it is: the rate-limit counters (`platform.ratelimit.hit`,
    their own short transaction) and the migrations (`platform.migrate`).

    Operations that may meet a unique conflict (a code drawn twice, a form opened twice at
    once) insert under a savepoint (`session.begin_nested()`), so that a conflict undoes their
    rows only (on SQLite too: see `_begin_before_savepoint` in `make_engine`).
    """
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    session.commit()


def no_flush_wait(session: Session) -> None:
    """This transaction's commit need not wait for PostgreSQL to flush its WAL to disk.

    For writes a person can simply make again, such as one page of answers while the
    questionnaire is still open (the sending of the whole questionnaire, codes, erasures and
    staff work keep waiting). A crash of the database server itself (not of the app) may then
    lose the last fraction of a second of such saves (at most three times
    `wal_writer_delay`, 0.6 s by default), never corrupt anything: the counterpart of SQLite's
    `synchronous=NORMAL`, which the app uses. The flush waits for the disk: 3-8 ms per commit
    on the benchmark machine (pg_test_fsync), longer when other work writes (docs/performance.md).
    `SET LOCAL` ends with the transaction; SQLite: nothing to do.
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit TO off"))


def commit_or_rollback(session: Session) -> None:
    """End the request's unit of work: commit it, or roll it back if the commit fails."""
    try:
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()
