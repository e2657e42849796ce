"""Engine and per-request session, bound to the app in `init_app` (no module-level state)."""

from __future__ import annotations

import contextlib
import os
import re
import select
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, has_app_context
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    create_engine,
    event,
    exc,
    func,
    literal_column,
    text,
    true,
)
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
        page_saves_wait: bool = False,
    ) -> None:
        self.url = url
        # PostgreSQL: whether a page saved while the questionnaire is open waits for the disk
        # at commit like every other write (`no_flush_wait`; SELFCHECK_POSTGRES_PAGE_SAVES_WAIT).
        self.page_saves_wait = page_saves_wait
        self.engine = make_engine(
            url, sqlite_synchronous, pre_ping=pre_ping, synchronous_commit=synchronous_commit
        )
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Reads outside any unit of work (`read_connection`, `read_only_session`) and the
        # page save's one statement: on PostgreSQL without a transaction, so no BEGIN and
        # ROLLBACK around a single SELECT. An engine of its own (same URL and settings), its
        # connections in autocommit from their start and in a pool of their own: no switch of
        # the isolation level at each checkout and back at each checkin, which was 40 % of a
        # question page's read on the worker's side (issue 18, docs/performance.md, eleventh
        # pass). SQLite: the reader is the engine.
        self.reader = (
            make_engine(
                url,
                sqlite_synchronous,
                pre_ping=pre_ping,
                synchronous_commit=synchronous_commit,
                autocommit=True,
            )
            if self.engine.dialect.name == "postgresql"
            else self.engine
        )
        # Sessions of requests that only read (`read_only_session`): on the reader, so on
        # PostgreSQL without BEGIN and ROLLBACK; a write through one raises. Their own
        # engine (the reader's pool and settings) so that the SQL check sees their
        # statements only: the reader also sends the optimistic page save.
        read_only = self.reader.execution_options(selfcheck_read_only=True)
        self.read_sessions = sessionmaker(read_only, expire_on_commit=False)
        event.listen(self.read_sessions, "before_flush", _refuse_flush)
        event.listen(self.read_sessions, "do_orm_execute", _refuse_write)
        event.listen(read_only, "before_cursor_execute", _refuse_sql_write)
        # And by the database itself, for what a keyword does not show (a SELECT of a function
        # that writes, a raw cursor): set on the connection when the session takes it, reset
        # with what such a function may have set or locked when it returns to the pool.
        event.listen(read_only, "engine_connect", _hold_read_only)
        event.listen(self.reader, "checkin", _release_read_only)

    def session(self) -> Session:
        return self.sessions()

    def engines(self) -> tuple[Engine, ...]:
        """Every engine with a pool of its own: the engine, and on PostgreSQL the reader."""
        return (self.engine,) if self.reader is self.engine else (self.engine, self.reader)

    def dispose(self) -> None:
        """Close every pooled connection of every engine (`engines`)."""
        for engine in self.engines():
            engine.dispose()


class ReadOnlyError(RuntimeError):
    """A write through a session of `read_only_session`: a bug of the view that chose it."""


def _refuse_flush(_session: Session, _context: Any, _instances: Any) -> None:
    raise ReadOnlyError("a read-only request's session has changes to write")


def _refuse_write(state: Any) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlyError("a read-only request's session was given a write")


# What a read may send: a statement that begins with SELECT, WITH or VALUES (after comments
# and parentheses) and names no write nor lock anywhere (a WITH's INSERT, UPDATE, DELETE or
# MERGE; SELECT … FOR UPDATE or FOR SHARE: a lock in autocommit is taken and dropped at once,
# a sign that the view meant to write). Keywords are matched as words, so `updated_at` or
# `deleted` do not count; values are bound, not in the text.
_READ_START = re.compile(
    r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*(?:SELECT|WITH|VALUES)\b", re.I | re.S
)
_WRITE_WORD = re.compile(r"\b(?:INSERT|UPDATE|DELETE|MERGE|SHARE)\b", re.I)


