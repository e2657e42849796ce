"""The pooled connection's test on checkout (platform/db.py `_check_on_checkout`, issue 18).

A connection that comes back from the pool within seconds is not pinged (no round trip); one
whose server ended it is replaced before use, as with `pool_pre_ping`; one idle for long is
pinged. PostgreSQL only: SQLite has no server to lose.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from selfcheck.platform import db
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.skipif(
    POSTGRES_URL is None, reason="needs SELFCHECK_TEST_DATABASE_URL (PostgreSQL)"
)


@pytest.fixture
def engine() -> Iterator[Engine]:
    assert POSTGRES_URL is not None
    made = db.make_engine(POSTGRES_URL)
    yield made
    made.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        pid: int = connection.scalar(text("SELECT pg_backend_pid()"))
    return pid


def _ping_counter(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    pings: list[object] = []
    real = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pings.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def test_a_connection_back_within_seconds_is_not_pinged(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend_pid(engine)
    pings = _ping_counter(engine, monkeypatch)
    for _ in range(3):
        assert _backend_pid(engine) == first  # the same pooled connection
    assert pings == []


def test_a_connection_idle_for_long_is_pinged(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend_pid(engine)
    pings = _ping_counter(engine, monkeypatch)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert _backend_pid(engine) == first
    assert len(pings) == 1


def test_a_connection_ended_by_the_server_is_replaced_before_use(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend_pid(engine)
    assert POSTGRES_URL is not None
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    finally:
        admin.dispose()
    # The backend says goodbye and closes its socket: wait until the pooled connection sees it
    # (a few milliseconds), as the next request after a restart of the server would.
    pooled = engine.pool._pool.queue[0].dbapi_connection  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while not db._readable(pooled) and time.monotonic() < deadline:
        time.sleep(0.01)
    pings = _ping_counter(engine, monkeypatch)
    # No request fails: the dead connection is tested, found dead and replaced.
    second = _backend_pid(engine)
    assert second != first
    assert len(pings) == 1


def test_without_pre_ping_nothing_is_tested(monkeypatch: pytest.MonkeyPatch) -> None:
    assert POSTGRES_URL is not None
    engine = db.make_engine(POSTGRES_URL, pre_ping=False)
    try:
        assert not engine.pool.dispatch.checkout
        pings = _ping_counter(engine, monkeypatch)
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
        _backend_pid(engine)
        _backend_pid(engine)
        assert pings == []
    finally:
        engine.dispose()
