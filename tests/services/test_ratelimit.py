"""Rate-limit counters in the database: fixed windows, atomic hits, hashed keys, pruning."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from selfcheck.platform import ratelimit
from selfcheck.platform.db import Database
from selfcheck.platform.models import RateLimitHit

SECRET = "test secret"
LIMIT = ratelimit.Limit("test", 3, 600)
NOW = datetime(2026, 11, 23, 10, 4, 30, tzinfo=UTC)  # window 10:00:00 - 10:10:00


def test_within_the_limit_then_refused_until_the_window_ends(db_session: Session) -> None:
    decisions = [ratelimit.hit(db_session, SECRET, LIMIT, "203.0.113.7", NOW) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.count for d in decisions] == [1, 2, 3, 4]
    assert decisions[-1].retry_after == 330  # 10:10:00 - 10:04:30
    assert decisions[0].retry_after == 0
    # The next window starts from zero.
    later = NOW + timedelta(seconds=330)
    assert ratelimit.hit(db_session, SECRET, LIMIT, "203.0.113.7", later).count == 1


def test_subjects_and_limits_are_counted_apart(db_session: Session) -> None:
    other = ratelimit.Limit("other", 3, 600)
    for _ in range(3):
        ratelimit.hit(db_session, SECRET, LIMIT, "203.0.113.7", NOW)
    assert ratelimit.hit(db_session, SECRET, LIMIT, "203.0.113.8", NOW).count == 1
    assert ratelimit.hit(db_session, SECRET, other, "203.0.113.7", NOW).count == 1


def test_peek_does_not_count(db_session: Session) -> None:
    assert ratelimit.peek(db_session, SECRET, LIMIT, "x", NOW).allowed
    for _ in range(3):
        ratelimit.hit(db_session, SECRET, LIMIT, "x", NOW)
    refused = ratelimit.peek(db_session, SECRET, LIMIT, "x", NOW)
    assert not refused.allowed and refused.count == 3 and refused.retry_after == 330
    assert ratelimit.peek(db_session, SECRET, LIMIT, "x", NOW).count == 3


def test_the_table_holds_neither_address_nor_email(db_session: Session) -> None:
    ratelimit.hit(db_session, SECRET, LIMIT, "203.0.113.7", NOW)
    ratelimit.hit(db_session, SECRET, LIMIT, "nadia@example.org", NOW)
    keys = list(db_session.scalars(select(RateLimitHit.key)))
    assert len(keys) == 2
    assert all(len(key) == 64 and "203" not in key and "@" not in key for key in keys)
    # Keyed with the secret: another instance's secret gives other keys (no rainbow table).
    assert ratelimit.key_for("a", LIMIT, "203.0.113.7") != ratelimit.key_for(
        "b", LIMIT, "203.0.113.7"
    )


def test_window_start_is_aligned() -> None:
    assert ratelimit.window_start(LIMIT, NOW) == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    hour = ratelimit.Limit("h", 1, 3600)
    assert ratelimit.window_start(hour, NOW) == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_concurrent_hits_are_all_counted(database: Database) -> None:
    """Several workers hitting the same key at once: no lost update, no duplicate-key error."""
    threads, errors = 8, []
    per_thread = 5

    def work() -> None:
        try:
            with database.session() as session:
                for _ in range(per_thread):
                    ratelimit.hit(session, SECRET, LIMIT, "shared", NOW)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    with database.session() as session:
        final = ratelimit.peek(session, SECRET, LIMIT, "shared", NOW)
    assert final.count == threads * per_thread


def test_prune_removes_old_windows(db_session: Session) -> None:
    ratelimit.hit(db_session, SECRET, LIMIT, "old", NOW - timedelta(days=2))
    ratelimit.hit(db_session, SECRET, LIMIT, "new", NOW)
    assert ratelimit.prune(db_session, NOW - timedelta(days=1)) == 1
    assert db_session.scalar(select(func.count()).select_from(RateLimitHit)) == 1


def test_rate_limited_asks_for_at_least_one_second() -> None:
    assert ratelimit.RateLimited(0).retry_after == 1
    assert ratelimit.RateLimited(42).retry_after == 42


def test_several_counters_in_one_statement_count_as_hits_one_by_one(
    db_session: Session, database: Database
) -> None:
    """`hit_all` (a start counts two limits in one round trip): each counter as `hit` counts
    it, in the order given, a counter named twice counted twice, windows of each limit."""
    hour = ratelimit.Limit("hour", 5, 3600)
    ratelimit.hit(db_session, SECRET, LIMIT, "a", NOW)
    ratelimit.hit(db_session, SECRET, LIMIT, "a", NOW)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", seen)
    try:
        decisions = ratelimit.hit_all(
            db_session, SECRET, [(LIMIT, "a"), (hour, "a"), (LIMIT, "b"), (LIMIT, "a")], NOW
        )
    finally:
        event.remove(database.engine, "before_cursor_execute", seen)
    assert len(statements) == 1
    assert [d.count for d in decisions] == [4, 1, 1, 4]
    assert [d.allowed for d in decisions] == [False, True, True, False]
    assert decisions[0].retry_after == 330 and decisions[1].retry_after == 0
    assert ratelimit.peek(db_session, SECRET, LIMIT, "a", NOW).count == 4
    assert ratelimit.peek(db_session, SECRET, hour, "a", NOW).count == 1
    assert ratelimit.hit_all(db_session, SECRET, [], NOW) == []
