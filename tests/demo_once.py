"""Demo people written once per test process on SQLite, then copied into each test's database.

Several view and export tests start from the same demo people (`demo.generate_demo` with the
same number and seed, and the same moves after it): writing them through the real journey
costs seconds a test (60 people: 4-14 s of setup under the shared machine's load). On SQLite,
the first test of a process writes them for real and keeps a copy of the whole database (in
memory, through SQLite's backup API); the next tests asking for the same people get that copy
written into their own, still empty, database the same way. Every test still gets its own
database, with the same rows the writes would give (the demo's seed fixes them; only the
random person codes repeat from one test to the next). On PostgreSQL the same: the first test
of a process writes them for real, then every table of the models is read out with
`COPY (SELECT … ORDER BY <primary key>) TO STDOUT (FORMAT BINARY)` (parents before children,
rows in key order, generated columns left out) and the sequences' values kept; the next tests
get the rows back with `COPY … FROM STDIN` into their still empty tables and the sequences set
to the same values, so the next ids drawn are those the writes would have left. The test's
clean-up (`_truncate_all` in tests/conftest.py) sees those tables and sequences as written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from selfcheck.platform.models import Base, Beneficiary, StaffUser, Structure

_COPIES: dict[tuple[object, ...], sqlite3.Connection] = {}


@dataclass(frozen=True)
class _PostgresCopy:
    tables: list[tuple[str, str, bytes]]  # (table, its column list, binary COPY data)
    sequences: list[tuple[str, int]]  # (qualified sequence name, last value)


_POSTGRES_COPIES: dict[tuple[object, ...], _PostgresCopy] = {}

_COLUMNS = text(
    """
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
      FROM pg_attribute
     WHERE attrelid = CAST(:table AS regclass) AND attnum > 0 AND NOT attisdropped
       AND attgenerated = ''
    """
)
_KEY = text(
    """
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY array_position(i.indkey, a.attnum))
      FROM pg_index i
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
     WHERE i.indrelid = CAST(:table AS regclass) AND i.indisprimary
    """
)
# The sequences of the models' tables only: a test's database may hold other tables (the
# job queue's `huey_task`, which a real worker on PostgreSQL creates in it), which the next
# test's database does not have.
_SEQUENCES = text(
    """
    SELECT quote_ident(q.schemaname) || '.' || quote_ident(q.sequencename), q.last_value
      FROM pg_sequences q
      JOIN pg_class s
        ON s.relname = q.sequencename AND s.relnamespace = current_schema()::regnamespace
      JOIN pg_depend d
        ON d.objid = s.oid AND d.classid = 'pg_class'::regclass
       AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
      JOIN pg_class t ON t.oid = d.refobjid
     WHERE q.schemaname = current_schema() AND q.last_value IS NOT NULL
       AND t.relname = ANY(:names)
    """
)


def _postgres_copy(engine: Engine) -> _PostgresCopy:
    tables: list[tuple[str, str, bytes]] = []
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        for table in Base.metadata.sorted_tables:  # parents first
            name = f'"{table.name}"'
            if not connection.scalar(text(f"SELECT EXISTS (SELECT 1 FROM {name})")):
                continue
            columns = connection.scalar(_COLUMNS, {"table": name})
            key = connection.scalar(_KEY, {"table": name}) or columns
            data = bytearray()
            with raw.cursor() as cursor:  # type: ignore[attr-defined]
                query = (
                    f"COPY (SELECT {columns} FROM {name} ORDER BY {key}) TO STDOUT (FORMAT BINARY)"
                )
                with cursor.copy(query) as copy:
                    for block in copy:
                        data += block
            tables.append((name, columns, bytes(data)))
        names = [table.name for table in Base.metadata.sorted_tables]
        sequences = [(str(n), int(v)) for n, v in connection.execute(_SEQUENCES, {"names": names})]
    return _PostgresCopy(tables, sequences)


def _postgres_restore(engine: Engine, saved: _PostgresCopy) -> None:
    """The database as the copy has it, as SQLite's backup API leaves it: a table holding rows
    the copy does not (a row a fixture wrote) is emptied first."""
    with engine.begin() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        held = [
            f'"{table.name}"'
            for table in Base.metadata.sorted_tables
            if connection.scalar(text(f'SELECT EXISTS (SELECT 1 FROM "{table.name}")'))
        ]
        if held:
            connection.execute(text(f"TRUNCATE {', '.join(held)} RESTART IDENTITY CASCADE"))
        with raw.cursor() as cursor:  # type: ignore[attr-defined]
            for name, columns, data in saved.tables:
                with cursor.copy(f"COPY {name} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(data)
        for sequence, value in saved.sequences:
            connection.execute(
                text("SELECT setval(CAST(:sequence AS regclass), :value, true)"),
                {"sequence": sequence, "value": value},
            )


def _engine(db: Session) -> Engine:
    bind = db.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def _empty(db: Session) -> bool:
    return not any(
        db.scalar(select(func.count()).select_from(model))
        for model in (Beneficiary, Structure, StaffUser)
    )


def write_once(db: Session, key: tuple[object, ...], write: Callable[[], None]) -> None:
    """Run `write` (which commits), or restore what it wrote the first time for `key`.

    Only into an empty database (no structure, person or account yet): anything else is
    written for real.
    """
    engine = _engine(db)
    if engine.dialect.name not in ("sqlite", "postgresql") or not _empty(db):
        write()
        return
    db.commit()  # no read transaction left open on the session's connection
    if engine.dialect.name == "postgresql":
        saved = _POSTGRES_COPIES.get(key)
        if saved is None:
            write()
            _POSTGRES_COPIES[key] = _postgres_copy(engine)
        else:
            _postgres_restore(engine, saved)
            db.expire_all()
        return
    copy = _COPIES.get(key)
    if copy is None:
        write()
        copy = sqlite3.connect(":memory:")
        with engine.connect() as connection:
            source = connection.connection.dbapi_connection
            assert isinstance(source, sqlite3.Connection)
            source.backup(copy)
        _COPIES[key] = copy
        return
    with engine.connect() as connection:
        target = connection.connection.dbapi_connection
        assert isinstance(target, sqlite3.Connection)
        copy.backup(target)
    db.expire_all()
