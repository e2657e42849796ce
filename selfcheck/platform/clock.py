"""The one clock of the application, injectable so that tests run at a fixed time.

Every "now" of the application goes through `now()` (models.utcnow calls it): the journey's
timestamps, the follow-up's opening date, the due lists. Production uses the system clock;
a test replaces it with `use(FixedClock(...))` (or the `fixed` context manager) and moves it
forward with `advance`, so a journey at 0, at the end and 3 months later runs in a second.

The local calendar (which day it is for the person) is the application's time zone,
`SELFCHECK_TIMEZONE` (Europe/Paris by default): a follow-up opens at local midnight.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stays where it is put (tests): `advance` moves it on."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a fixed clock needs a timezone-aware time")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a fixed clock needs a timezone-aware time")
        self._at = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._at += delta


_clock: Clock = SystemClock()


def now() -> datetime:
    return _clock.now()


def use(clock: Clock) -> Clock:
    """Make `clock` the application's clock; returns the one it replaces."""
    global _clock
    previous, _clock = _clock, clock
    return previous


@contextmanager
def fixed(at: datetime) -> Iterator[FixedClock]:
    """A fixed clock for the duration of a `with` block (the system clock afterwards)."""
    clock = FixedClock(at)
    previous = use(clock)
    try:
        yield clock
    finally:
        use(previous)


@lru_cache(maxsize=8)
def zone_of(name: str) -> ZoneInfo:
    """The time zone called `name` (SELFCHECK_TIMEZONE, checked at start-up)."""
    return ZoneInfo(name)


DEFAULT_ZONE = "Europe/Paris"


def zone_in(config: Mapping[str, object]) -> ZoneInfo:
    """The application's time zone from its config (SELFCHECK_TIMEZONE)."""
    return zone_of(str(config.get("SELFCHECK_TIMEZONE") or DEFAULT_ZONE))
