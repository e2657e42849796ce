"""Follow-up of a structure's beneficiaries: where each person stands, who owes an 'after' form.

Everything is computed in SQL: one grouped query gives, per person, the status, date and
channel of each form and their first and last visit; the status, the "after due" flag, the
filters, the counts and the page of rows are expressions on it, so a structure with thousands
of people never loads them all in Python.

The list's filters ("show") are a registry, `SHOW_FILTERS`: one entry per `Show` value, a
function of the per-person columns giving the SQL condition. A new state (a third time point's
"follow-up due") is one `Show` member, one entry there and one label in the view's
`SHOW_LABELS`; the counts, the select and the tests over every filter pick it up.
Deletions (a response, or a whole person) are recorded in the audit trail with the old values.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Label,
    Subquery,
    and_,
    case,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from selfcheck.journey import schedule
from selfcheck.journey.operations import answers_of, forget_reminder, lock_for_writing
from selfcheck.platform import audit
from selfcheck.platform.clock import DEFAULT_ZONE
from selfcheck.platform.models import (
    Answer,
    Beneficiary,
    Response,
    SecondEntry,
    StaffUser,
    Status,
    Structure,
    utcnow,
)
from selfcheck.privacy.operations import forget_people
from selfcheck.questionnaire.model import FOLLOWUP_FORMS, FormKind

PAGE_SIZE = 50
# The paper screens print at most this many forms in one go (services/paper.MAX_COPIES).
# Within paper.MAX_PAGES too: an after-form has 6 pages (12 in large print, which then asks to
# print in two goes).
PRINT_BATCH = 50
SUBMITTED = Status.SUBMITTED.value


class PersonStatus(enum.StrEnum):
    NOT_STARTED = "not_started"  # a code (printed on a paper form), nothing answered yet
    IN_PROGRESS = "in_progress"  # the first form (before or retrospective) is not sent yet
    BEFORE_DONE = "before_done"  # 'before' sent, 'after' not started
    AFTER_PENDING = "after_pending"  # 'before' sent, 'after' started but not sent
    COMPLETE = "complete"  # 'before' and 'after' sent
    RETROSPECTIVE = "retrospective"  # a retrospective form sent


class Show(enum.StrEnum):
    """The list's filter: everybody, a state (before only, after due), or one status."""

    ALL = "all"
    BEFORE_ONLY = "before_only"  # 'before' sent, 'after' not sent (due or not yet)
    AFTER_DUE = "after_due"
    FOLLOWUP_DUE = "followup_due"  # a follow-up months later is open and not sent (issue 15)
    NOT_STARTED = PersonStatus.NOT_STARTED.value
    IN_PROGRESS = PersonStatus.IN_PROGRESS.value
    BEFORE_DONE = PersonStatus.BEFORE_DONE.value
    AFTER_PENDING = PersonStatus.AFTER_PENDING.value
    COMPLETE = PersonStatus.COMPLETE.value
    RETROSPECTIVE = PersonStatus.RETROSPECTIVE.value

    @classmethod
    def parse(cls, raw: str | None) -> Show:
        return cls.lookup(raw) or cls.ALL

    @classmethod
    def lookup(cls, raw: str | None) -> Show | None:
        """The filter named `raw` (nothing: everybody); None for a name that is no filter."""
        try:
            return cls(raw or cls.ALL.value)
        except ValueError:
            return None


class Sort(enum.StrEnum):
    """The list's order, by date of visit (a visit: a form started or sent)."""

    RECENT = "recent"  # last visit, most recent first (the default)
    OLDEST = "oldest"  # last visit, the longest ago first: who has not come back
    FIRST_RECENT = "first_recent"  # first visit, most recent first: the newcomers
    FIRST_OLDEST = "first_oldest"  # first visit, the longest ago first

    @classmethod
    def lookup(cls, raw: str | None) -> Sort | None:
        try:
            return cls(raw or cls.RECENT.value)
        except ValueError:
            return None


@dataclass(frozen=True)
class FormState:
    status: str
    submitted_at: datetime | None
    channel: str

    @property
    def is_submitted(self) -> bool:
        return self.status == SUBMITTED


