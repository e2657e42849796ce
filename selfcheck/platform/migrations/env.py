"""Alembic environment: the URL comes from the caller (selfcheck db upgrade), never a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from selfcheck.platform.models import Base

config = context.config
target_metadata = Base.metadata


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through selfcheck.platform.migrate, which passes a connection"
    )
run_with(connection)