def _refuse_sql_write(
    _connection: Connection,
    _cursor: Any,
    statement: str,
    _parameters: Any,
    _context: Any,
    _executemany: bool,
) -> None:
    """Every statement a read-only session sends, whatever built it (the ORM, a Core
    statement on `session.connection()`, SQL text, `exec_driver_sql`), checked as text."""
    if not _READ_START.match(statement) or _WRITE_WORD.search(statement):
        raise ReadOnlyError(f"a read-only request's session was to send: {statement[:80]!r}")


# A read-only session's connection, held read-only by the database (`_hold_read_only`):
# PostgreSQL refuses in it any write (`nextval` and `setval` included) in the transaction of
# each statement; SQLite any change to the file. Sent on the reader's connections only while
# a read-only session holds one (one round trip each way on PostgreSQL, `/done` and
# `/summary` only); the reset also ends what a session-wide function may have left on the
# connection (an advisory lock, `set_config(..., false)`) before another request gets it.
_READ_ONLY_HELD = "selfcheck.read_only_held"
_HOLD = {"postgresql": "SET default_transaction_read_only = on", "sqlite": "PRAGMA query_only = 1"}
_RELEASE = {
    "postgresql": "SELECT pg_advisory_unlock_all(); RESET ALL",
    "sqlite": "PRAGMA query_only = 0",
}


def _run(dbapi_connection: Any, statement: str) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def _hold_read_only(connection: Connection) -> None:
    fairy = connection.connection
    statement = _HOLD.get(connection.dialect.name)
    if statement is not None and not fairy.info.get(_READ_ONLY_HELD):
        fairy.info[_READ_ONLY_HELD] = True  # first: a failure below still resets at checkin
        dbapi_error = connection.dialect.loaded_dbapi.Error
        try:
            _run(fairy.dbapi_connection, statement)
        except dbapi_error as error:  # as SQLAlchemy's own (a lost server: 503, errors.py)
            raise exc.DBAPIError.instance(statement, None, error, dbapi_error) from error


def _release_read_only(dbapi_connection: Any, record: Any) -> None:
    if dbapi_connection is None or not record.info.pop(_READ_ONLY_HELD, False):
        return
    dialect = "sqlite" if _is_sqlite(dbapi_connection) else "postgresql"
    try:
        _run(dbapi_connection, _RELEASE[dialect])
    except Exception as error:  # a connection that cannot be reset is not handed on
        record.invalidate(error)


def _is_sqlite(dbapi_connection: Any) -> bool:
    import sqlite3

    return isinstance(dbapi_connection, sqlite3.Connection)


# The reader's pool (PostgreSQL). A sync gunicorn worker serves one request at a time and a
# request holds at most one reader connection at a time, so each worker keeps one reader
# connection beside its engine's one: workers x 2 connections (5 workers: 10, of PostgreSQL's
# 100 by default), plus the job workers' (docs/DEPLOYMENT.md).
READER_POOL_SIZE = 2
READER_MAX_OVERFLOW = 8