@dataclass(frozen=True)
class PersonRow:
    id: int  # the person's pages are addressed by it, never by the code (docs/security.md)
    code: str
    status: PersonStatus
    before: FormState | None
    after: FormState | None
    retro: FormState | None
    after_due: bool
    first_visit: datetime | None = None  # None: a code printed, nothing answered yet
    last_visit: datetime | None = None
    followup_due: bool = False  # a follow-up months later open and not sent

    @property
    def can_print_after(self) -> bool:
        """A sent 'before' and no sent 'after': an after form can be printed for them."""
        return self.status in (PersonStatus.BEFORE_DONE, PersonStatus.AFTER_PENDING)


@dataclass(frozen=True)
class FollowupPage:
    rows: list[PersonRow]
    total: int  # people matching the filter (and the search)
    page: int  # 1-based
    pages: int
    counts: dict[PersonStatus, int]  # everybody of the structure, by status
    after_due: int
    after_due_weeks: int
    # Everybody of the structure, by filter (the search aside): the select's numbers.
    shown: Mapping[Show, int] | None = None
    requested_page: int = 1  # the page asked for, before it was brought within 1..pages

    @property
    def people(self) -> int:
        return sum(self.counts.values())


# --- the grouped query -------------------------------------------------------------------


def _per_person(structure_id: int) -> Subquery:
    """One row per person of the structure: status, date and channel of each form."""

    def pick(form: FormKind, column: Any, name: str) -> Label[Any]:
        return func.max(case((Response.form == form.value, column))).label(name)

    columns: list[Label[Any]] = [
        Beneficiary.id.label("id"),
        Beneficiary.code.label("code"),
        func.coalesce(
            func.max(func.coalesce(Response.submitted_at, Response.updated_at)),
            Beneficiary.created_at,
        ).label("last_change"),
        # A visit: a form started or sent (the earlier of the two: a paper form is typed in,
        # created, after the day it was filled and dated).
        func.min(
            case(
                (Response.submitted_at < Response.created_at, Response.submitted_at),
                else_=Response.created_at,
            )
        ).label("first_visit"),
        func.max(func.coalesce(Response.submitted_at, Response.updated_at)).label("last_visit"),
    ]
    for form in FormKind:
        columns += [
            pick(form, Response.status, f"{form.value}_status"),
            pick(form, Response.submitted_at, f"{form.value}_at"),
            pick(form, Response.channel, f"{form.value}_channel"),
        ]
    return (
        select(*columns)
        .select_from(Beneficiary)
        .outerjoin(Response, Response.beneficiary_id == Beneficiary.id)
        .where(Beneficiary.structure_id == structure_id)
        .group_by(Beneficiary.id, Beneficiary.code, Beneficiary.created_at)
        .subquery("person")
    )


def _status(person: Subquery) -> ColumnElement[str]:
    c = person.c
    before_sent = c.before_status == SUBMITTED
    return case(
        (and_(before_sent, c.after_status == SUBMITTED), PersonStatus.COMPLETE.value),
        (c.retro_status == SUBMITTED, PersonStatus.RETROSPECTIVE.value),
        (and_(before_sent, c.after_status.is_not(None)), PersonStatus.AFTER_PENDING.value),
        (before_sent, PersonStatus.BEFORE_DONE.value),
        (
            or_(c.before_status.is_not(None), c.retro_status.is_not(None)),
            PersonStatus.IN_PROGRESS.value,
        ),
        else_=PersonStatus.NOT_STARTED.value,
    )


