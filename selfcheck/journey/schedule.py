"""When a person's follow-up opens (issue 15): pure date arithmetic, no Flask, no database.

The follow-up opens `followup_months` calendar months after the *local* day the end form
(after or retrospective) was sent, at local midnight: someone told "come back from 14 May"
finds it open at any hour of 14 May, wherever the server's clock stands. A day that the
target month lacks (31 August + 6 months) becomes that month's last day. The optional
second follow-up opens `second_followup_months` after the same day.

`now` is always passed in (platform.clock in the views), so tests use a fixed clock.
"""

from __future__ import annotations

import calendar
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from selfcheck.questionnaire.model import END_FORMS, FOLLOWUP_FORMS, FormKind

FOLLOWUP_MONTHS_RANGE = (1, 24)
SECOND_FOLLOWUP_MONTHS_RANGE = (2, 36)
# A follow-up is "overdue" this many days after it opened (the mediators' list).
OVERDUE_DAYS = 30


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the last day of that month when it has no such day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def local_day(at: datetime, zone: ZoneInfo) -> date:
    if at.tzinfo is None:  # SQLite returns naive datetimes: they are UTC
        at = at.replace(tzinfo=UTC)
    return at.astimezone(zone).date()


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of `day` in `zone`, in UTC."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Opening:
    form: FormKind
    months: int
    day: date  # the local day it opens
    at: datetime  # that day's local midnight, in UTC

    def is_open(self, now: datetime) -> bool:
        return now >= self.at


def opened_before(months: int, now: datetime, zone: ZoneInfo) -> datetime:
    """The instant such that a follow-up `months` after an end form is open at `now` exactly
    when that end form was sent before it (an SQL bound for the lists; the same calendar as
    `openings`: the latest local end day whose opening day is today or earlier, plus one day,
    at local midnight). Several end days map onto a short month's last day, hence the walk.
    """
    today = local_day(now, zone)
    day = add_months(today, -months)
    while add_months(day + timedelta(days=1), months) <= today:
        day += timedelta(days=1)
    return local_midnight(day + timedelta(days=1), zone)


def months_of(structure_months: int, second_months: int | None) -> dict[FormKind, int]:
    """The delay of each follow-up a structure runs (the second one only when set)."""
    delays = {FormKind.FOLLOWUP: structure_months}
    if second_months is not None and second_months > structure_months:
        delays[FormKind.FOLLOWUP_LATE] = second_months
    return delays


def openings(
    end_sent_at: datetime, delays: dict[FormKind, int], zone: ZoneInfo
) -> tuple[Opening, ...]:
    """When each follow-up opens, for an end form sent at `end_sent_at`."""
    end_day = local_day(end_sent_at, zone)
    result = []
    for form in FOLLOWUP_FORMS:
        if form in delays:
            day = add_months(end_day, delays[form])
            result.append(Opening(form, delays[form], day, local_midnight(day, zone)))
    return tuple(result)


class FollowupState(enum.Enum):
    NO_END = "no_end"  # no end form sent: no follow-up for this person
    WAITING = "waiting"  # the next follow-up is not open yet
    OPEN = "open"  # a follow-up is open and not sent
    DONE = "done"  # every follow-up sent (or the last one open is sent)


@dataclass(frozen=True)
class FollowupStatus:
    state: FollowupState
    form: FormKind | None = None  # the follow-up to answer (OPEN) or the next one (WAITING)
    opening: Opening | None = None


@dataclass(frozen=True)
class SentForm:
    form: FormKind
    submitted_at: datetime | None  # None: not sent yet


def end_sent_at(forms: Iterable[SentForm]) -> datetime | None:
    """When the end form was sent (the after or the retrospective form), if it was."""
    times = [f.submitted_at for f in forms if f.form in END_FORMS and f.submitted_at]
    return min(times) if times else None


def status(
    forms: Iterable[SentForm], delays: dict[FormKind, int], now: datetime, zone: ZoneInfo
) -> FollowupStatus:
    """Where a person stands with their follow-ups at `now`.

    The latest follow-up that is open and not sent is the one to answer (someone back after
    13 months answers the second one; the first then stays missed); otherwise the next one
    waits for its day.
    """
    forms = list(forms)
    ended = end_sent_at(forms)
    if ended is None:
        return FollowupStatus(FollowupState.NO_END)
    present = {f.form: f for f in forms}
    planned = openings(ended, delays, zone)
    opened = [o for o in planned if o.is_open(now)]
    if opened:
        latest = opened[-1]
        if latest.form not in present or present[latest.form].submitted_at is None:
            return FollowupStatus(FollowupState.OPEN, latest.form, latest)
    waiting = [o for o in planned if not o.is_open(now)]
    if waiting:
        return FollowupStatus(FollowupState.WAITING, waiting[0].form, waiting[0])
    return FollowupStatus(FollowupState.DONE)


def next_opening(end_sent: datetime, delays: dict[FormKind, int], zone: ZoneInfo) -> Opening | None:
    """The first follow-up of someone whose end form was sent at `end_sent` (come-back date)."""
    planned = openings(end_sent, delays, zone)
    return planned[0] if planned else None
