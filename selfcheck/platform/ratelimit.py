"""Rate limits shared by every app instance: fixed-window counters in the database.

No process memory: several gunicorn workers or servers behind a load balancer count in the
same table (rate_limit_hit). One row per (key, window start); a hit is one atomic
`INSERT … ON CONFLICT DO UPDATE SET count = count + 1 RETURNING count`, which SQLite (3.35+)
and PostgreSQL both run without a race. The key is an HMAC of the limit's name and its
subject (an IP address, an e-mail) under the app's secret key: the table never holds an
address or an e-mail, and the hashes cannot be reversed by trying every IPv4 address.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from selfcheck.platform import db
from selfcheck.platform.models import RateLimitHit, utcnow


@dataclass(frozen=True)
class Limit:
    """At most `attempts` hits per `window` seconds for one subject."""

    name: str
    attempts: int
    window: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    count: int
    retry_after: int  # seconds until the window ends (0 when allowed)


class RateLimited(Exception):
    """Too many attempts: the caller answers 429 with Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited, retry after {retry_after} s")
        self.retry_after = max(1, retry_after)


def key_for(secret: str | bytes, limit: Limit, subject: str) -> str:
    raw = secret.encode() if isinstance(secret, str) else secret
    message = f"{limit.name}\x00{subject}".encode()
    return hmac.new(raw, message, hashlib.sha256).hexdigest()


def window_start(limit: Limit, now: datetime) -> datetime:
    """Start of the fixed window holding `now` (aligned on the epoch, in UTC)."""
    seconds = math.floor(now.timestamp())
    return datetime.fromtimestamp(seconds - seconds % limit.window, UTC)


def _retry_after(limit: Limit, start: datetime, now: datetime) -> int:
    return max(1, math.ceil((start + timedelta(seconds=limit.window) - now).total_seconds()))


def hit(
    session: Session,
    secret: str | bytes,
    limit: Limit,
    subject: str,
    now: datetime | None = None,
) -> Decision:
    """Count one attempt, committed at once, and say whether it is within the limit.

    The one exception to "operations never commit" (see `platform.db.unit_of_work`): a
    counter must persist even when the request that counted it fails or rolls back (a wrong
    password is the failure being counted), so the hit runs in a short transaction of its
    own, on a connection of its own from the same engine (one autocommitted statement);
    `session`'s own work is neither committed nor rolled back by it.
    """
    now = now or utcnow()
    start = window_start(limit, now)
    key = key_for(secret, limit, subject)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(RateLimitHit)
        .values(key=key, window_start=start, count=1)
        .on_conflict_do_update(
            index_elements=[RateLimitHit.key, RateLimitHit.window_start],
            set_={"count": RateLimitHit.count + 1},
        )
        .returning(RateLimitHit.count)
    )
    # One statement, atomic by itself: run in autocommit on a connection of its own, so no
    # BEGIN and COMMIT round trips on PostgreSQL (2 instead of 4 with the pool's ping); in the
    # app on PostgreSQL a connection of its reader (`db.autocommit_connection`).
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    with db.autocommit_connection(engine) as connection:
        count = int(connection.execute(statement).scalar_one())
    allowed = count <= limit.attempts
    return Decision(allowed, count, 0 if allowed else _retry_after(limit, start, now))


def hit_all(
    session: Session,
    secret: str | bytes,
    counters: Sequence[tuple[Limit, str]],
    now: datetime | None = None,
) -> list[Decision]:
    """`hit` for several (limit, subject) at once, in one statement: one round trip, where
    each `hit` is one (a start of a questionnaire counts two limits: issue 18). The same
    atomic upsert, one row per counter (a counter named twice counts twice); the decisions
    in the order of `counters`."""
    if not counters:
        return []
    now = now or utcnow()
    rows: dict[tuple[str, datetime], dict[str, object]] = {}
    keys: list[tuple[str, datetime]] = []
    for limit, subject in counters:
        at = (key_for(secret, limit, subject), window_start(limit, now))
        keys.append(at)
        found = rows.setdefault(at, {"key": at[0], "window_start": at[1], "count": 0})
        found["count"] = cast(int, found["count"]) + 1
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    with db.autocommit_connection(engine) as connection:
        # Several rows with RETURNING: SQLAlchemy's "insertmanyvalues" sends them as one
        # INSERT … VALUES (…), (…) (and the one-row statement is cached, where a statement
        # built with `.values([...])` is compiled again each time).
        returned = connection.execute(_upsert(bind.dialect.name), list(rows.values())).all()
    counts = {(key, _utc(start)): int(count) for key, start, count in returned}
    decisions = []
    for (limit, _subject), at in zip(counters, keys, strict=True):
        count = counts[at]
        allowed = count <= limit.attempts
        decisions.append(
            Decision(allowed, count, 0 if allowed else _retry_after(limit, at[1], now))
        )
    return decisions


@functools.cache
def _upsert(dialect: str) -> ReturningInsert[str, datetime, int]:
    """`hit_all`'s statement: add each row's count to its counter, return the counts."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    upsert = insert(RateLimitHit)
    return upsert.on_conflict_do_update(
        index_elements=[RateLimitHit.key, RateLimitHit.window_start],
        set_={"count": RateLimitHit.count + upsert.excluded.count},
    ).returning(RateLimitHit.key, RateLimitHit.window_start, RateLimitHit.count)


def _utc(moment: datetime) -> datetime:
    """A window start as `window_start` gives it (SQLite returns it without its zone)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def refund(
    session: Session,
    secret: str | bytes,
    limit: Limit,
    subject: str,
    now: datetime,
) -> None:
    """Take back one attempt counted by `hit` at `now` (a reserved attempt that turned out
    not to count, such as a valid code). In a short transaction of its own, as `hit`."""
    statement = (
        update(RateLimitHit)
        .where(
            RateLimitHit.key == key_for(secret, limit, subject),
            RateLimitHit.window_start == window_start(limit, now),
            RateLimitHit.count > 0,
        )
        .values(count=RateLimitHit.count - 1)
    )
    with Session(session.get_bind()) as own, own.begin():
        own.execute(statement)


def peek(
    session: Session,
    secret: str | bytes,
    limit: Limit,
    subject: str,
    now: datetime | None = None,
) -> Decision:
    """Whether one more attempt would be allowed, without counting one."""
    now = now or utcnow()
    start = window_start(limit, now)
    count = session.scalar(
        select(RateLimitHit.count).where(
            RateLimitHit.key == key_for(secret, limit, subject),
            RateLimitHit.window_start == start,
        )
    )
    used = int(count or 0)
    allowed = used < limit.attempts
    return Decision(allowed, used, 0 if allowed else _retry_after(limit, start, now))


def prune(session: Session, before: datetime) -> int:
    """Delete the counters of windows that started before `before` (housekeeping; the caller
    commits)."""
    result = session.execute(delete(RateLimitHit).where(RateLimitHit.window_start < before))
    return int(getattr(result, "rowcount", 0) or 0)