def after_due_cutoff(structure: Structure, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(weeks=structure.after_due_weeks)


def _after_due(person: Subquery, cutoff: datetime) -> ColumnElement[bool]:
    """'before' sent more than the structure's delay ago, and no 'after' sent."""
    c = person.c
    return and_(
        c.before_status == SUBMITTED,
        c.before_at < cutoff,
        or_(c.after_status.is_(None), c.after_status != SUBMITTED),
    )


def _followup_due(
    person: Subquery, structure: Structure, now: datetime, zone: ZoneInfo
) -> ColumnElement[bool]:
    """A follow-up months later is open and not sent: the latest one open (the second when
    its day has come), as `followup_overview` and journey.schedule.status say, in SQL. The
    opening is a local calendar day: `schedule.opened_before` turns it into a bound on when
    the end form was sent."""
    c = person.c
    end_at = case(
        (c.after_status == SUBMITTED, c.after_at),
        (c.retro_status == SUBMITTED, c.retro_at),
    )

    def unsent(form: FormKind) -> ColumnElement[bool]:
        status = getattr(c, f"{form.value}_status")
        return or_(status.is_(None), status != SUBMITTED)

    delays = schedule.months_of(structure.followup_months, structure.second_followup_months)
    rule: ColumnElement[bool] = false()
    for form in FOLLOWUP_FORMS:  # the first, then the second: the later one open prevails
        if form in delays:
            opened = end_at < schedule.opened_before(delays[form], now, zone)
            rule = or_(and_(opened, unsent(form)), and_(~opened, rule))
    return and_(end_at.is_not(None), rule)


@dataclass(frozen=True)
class PersonColumns:
    """What a filter may look at: the per-person subquery, its status, the 'after due' and
    'follow-up due' tests."""

    person: Subquery
    status: ColumnElement[str]
    after_due: ColumnElement[bool]
    followup_due: ColumnElement[bool]


FilterRule = Callable[[PersonColumns], ColumnElement[bool]]


def _is(status: PersonStatus) -> FilterRule:
    return lambda c: c.status == status.value


SHOW_FILTERS: dict[Show, FilterRule] = {
    Show.BEFORE_ONLY: lambda c: c.status.in_(
        [PersonStatus.BEFORE_DONE.value, PersonStatus.AFTER_PENDING.value]
    ),
    Show.AFTER_DUE: lambda c: c.after_due,
    Show.FOLLOWUP_DUE: lambda c: c.followup_due,
    **{Show(status.value): _is(status) for status in PersonStatus},
}  # Show.ALL: no condition


def _order(person: Subquery, sort: Sort) -> list[ColumnElement[Any]]:
    # Nobody seen yet: the code's creation stands in for both visits, so they sort too.
    last = person.c.last_change
    first = func.coalesce(person.c.first_visit, person.c.last_change)
    key = {
        Sort.RECENT: last.desc(),
        Sort.OLDEST: last.asc(),
        Sort.FIRST_RECENT: first.desc(),
        Sort.FIRST_OLDEST: first.asc(),
    }[sort]
    tie = person.c.id.asc() if sort in (Sort.OLDEST, Sort.FIRST_OLDEST) else person.c.id.desc()
    return [key, tie]


def _state(row: Any, form: FormKind) -> FormState | None:
    status = getattr(row, f"{form.value}_status")
    if status is None:
        return None
    return FormState(
        status, getattr(row, f"{form.value}_at"), getattr(row, f"{form.value}_channel")
    )


def list_people(
    session: Session,
    structure: Structure,
    show: Show = Show.ALL,
    page: int = 1,
    now: datetime | None = None,
    page_size: int | None = None,
    search: str = "",
    sort: Sort = Sort.RECENT,
    zone: ZoneInfo | None = None,
) -> FollowupPage:
    """One page of the structure's people and the counts.

    `search` is a piece of a code, already cleaned (`codes.normalise_part`): the people whose
    code contains it. `sort` orders by first or last visit. `zone`: the local calendar of
    the follow-up's opening day (Paris by default).
    """
    page_size = page_size or PAGE_SIZE
    now = now or utcnow()
    person = _per_person(structure.id)
    status = _status(person)
    due = _after_due(person, after_due_cutoff(structure, now))
    followup_due = _followup_due(person, structure, now, zone or ZoneInfo(DEFAULT_ZONE))
    columns = PersonColumns(person, status, due, followup_due)

    counts, shown = _counts(session, columns)
    conditions = [] if show is Show.ALL else [SHOW_FILTERS[show](columns)]
    if search:
        conditions.append(person.c.code.contains(search, autoescape=True))
    if search:
        total = session.scalar(select(func.count()).select_from(person).where(*conditions)) or 0
    else:
        total = shown[show]
    pages = max(1, math.ceil(total / page_size))
    requested = page
    page = min(max(1, page), pages)

    query = (
        select(
            person,
            status.label("status"),
            due.label("after_due"),
            followup_due.label("followup_due"),
        )
        .where(*conditions)
        .order_by(*_order(person, sort))
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    rows = [_person_row(row) for row in session.execute(query)]
    return FollowupPage(
        rows,
        total,
        page,
        pages,
        counts,
        shown[Show.AFTER_DUE],
        structure.after_due_weeks,
        shown,
        requested,
    )


def _counts(
    session: Session, columns: PersonColumns
) -> tuple[dict[PersonStatus, int], dict[Show, int]]:
    """How many people of the structure are in each status, and how many each filter of
    the list shows."""
    person, status = columns.person, columns.status
    # Grouped through a subquery: PostgreSQL would not match a CASE with bound strings in
    # GROUP BY against the same CASE in SELECT (each gets its own parameters).
    labelled = select(status.label("status")).subquery()
    counts = dict.fromkeys(PersonStatus, 0)
    for value, number in session.execute(
        select(labelled.c.status, func.count()).group_by(labelled.c.status)
    ):
        counts[PersonStatus(value)] = number
    # Every other filter counted in one pass (sums of CASE over the people).
    others = [choice for choice in Show if choice is not Show.ALL and choice.value not in counts]
    sums = session.execute(
        select(
            *(
                func.coalesce(func.sum(case((SHOW_FILTERS[choice](columns), 1), else_=0)), 0)
                for choice in others
            )
        ).select_from(person)
    ).one()
    shown: dict[Show, int] = {Show.ALL: sum(counts.values())}
    for choice in Show:
        if choice.value in counts:
            shown[choice] = counts[PersonStatus(choice.value)]
    shown.update({choice: int(number) for choice, number in zip(others, sums, strict=True)})
    return counts, shown


def _person_row(row: Any) -> PersonRow:
    return PersonRow(
        id=row.id,
        code=row.code,
        status=PersonStatus(row.status),
        before=_state(row, FormKind.BEFORE),
        after=_state(row, FormKind.AFTER),
        retro=_state(row, FormKind.RETRO),
        after_due=bool(row.after_due),
        first_visit=row.first_visit,
        last_visit=row.last_visit,
        followup_due=bool(row.followup_due),
    )


def after_due_codes(
    session: Session,
    structure: Structure,
    now: datetime | None = None,
    limit: int | None = None,
) -> list[str]:
    """Codes of the people who owe an 'after' form, the longest overdue first."""
    person = _per_person(structure.id)
    query = (
        select(person.c.code)
        .where(_after_due(person, after_due_cutoff(structure, now)))
        .order_by(person.c.before_at, person.c.id)
        .limit(limit)
    )
    return list(session.scalars(query))


# --- one person --------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseRow:
    response: Response
    entered_by: str | None  # e-mail of who typed a paper form
    answers: int  # stored values


def responses_of(session: Session, person: Beneficiary) -> list[ResponseRow]:
    """The person's responses with who typed them and how many values, in one query."""
    counted = (
        select(Answer.response_id, func.count().label("n")).group_by(Answer.response_id).subquery()
    )
    query = (
        select(Response, StaffUser.email, func.coalesce(counted.c.n, 0))
        .outerjoin(StaffUser, StaffUser.id == Response.entered_by_id)
        .outerjoin(counted, counted.c.response_id == Response.id)
        .where(Response.beneficiary_id == person.id)
        .order_by(Response.id)
    )
    return [ResponseRow(r, email, n) for r, email, n in session.execute(query)]


def find_response(person: Beneficiary, response_id: int) -> Response | None:
    return next((r for r in person.responses if r.id == response_id), None)


def _deletion_changes(response: Response) -> dict[str, Any]:
    old = answers_of(response)
    changes: dict[str, Any] = {
        "code": {"old": [response.beneficiary.code], "new": []},
        "form": {"old": [response.form], "new": []},
        "status": {"old": [response.status], "new": []},
        "channel": {"old": [response.channel], "new": []},
    }
    changes.update(audit.answer_changes(old, {}))
    return changes


def _delete_response(session: Session, user: StaffUser, response: Response) -> None:
    # The response's row locked first, as every writer of its answers does (a page save): the
    # ORM deletes the answers before the response, which deadlocked with a page save in flight
    # (attack10, round 17). Its answers then read under the lock.
    lock_for_writing(session, response)
    session.expire(response, ["answers"])
    audit.record(
        session,
        user,
        "delete",
        audit.Entity.RESPONSE,
        response.id,
        response.structure_id,
        _deletion_changes(response),
    )
    # Blind second entries go with the form they copied (their answers cascade).
    for entry in session.scalars(select(SecondEntry).where(SecondEntry.response_id == response.id)):
        session.delete(entry)
    session.delete(response)


def delete_response(session: Session, user: StaffUser, response: Response) -> None:
    """Delete one response and its answers; the audit event keeps the old values."""
    _delete_response(session, user, response)
    session.flush()


def delete_person(
    session: Session, user: StaffUser, person: Beneficiary, secret: str | bytes | None = None
) -> None:
    """Delete a person's code and every response of theirs, one audit event each.

    What the evaluators' exports and views remember of them goes too, as at an erasure
    (`privacy.forget_people`; `secret`: the app's secret key by default): the audit events
    keep the code and answers until the retention purge, the memory would have kept their
    keyed hash for ever (purge only looks at people still there)."""
    forget_people(session, [person.id], secret)
    responses: Sequence[Response] = list(person.responses)
    for response in responses:
        _delete_response(session, user, response)
    session.flush()
    session.expire(person, ["responses"])
    audit.record(
        session,
        user,
        "delete",
        audit.Entity.BENEFICIARY,
        person.id,
        person.structure_id,
        {
            "code": {"old": [person.code], "new": []},
            "responses": {"old": [r.form for r in responses], "new": []},
        },
    )
    forget_reminder(session, person.id)
    session.delete(person)
    session.flush()


# --- the follow-up months later (issue 15) --------------------------------------------------


class FollowupDue(enum.StrEnum):
    """Where a person who sent their end form stands with their follow-up."""

    UPCOMING = "upcoming"  # not open yet
    DUE = "due"  # open, not sent
    OVERDUE = "overdue"  # open for more than schedule.OVERDUE_DAYS, not sent
    DONE = "done"  # the latest open follow-up is sent


@dataclass(frozen=True)
class FollowupRow:
    id: int  # for the link to the person's page
    code: str
    state: FollowupDue
    form: FormKind | None  # the follow-up concerned (None once every one is done)
    opens_on: date | None


@dataclass(frozen=True)
class FollowupOverview:
    counts: dict[FollowupDue, int]
    rows: list[FollowupRow]  # the people due and overdue, the longest waiting first

    @property
    def to_print(self) -> list[str]:
        return [row.code for row in self.rows][:PRINT_BATCH]


def followup_overview(
    session: Session, structure: Structure, now: datetime, zone: ZoneInfo
) -> FollowupOverview:
    """Who is due, overdue, done or upcoming for the follow-up, among the people of the
    structure who sent an end form (the opening day is a local calendar date: computed in
    Python from one row per such person, see journey.schedule)."""
    person = _per_person(structure.id)
    c = person.c
    end_sent = or_(c.after_status == SUBMITTED, c.retro_status == SUBMITTED)
    delays = schedule.months_of(structure.followup_months, structure.second_followup_months)
    counts = dict.fromkeys(FollowupDue, 0)
    rows: list[FollowupRow] = []
    overdue_after = timedelta(days=schedule.OVERDUE_DAYS)
    for row in session.execute(select(person).where(end_sent)):
        forms = [
            schedule.SentForm(
                form,
                getattr(row, f"{form.value}_at")
                if getattr(row, f"{form.value}_status") == SUBMITTED
                else None,
            )
            for form in FormKind
            if getattr(row, f"{form.value}_status") is not None
        ]
        status = schedule.status(forms, delays, now, zone)
        opening = status.opening
        if status.state is schedule.FollowupState.WAITING:
            state = FollowupDue.UPCOMING
        elif status.state is schedule.FollowupState.OPEN and opening is not None:
            state = FollowupDue.OVERDUE if now - opening.at >= overdue_after else FollowupDue.DUE
        else:
            state = FollowupDue.DONE
        counts[state] += 1
        if state in (FollowupDue.DUE, FollowupDue.OVERDUE):
            opens_on = opening.day if opening is not None else None
            rows.append(FollowupRow(row.id, row.code, state, status.form, opens_on))
    rows.sort(key=lambda r: (r.opens_on or date.max, r.code))
    return FollowupOverview(counts, rows)
