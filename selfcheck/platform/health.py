"""Is this instance able to serve? One round trip to the database."""

from __future__ import annotations

import logging

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)


def database_ok(engine: Engine) -> bool:
    """`SELECT 1` on a pooled connection; False (logged, without detail) on any DB error."""
    try:
        with engine.connect() as connection:
            return bool(connection.execute(text("SELECT 1")).scalar_one() == 1)
    except (SQLAlchemyError, OSError) as error:
        # The type only: a driver's message may carry the URL (user, host) of the database.
        log.warning("health check: database unreachable", extra={"error": type(error).__name__})
        return False
