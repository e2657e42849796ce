"""What lasts after the accompaniment (issue 15): retention indicators from the follow-up.

For each person in scope with a sent end form (after, or retrospective) and a sent follow-up,
a task counts as a *gain* when its rung at the end is above its rung before (the before form,
or the retrospective form's "before" answers), and the gain is *kept* when the follow-up's
rung is at least the end's. The unit is the person, so that intervals are honest (the tasks
of one person are not independent): per competence type, the share of the people with a gain
in it who kept all their gains in it, with a Wilson 95 % interval (statistics.share), and
the same over every task. The follow-up response rate is the share of the people whose first
follow-up has opened who sent one.

**The dashboard's filters** (scope.response_conditions: structures, period, forms, channels)
choose the people as the paired tables do, where the "after" form in scope dates a pair: the
follow-up whose answers are read (the latest sent) dates a person's three points for the
kept gains, and the end form dates them for the response rate (the people who did not answer
have no follow-up to be dated by: the rate is that of the people who ended in the period, on
that channel). A person's other points are read whole, whatever their date or channel. So
"April to June" gives the gains kept by the people who answered their follow-up then, and the
response rate of those who ended then.

**Small cells**, as on the dashboard's tables (disclosure.protect, paired.withheld): under k
people, no figure; nor when the people who kept (or answered) or those who did not are
between 1 and k - 1 (a share of 100 % stays: nobody is singled out by it). Both populations
are people of the viewed selection, which the views have already checked against the
complement and differencing guards (scope.require_complement_at_least_k,
guard_views.guard_view_here) before these figures are computed.

**Read from the facts** (issue 18): each person's gains and whether they were kept, and when
their end form was sent, are kept in `response_fact` (facts.followup_facts, written with every
change to their answers), so the figures are two queries over a covering index that return
one small row per person counted; reading every response, and the task answers of the people
followed up, took seconds at 100,000 people. Whether a follow-up has opened depends on today's
date: it is an SQL bound on the end form's time (schedule.opened_before). The same figures
computed from the answers are the tests' oracle (tests/services/evaluation/retention_oracle.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from sqlalchemy import ColumnElement, Connection, and_, case, false, func, or_, select
from sqlalchemy.orm import Session

from selfcheck.evaluation import facts, statistics
from selfcheck.evaluation.differencing import read_integers
from selfcheck.evaluation.indicators import fact_conditions
from selfcheck.evaluation.scope import EvaluationFilters
from selfcheck.journey import schedule
from selfcheck.platform.models import FactFollowup, ResponseFact, Structure
from selfcheck.questionnaire.model import END_FORMS, FOLLOWUP_FORMS, Definition


@dataclass(frozen=True)
class CompetenceRetention:
    competence: str  # the competence code (its label is in the definition)
    kept: statistics.Share | statistics.TooFew


@dataclass(frozen=True)
class Retention:
    overall: statistics.Share | statistics.TooFew
    by_competence: tuple[CompetenceRetention, ...]
    response_rate: statistics.Share | statistics.TooFew


@dataclass(frozen=True)
class Followed:
    """The people of a selection behind the follow-up figures (their person ids).

    `gained`: per competence (None: every competence) the people with a gain whose follow-up
    read is in the selection; `kept_all` of them, those who kept every such gain. `opened`:
    the people with an end form in the selection whose first follow-up has opened;
    `answered` of them, those who sent a follow-up."""

    gained: dict[str | None, frozenset[int]]
    kept_all: dict[str | None, frozenset[int]]
    opened: frozenset[int]
    answered: frozenset[int]

    def kept(self, competence: str | None) -> tuple[int, int]:
        """(people who kept all their gains, people with a gain)."""
        return len(self.kept_all.get(competence, ())), len(self.gained.get(competence, ()))

    def response(self) -> tuple[int, int]:
        """(people who sent a follow-up, people whose first follow-up has opened)."""
        return len(self.answered), len(self.opened)


# A figure group's digest: how many people, and the four sums of their facts.figure_parts.
Digest = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class Counted:
    """The follow-up figures of a selection as numbers, from the cells (`count`), with the
    digest of each figure's group of people (`figure_groups`' names): equal digests, the
    same people but with odds of 2**-128 (the cells' key is secret, facts.cell_key)."""

    gained: Mapping[str | None, int]
    kept_all: Mapping[str | None, int]
    opened: int
    answered: int
    digests: Mapping[str, Digest]

    def kept(self, competence: str | None) -> tuple[int, int]:
        return self.kept_all.get(competence, 0), self.gained.get(competence, 0)

    def response(self) -> tuple[int, int]:
        return self.answered, self.opened


def _by_months(db: Session, filters: EvaluationFilters) -> list[tuple[int, list[int]]]:
    """The structures of the selection by their follow-up delay (months, ids)."""
    by_months: dict[int, list[int]] = defaultdict(list)
    for structure_id, months in db.execute(
        select(Structure.id, Structure.followup_months).where(
            Structure.id.in_(filters.structure_ids)
        )
    ):
        by_months[months].append(structure_id)
    return sorted(by_months.items())


def opened_rule(
    db: Session, filters: EvaluationFilters, now: datetime, zone: ZoneInfo
) -> ColumnElement[bool]:
    """SQL: the person's first follow-up has opened at `now` (their structure's delay after
    the local day their end form was sent: schedule.openings), as a bound on that time."""
    return or_(
        false(),
        *(
            and_(
                ResponseFact.structure_id.in_(ids),
                ResponseFact.ended_at < schedule.opened_before(months, now, zone),
            )
            for months, ids in _by_months(db, filters)
        ),
    )


def load(
    db: Session,
    definition: Definition,
    filters: EvaluationFilters,
    *,
    now: datetime,
    zone: ZoneInfo,
) -> Followed | None:
    """The follow-up figures' people from the facts (None: nobody of the selection has sent
    an end form and has it, or a follow-up, in the selection). Two queries over the covering
    index `ix_response_fact_followup`, their rows as plain tuples (no ORM rows: at 100,000
    people that halves the time), the first read straight into an array
    (differencing.read_integers: a binary COPY on PostgreSQL)."""
    connection = db.connection()
    ends = sorted(form.value for form in END_FORMS)
    followups = sorted(form.value for form in FOLLOWUP_FORMS)
    scope = (*fact_conditions(filters, ResponseFact), ResponseFact.ended_at.is_not(None))
    # The people whose end form is in the selection and whose first follow-up has opened.
    opened = read_integers(
        connection,
        select(ResponseFact.beneficiary_id, case((ResponseFact.followed, 1), else_=0)).where(
            *scope, ResponseFact.form.in_(ends), opened_rule(db, filters, now, zone)
        ),
    )
    # The people whose follow-up read is in the selection and who had a gain.
    kept_rows = connection.execute(
        select(ResponseFact.beneficiary_id, ResponseFact.kept).where(
            *scope, ResponseFact.form.in_(followups), ResponseFact.kept.is_not(None)
        )
    ).all()
    if not opened.size and not kept_rows:
        anyone = connection.execute(
            select(ResponseFact.response_id)
            .where(*scope, ResponseFact.form.in_(ends + followups))
            .limit(1)
        ).first()
        if anyone is None:
            return None
    # The verdicts ("c:1,d:0") take few distinct values: each is read once for its people.
    by_verdicts: dict[str, list[int]] = defaultdict(list)
    for person, kept in kept_rows:
        by_verdicts[str(kept)].append(person)
    gained: dict[str | None, set[int]] = defaultdict(set)
    kept_all: dict[str | None, set[int]] = defaultdict(set)
    for verdicts, people in by_verdicts.items():
        every = True
        for verdict in verdicts.split(","):
            competence, _, value = verdict.partition(":")
            gained[competence].update(people)
            if value == "1":
                kept_all[competence].update(people)
            else:
                every = False
        gained[None].update(people)
        if every:
            kept_all[None].update(people)
    return Followed(
        gained={key: frozenset(people) for key, people in gained.items()},
        kept_all={key: frozenset(people) for key, people in kept_all.items()},
        opened=frozenset(opened[:, 0].tolist()),
        answered=frozenset(opened[opened[:, 1] != 0, 0].tolist()),
    )


def count(
    db: Session,
    definition: Definition,
    filters: EvaluationFilters,
    *,
    now: datetime,
    zone: ZoneInfo,
    key: bytes,
) -> Counted | None:
    """The follow-up figures' numbers and their groups' digests from the cells
    (`fact_followup`, a few thousand rows), without one row per person: the same people as
    `load` (None when it gives None), which tests/services/evaluation/test_facts.py checks
    after random writes, today and once every follow-up has opened.

    A person's first follow-up has opened when their first end form was sent before a bound
    (`schedule.opened_before`, per structure delay; a local midnight): the cells of the UTC
    days before the bound's UTC day are taken whole, the end forms sent on that day before
    the bound are read one by one (a day of end forms), later days not at all. Someone with
    two end forms (cells of their own, `FactFollowup.person`) is counted once.
    `key`: the cells' digest key (facts.session_cell_key)."""
    connection = db.connection()
    scope = fact_conditions(filters, FactFollowup)
    bounds = [
        (ids, schedule.opened_before(months, now, zone).astimezone(UTC))
        for months, ids in _by_months(db, filters)
    ]
    opened, answered = _opened(connection, filters, scope, bounds, key)
    gained, kept_all, digests = _kept(connection, scope)
    if not opened[0] and not gained[None] and not _any_cell(connection, scope):
        return None
    digests["response"] = opened
    names = ("response", "kept", *("kept:" + code for code in definition.competences))
    return Counted(
        gained={name: number for name, number in gained.items() if number},
        kept_all={name: number for name, number in kept_all.items() if number},
        opened=int(opened[0]),
        answered=answered,
        digests={name: _digest(digests[name]) for name in names},
    )


Bounds = list[tuple[list[int], datetime]]  # structures, and when their follow-ups open


def _cell_sums() -> list[ColumnElement[int]]:
    """The sums of a group of cells: its people, then their figures' digest parts."""
    return [func.coalesce(func.sum(getattr(FactFollowup, name)), 0) for name in facts.CELL_SUMS]


def _opened(
    connection: Connection,
    filters: EvaluationFilters,
    scope: list[ColumnElement[bool]],
    bounds: Bounds,
    key: bytes,
) -> tuple[npt.NDArray[np.int64], int]:
    """The people whose first follow-up has opened (their number and digest parts), and how
    many of them sent one: the cells of the whole days before each bound, and the end forms
    of the bound's own day one by one; someone with two end forms is counted once."""
    opened, answered, apart = _opened_whole_days(connection, scope, bounds)
    for person, followed in _ended_on_the_bound_day(connection, filters, bounds):
        apart[person] = apart.get(person, False) or followed
    if apart:
        ids_apart = np.array(sorted(apart), dtype=np.int64)
        opened += np.r_[ids_apart.size, facts.figure_parts(ids_apart, key).sum(axis=0)]
        answered += sum(apart.values())
    return opened, answered


def _opened_whole_days(
    connection: Connection, scope: list[ColumnElement[bool]], bounds: Bounds
) -> tuple[npt.NDArray[np.int64], int, dict[int, bool]]:
    """The end forms' cells of the UTC days before each bound: their sums, how many of their
    people sent a follow-up, and the people of cells of their own (two end forms), apart:
    whether each sent a follow-up."""
    whole_days = or_(
        false(),
        *(
            and_(
                FactFollowup.structure_id.in_(ids),
                FactFollowup.ended_on < bound.date().isoformat(),
            )
            for ids, bound in bounds
        ),
    )
    opened = np.zeros(5, dtype=np.int64)  # people counted by the cells, and their sums
    answered = 0
    apart: dict[int, bool] = {}
    ends = sorted(facts.END_VALUES)
    for followed, person, *values in connection.execute(
        select(FactFollowup.followed, FactFollowup.person, *_cell_sums())
        .where(*scope, FactFollowup.form.in_(ends), FactFollowup.kept == "", whole_days)
        .group_by(FactFollowup.followed, FactFollowup.person)
    ):
        if not values[0]:
            continue
        if person:
            apart[int(person)] = apart.get(int(person), False) or bool(followed)
        else:
            opened += np.array(values, dtype=np.int64)
            answered += int(values[0]) if followed else 0
    return opened, answered, apart


def _ended_on_the_bound_day(
    connection: Connection, filters: EvaluationFilters, bounds: Bounds
) -> Iterator[tuple[int, bool]]:
    """The people whose end form was sent on a bound's UTC day before the bound, and whether
    each sent a follow-up (a day of end forms, read one by one)."""
    rows = fact_conditions(filters, ResponseFact)
    ends = sorted(facts.END_VALUES)
    for ids, bound in bounds:
        day = datetime.combine(bound.date(), time(0), tzinfo=UTC)
        if bound == day:
            continue
        for person, followed in connection.execute(
            select(ResponseFact.beneficiary_id, ResponseFact.followed).where(
                *rows,
                ResponseFact.form.in_(ends),
                ResponseFact.structure_id.in_(ids),
                ResponseFact.ended_at >= day,
                ResponseFact.ended_at < bound,
            )
        ):
            yield int(person), bool(followed)


def _kept(
    connection: Connection, scope: list[ColumnElement[bool]]
) -> tuple[dict[str | None, int], dict[str | None, int], dict[str, npt.NDArray[np.int64]]]:
    """From the follow-ups' cells, by competence (None: every task): the people with a gain,
    those who kept all their gains, and the digest parts of each group."""
    gained: dict[str | None, int] = defaultdict(int)
    kept_all: dict[str | None, int] = defaultdict(int)
    digests: dict[str, npt.NDArray[np.int64]] = defaultdict(lambda: np.zeros(5, dtype=np.int64))
    for verdicts, *values in connection.execute(
        select(FactFollowup.kept, *_cell_sums())
        .where(
            *scope, FactFollowup.form.in_(sorted(facts.FOLLOWUP_VALUES)), FactFollowup.kept != ""
        )
        .group_by(FactFollowup.kept)
    ):
        if not values[0]:
            continue
        number, found = int(values[0]), np.array(values, dtype=np.int64)
        every = True
        for verdict in str(verdicts).split(","):
            competence, _, value = verdict.partition(":")
            gained[competence] += number
            digests["kept:" + competence] += found
            if value == "1":
                kept_all[competence] += number
            else:
                every = False
        gained[None] += number
        digests["kept"] += found
        if every:
            kept_all[None] += number
    return gained, kept_all, digests


def _any_cell(connection: Connection, scope: list[ColumnElement[bool]]) -> bool:
    """Whether anyone in scope sent an end form or a follow-up (else: no figures at all)."""
    forms = sorted(facts.END_VALUES) + sorted(facts.FOLLOWUP_VALUES)
    return (
        connection.execute(
            select(FactFollowup.n)
            .where(*scope, FactFollowup.form.in_(forms), FactFollowup.n > 0)
            .limit(1)
        ).first()
        is not None
    )


def _digest(values: npt.NDArray[np.int64]) -> Digest:
    number, d0, d1, d2, d3 = (int(value) for value in values)
    return number, d0, d1, d2, d3


def digests_of(followed: Followed, definition: Definition, key: bytes) -> dict[str, Digest]:
    """The digests of `followed`'s figure groups (`figure_groups`), computed from the people
    themselves: those of `count` when the cells hold the same people."""
    found: dict[str, Digest] = {}
    for name, people in figure_groups(followed, definition).items():
        ids = np.fromiter(people, dtype=np.int64, count=len(people))
        found[name] = _digest(np.r_[ids.size, facts.figure_parts(ids, key).sum(axis=0)])
    return found


def guarded_share(successes: int, n: int, *, k: int) -> statistics.Share | statistics.TooFew:
    """The share, unless it would describe fewer than k people: n under k, or the people on
    either side (successes, n - successes) from 1 to k - 1 (disclosure.protect's rule)."""
    if any(0 < count < k for count in (successes, n - successes)):
        return statistics.TooFew(k)
    return statistics.share(successes, n, k=k)


def retention(followed: Followed | Counted, definition: Definition, *, k: int) -> Retention:
    return Retention(
        overall=guarded_share(*followed.kept(None), k=k),
        by_competence=tuple(
            CompetenceRetention(code, guarded_share(*followed.kept(code), k=k))
            for code in definition.competences
        ),
        response_rate=guarded_share(*followed.response(), k=k),
    )


def figure_groups(followed: Followed, definition: Definition) -> dict[str, frozenset[int]]:
    """The people each figure of `retention` is about, by figure ("response", "kept", and
    "kept:<competence>"): two views whose group for a figure differs by 1 to k - 1 people
    would give those people's outcomes by subtraction, even when the views' selections differ
    by k or more (differencing.guard_figures)."""
    groups = {"response": followed.opened, "kept": followed.gained.get(None, frozenset())}
    for code in definition.competences:
        groups["kept:" + code] = followed.gained.get(code, frozenset())
    return groups
