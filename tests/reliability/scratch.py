"""Extra, empty databases beside the suite's own: a SQLite file, or a PostgreSQL schema.

The PostgreSQL variant lives in its own schema of the test database (search_path), so it
never touches the tables the session engine of tests/conftest.py works on, and CI needs no
second database.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from selfcheck.platform.db import make_engine
from tests.conftest import POSTGRES_URL


def schema_url(url: str, schema: str) -> str:
    """The URL of `url` whose connections see `schema` first (libpq `options`)."""
    return (
        make_url(url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


@contextmanager
def scratch_url(tmp_path: Path, name: str, postgres: bool | None = None) -> Iterator[str]:
    """URL of a new empty database; PostgreSQL when the suite runs on it (or `postgres`)."""
    use_postgres = POSTGRES_URL is not None if postgres is None else postgres
    if not use_postgres:
        yield f"sqlite:///{tmp_path / (name + '.db')}"
        return
    assert POSTGRES_URL is not None
    schema = f"scratch_{name.replace('-', '_')}_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        yield schema_url(POSTGRES_URL, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@contextmanager
def scratch_engine(tmp_path: Path, name: str, postgres: bool | None = None) -> Iterator[Engine]:
    with scratch_url(tmp_path, name, postgres) as url:
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
