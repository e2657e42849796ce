"""Demo people written once per test process on SQLite, then copied into each test's database.

Several view and export tests start from the same demo people (`demo.generate_demo` with the
same number and seed, and the same moves after it): writing them through the real journey
costs seconds a test (60 people: 4-14 s of setup under the shared machine's load). On SQLite,
the first test of a process writes them for real and keeps a copy of the whole database (in
memory, through SQLite's backup API); the next tests asking for the same people get that copy
written into their own, still empty, database the same way. Every test still gets its own
database, with the same rows the writes would give (the demo's seed fixes them; only the
random person codes repeat from one test to the next). On PostgreSQL the people are written
each time, as before.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from selfcheck.platform.models import Beneficiary, StaffUser, Structure

_COPIES: dict[tuple[object, ...], sqlite3.Connection] = {}


def _engine(db: Session) -> Engine:
    bind = db.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def _empty(db: Session) -> bool:
    return not any(
        db.scalar(select(func.count()).select_from(model))
        for model in (Beneficiary, Structure, StaffUser)
    )


def write_once(db: Session, key: tuple[object, ...], write: Callable[[], None]) -> None:
    """Run `write` (which commits), or on SQLite restore what it wrote the first time for `key`.

    Only into an empty database (no structure, person or account yet): anything else is
    written for real, as is everything on PostgreSQL.
    """
    engine = _engine(db)
    if engine.dialect.name != "sqlite" or not _empty(db):
        write()
        return
    db.commit()  # no read transaction left open on the session's connection
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