def make_engine(
    url: str,
    sqlite_synchronous: str = "NORMAL",
    *,
    pre_ping: bool = True,
    synchronous_commit: str = "on",
    autocommit: bool = False,
) -> Engine:
    """The app's engine; `autocommit=True` (PostgreSQL only): `Database.reader`'s, whose
    connections are in autocommit from their start (`isolation_level="AUTOCOMMIT"` set once
    per connection by SQLAlchemy, on the client side), in a pool of at most
    `READER_POOL_SIZE` + `READER_MAX_OVERFLOW` connections. Each is still rolled back on its
    return to the pool: outside a transaction psycopg sends nothing for it (no round trip),
    and a transaction opened by an explicit BEGIN would not be handed to the next request."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        connect_args: dict[str, Any] = {}
        if parsed.get_backend_name() == "postgresql" and synchronous_commit != "on":
            # Sent with the connection's start-up packet: no round trip of its own.
            connect_args["options"] = f"-c synchronous_commit={synchronous_commit}"
        options: dict[str, Any] = {}
        if autocommit:
            options = {
                "isolation_level": "AUTOCOMMIT",
                "pool_size": READER_POOL_SIZE,
                "max_overflow": READER_MAX_OVERFLOW,
            }
        engine = create_engine(url, connect_args=connect_args, **options)
        if pre_ping:
            # A connection closed by a database restart is replaced before use; the test
            # costs a round trip only when the connection may be dead (`_ping_if_needed`).
            # SELFCHECK_POSTGRES_PRE_PING=0: no test at all (docs/performance.md).
            _check_on_checkout(engine)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Readable by its owner only (SQLite gives its -wal and -shm files the same mode),
        # also when an older version made it world-readable. Created only when missing:
        # opening and closing an existing database file drops every POSIX lock this process
        # holds on it (SQLite's, for connections of another engine on the same file), and
        # another process closing its last connection then takes itself for the last one
        # and deletes the WAL that holds this process's commits (book20: a second app built
        # in a test process lost the rows it committed next; the job worker never saw them).
        if not os.path.exists(parsed.database):
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


# A pooled connection idle for longer than this is tested with a round trip before use.
PING_AFTER_IDLE_SECONDS = 10.0
_IDLE_SINCE = "selfcheck.idle_since"


def _check_on_checkout(engine: Engine) -> None:
    """SQLAlchemy's `pool_pre_ping`, without its round trip on every checkout.

    `pool_pre_ping` sends `SELECT 1` each time a connection leaves the pool: one round trip
    of a question page's two (issue 18). A connection in the pool is tested here only when it
    may be dead: when its socket has something to read (a server that shuts down, restarts,
    crashes or ends the session sends its goodbye or closes the socket, which makes an idle
    connection readable; a healthy idle connection has nothing to read), or when it has been
    idle for more than `PING_AFTER_IDLE_SECONDS` (a database machine that rebooted, or a
    network that dropped the connection, sends nothing). Then `SELECT 1` as before, and a
    connection that fails it is replaced, with every connection of the pool opened before
    (as `pool_pre_ping` does). Under load connections come back within milliseconds:
    one `poll()` of the socket instead of a round trip.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_needed(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None:  # just opened: nothing to test
            return
        if time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS and not _readable(
            dbapi_connection
        ):
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.InvalidatePoolError(str(error)) from error
        if not alive:
            raise exc.InvalidatePoolError("the pre-ping failed")


def _readable(dbapi_connection: Any) -> bool:
    """Whether the connection's socket has data or an end of file waiting (no I/O done)."""
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # closed, or a driver without a socket: test it
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


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


def read_only_session() -> Session:
    """The request's session, for a view that only reads through the ORM (the thank-you
    page, the summary): called first, it opens the request's session on `Database.reader`.

    On PostgreSQL its statements then run without a transaction of their own (autocommit):
    each sees what was committed before it began, as it would inside the request's READ
    COMMITTED transaction (each statement takes a new snapshot there too), so nothing a
    read-only view shows changes, and BEGIN and ROLLBACK (2 of those pages' 6 round trips)
    are not sent (issue 18, docs/performance.md part 6, eighth pass). Nothing locks, nothing
    writes: a flush with changes, or an `insert`, `update` or `delete` statement executed
    through it, raises `ReadOnlyError` (it would be committed at once, outside any unit of
    work), and so does any statement it sends that is not a plain read, however it was
    built (SQL text, a statement on its Connection: `_refuse_sql_write`, checked before it
    is sent). And the database refuses it too (`_hold_read_only`: PostgreSQL's
    `default_transaction_read_only`, SQLite's `query_only`), a raw DBAPI cursor or a SELECT of
    a function that writes included; what such a function sets or locks for the session is
    reset when the connection returns to the pool. SQLite: the reader is the engine, the
    session an ordinary one. A request that already opened its session
    keeps that one."""
    if "db_session" not in g:
        g.db_session = get_db().read_sessions()
    session: Session = g.db_session
    return session


@contextmanager
def read_connection() -> Iterator[Connection]:
    """A pooled connection for a request that only reads, without the ORM session.

    For the hot read-only pages (a question page: one SELECT). No ORM session is built and
    closed, and on PostgreSQL the SELECT runs without a transaction of its own: each
    statement then sees what was committed before it began, as it would inside the request's
    READ COMMITTED transaction, and BEGIN and ROLLBACK (two of a question page's four round
    trips) are not sent. Writes go through `get_session`, with one exception argued where it
    is: a page save on PostgreSQL, one statement committed on its own that writes only if the
    response's row is the one read (`journey.save_read_page`).
    """
    with get_db().reader.connect() as connection:
        yield connection


def autocommit_connection(engine: Engine) -> Connection:
    """A new connection of `engine` outside any transaction, for one statement committed on
    its own (the rate-limit counters: `platform.ratelimit`). Inside an app whose engine is
    `engine`, on PostgreSQL: a connection of its reader, already in autocommit, so that the
    counters neither switch a connection's isolation level there and back nor hold a second
    connection of the engine's pool beside the request's session (each sync worker keeps one
    connection of each pool: docs/DEPLOYMENT.md). Otherwise (SQLite, a CLI command or a test
    without the app) the engine's, switched to autocommit for the connection's use."""
    if has_app_context():
        database = current_app.extensions.get(EXTENSION_KEY)
        if isinstance(database, Database) and database.engine is engine:
            reader = database.reader
            if reader is not engine:
                return reader.connect()
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


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


# Responses whose row the session's transaction holds locked (SELECT … FOR UPDATE) and read
# as still in progress: (root transaction, ids), see `hold_in_progress`.
_IN_PROGRESS = "selfcheck.db.in_progress"


def hold_in_progress(session: Session, response_id: int) -> None:
    """Note that this transaction holds `response_id`'s row locked and read it in progress
    (a page save: `journey.save_page`), or created it in progress (no other transaction sees
    it before the commit). What is kept in step with every write at commit need not read
    that status again: the dashboard facts count submitted responses only
    (`evaluation/facts.py`; one round trip of a page save's, issue 18). A later change of
    the response in the transaction (an UPDATE statement, a flushed status) forgets it
    (`forget_in_progress`); the note ends with the transaction."""
    root = session.get_transaction()
    if root is None:
        return
    found = session.info.get(_IN_PROGRESS)
    if found is None or found[0] is not root:
        held: set[int] = set()
        found = session.info[_IN_PROGRESS] = (root, held)
    found[1].add(response_id)


def held_in_progress(session: Session) -> frozenset[int]:
    """The responses noted by `hold_in_progress` in the session's current transaction."""
    found = session.info.get(_IN_PROGRESS)
    if found is None or found[0] is not session.get_transaction():
        return frozenset()
    return frozenset(found[1])


def forget_in_progress(session: Session, response_ids: Iterable[int] | None = None) -> None:
    """Forget the notes of `hold_in_progress` for these responses (None: all of them)."""
    found = session.info.get(_IN_PROGRESS)
    if found is None:
        return
    if response_ids is None:
        session.info.pop(_IN_PROGRESS, None)
    else:
        found[1].difference_update(response_ids)


def no_flush_wait_column() -> ColumnElement[Any]:
    """`no_flush_wait` as a column of a query the transaction sends anyway (PostgreSQL only):
    `set_config('synchronous_commit', 'off', true)` is `SET LOCAL` as a function, evaluated
    with each row the query returns, so it costs no round trip of its own (a page save's
    state query, `journey.lock_state`: issue 18). A query that finds no row sets nothing."""
    setting: ColumnElement[str] = literal_column("'synchronous_commit'")
    value: ColumnElement[str] = literal_column("'off'")
    return func.set_config(setting, value, true()).label("no_flush_wait")


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
