"""The dashboard's raw counts, read from the maintained facts (`facts.py`), never row by row.

One query sums `fact_tally` over the cells in scope (structures, whole months, forms,
channels) and gives every figure but one: answer distributions and their bases, responses
per form and channel, comfort and task evolution, typology profiles, data quality. The other
counts the distinct people in scope in `response_fact`. Counts here are raw: `dashboard.py`
builds the tables and `disclosure.protect` hides small cells before anything is shown.

Who is counted (the facts are written so that these hold; tests/services/evaluation/
test_facts.py checks them against the same counts made from the answers):
- a *person* is a beneficiary with at least one submitted response in scope
  (`scope.response_conditions`); each person has at most one response per form, so counting
  responses of one form counts people;
- items asked in the 'before' and retrospective forms (the profile) and items asked in the
  'after' and retrospective forms (the path, the evolution) are answered once per person:
  their counts add up over forms;
- *pairs*: a submitted 'after' in scope and the same person's submitted 'before' (the
  before may fall outside the date range: the after dates the pair);
- *retrospective*: a retrospective form in scope, "before" being its *_PRE answers;
- *typology*: the profile of the person's 'before' or retrospective form in scope.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from selfcheck.evaluation import facts, typology
from selfcheck.evaluation.scope import EvaluationFilters, response_conditions
from selfcheck.platform.models import (
    Answer,
    Channel,
    FactCell,
    FactFollowup,
    FactTally,
    Response,
    ResponseFact,
)
from selfcheck.questionnaire.model import NO_ANSWER, Definition, FormKind

ALONE_RANK = facts.ALONE_RANK

# (variable, form) -> value -> count of responses (= people for one form)
Distributions = dict[tuple[str, str], dict[str, int]]
# (form, channel, key, value) -> number
Tally = Mapping[tuple[str, str, str, str], int]


@dataclass(frozen=True)
class Evolution:
    """Comfort before x now (rank pairs) and task progress per competence type."""

    comfort: Mapping[tuple[int, int], int]  # (before rank, now rank) -> people
    competence_people: Mapping[str, int]  # people with a task of this type ranked twice
    competence_progressed: Mapping[str, int]  # of whom at least one such task moved up


@dataclass(frozen=True)
class Quality:
    befores: int  # submitted 'before' forms in scope
    befores_with_after: int  # of which the same person's 'after' is submitted
    channels: Mapping[tuple[str, str], int]  # (form, channel) -> responses
    second_entries: int
    compared_fields: int
    differing_fields: int


@dataclass(frozen=True)
class RawIndicators:
    people: int
    people_by_form: Mapping[str, int]
    distributions: Distributions
    answered: Mapping[tuple[str, str], int]  # (variable, form) -> responses with an answer
    pairs: Evolution
    retro: Evolution
    typology: Mapping[str, int]
    quality: Quality

    def counts(self, variable: str, forms: Sequence[FormKind] | None = None) -> dict[str, int]:
        """Counts of each value of a variable, added up over the given forms (all by default)."""
        wanted = {f.value for f in forms} if forms is not None else None
        total: dict[str, int] = defaultdict(int)
        for (code, form), values in self.distributions.items():
            if code == variable and (wanted is None or form in wanted):
                for value, number in values.items():
                    total[value] += number
        return dict(total)

    def base(self, variable: str, forms: Sequence[FormKind] | None = None) -> int:
        wanted = {f.value for f in forms} if forms is not None else None
        return sum(
            number
            for (code, form), number in self.answered.items()
            if code == variable and (wanted is None or form in wanted)
        )


class NotWholeMonths(ValueError):
    """The facts count whole months: `scope.parse_filters` only gives such dates."""


def _months(filters: EvaluationFilters) -> tuple[str | None, str | None]:
    start, end = filters.date_from, filters.date_to
    if start is not None and start.day != 1:
        raise NotWholeMonths(start)
    if end is not None and (end + timedelta(days=1)).day != 1:
        raise NotWholeMonths(end)
    return (
        facts.month_of(start) if start is not None else None,
        facts.month_of(end) if end is not None else None,
    )


def month_range(filters: EvaluationFilters) -> tuple[str, str] | None:
    """The first and last months of `filters` ("YYYY-MM"), None without dates (every month,
    and the responses without a time). Never facts.NO_MONTH: a response without its time is
    outside any date range."""
    first, last = _months(filters)
    if first is None and last is None:
        return None
    return first or "0001-01", last or "9999-12"


def fact_conditions(
    filters: EvaluationFilters,
    model: type[FactTally] | type[ResponseFact] | type[FactCell] | type[FactFollowup],
) -> list[ColumnElement[bool]]:
    """The scope of `filters` on a facts table (the same people as `response_conditions`)."""
    months = month_range(filters)
    conditions: list[ColumnElement[bool]] = [model.structure_id.in_(filters.structure_ids)]
    if months is not None:
        conditions.append(model.month.between(*months))
    elif model is FactTally or model is FactCell:
        conditions.append(model.month == facts.ALL_MONTHS)
    if filters.forms:
        conditions.append(model.form.in_(filters.forms))
    if filters.channels:
        conditions.append(model.channel.in_(filters.channels))
    return conditions


def read_tally(db: Session, filters: EvaluationFilters, keys: Iterable[str]) -> Tally:
    """The sums of `fact_tally` in scope for these keys, per form, channel, key and value."""
    rows = db.execute(
        select(
            FactTally.form,
            FactTally.channel,
            FactTally.key,
            FactTally.value,
            func.sum(FactTally.n),
        )
        .where(*fact_conditions(filters, FactTally), FactTally.key.in_(sorted(set(keys))))
        .group_by(FactTally.form, FactTally.channel, FactTally.key, FactTally.value)
    )
    return {
        (form, channel, key, value): int(number)
        for form, channel, key, value, number in rows
        if number
    }


def count_people(db: Session, filters: EvaluationFilters) -> int:
    """How many distinct people have at least one submitted response in scope."""
    query = select(func.count(func.distinct(ResponseFact.beneficiary_id))).where(
        *fact_conditions(filters, ResponseFact)
    )
    return int(db.scalar(query) or 0)


def _by(tally: Tally, key: str, forms: Sequence[str] | None = None) -> dict[tuple[str, str], int]:
    """(form, value) -> number for one key."""
    found: dict[tuple[str, str], int] = defaultdict(int)
    for (form, _channel, name, value), number in tally.items():
        if name == key and (forms is None or form in forms):
            found[(form, value)] += number
    return found


def distributions_of(
    tally: Tally, variables: Sequence[str], multiple: frozenset[str] = frozenset()
) -> tuple[Distributions, dict[tuple[str, str], int]]:
    """Value counts and bases (responses with a real answer) of many variables."""
    wanted = set(variables)
    found: Distributions = defaultdict(dict)
    answered: dict[tuple[str, str], int] = defaultdict(int)
    for (form, _channel, variable, value), number in tally.items():
        if variable not in wanted:
            continue
        if value == facts.ANSWERED:
            if variable in multiple:
                answered[(variable, form)] += number
            continue
        values = found[(variable, form)]
        values[value] = values.get(value, 0) + number
        if variable not in multiple:
            answered[(variable, form)] += number
    return dict(found), dict(answered)


def distributions(
    db: Session,
    filters: EvaluationFilters,
    variables: Sequence[str],
    multiple: frozenset[str] = frozenset(),
) -> tuple[Distributions, dict[tuple[str, str], int]]:
    """Value counts and bases of many variables: one query.

    `multiple`: the variables that are multiple choices (several rows per response).
    """
    return distributions_of(read_tally(db, filters, variables), variables, multiple)


def people_by_form_of(tally: Tally) -> dict[str, int]:
    return {form: n for (form, _value), n in _by(tally, facts.RESPONSES).items()}


def people_by_form(db: Session, filters: EvaluationFilters) -> dict[str, int]:
    return people_by_form_of(read_tally(db, filters, [facts.RESPONSES]))


def evolution_of(tally: Tally, kind: FormKind) -> Evolution:
    forms = [kind.value]
    comfort: dict[tuple[int, int], int] = defaultdict(int)
    for (_form, value), number in _by(tally, facts.COMFORT, forms).items():
        then, now = value.split(">")
        comfort[(int(then), int(now))] += number
    people = {value: n for (_form, value), n in _by(tally, facts.RANKED, forms).items()}
    up = {value: n for (_form, value), n in _by(tally, facts.UP, forms).items()}
    return Evolution(dict(comfort), people, {code: up.get(code, 0) for code in people})


def evolution(
    db: Session, definition: Definition, filters: EvaluationFilters, kind: FormKind
) -> Evolution:
    """Comfort and task progress of pairs (kind AFTER) or retrospective forms (kind RETRO)."""
    return evolution_of(read_tally(db, filters, [facts.COMFORT, facts.RANKED, facts.UP]), kind)


def typology_of(tally: Tally) -> dict[str, int]:
    found: dict[str, int] = defaultdict(int)
    for (_form, profile), number in _by(tally, facts.PROFILE).items():
        found[profile] += number
    return dict(found)


def _profiles(definition: Definition, filters: EvaluationFilters) -> Any:
    """A subquery: each person in scope (`person`) and their profile (`profile`).

    The same facts as `typology.person_facts`: each fact is the MAX of its answers (or of
    their levels); only people with an answer in a profile form are counted.
    """
    sources = typology.sources(definition)

    def reads(source: typology.Source) -> ColumnElement[bool]:
        return or_(
            *(
                and_(Response.form == form, Answer.variable == variable)
                for form, variable in source.answers
            )
        )

    def value(source: typology.Source) -> ColumnElement[str]:
        if not source.levels:
            return case((reads(source), Answer.value), else_=None)
        return case(
            *(
                (and_(reads(source), Answer.value.in_(values)), literal(level))
                for level, values in source.levels
                if values
            ),
            else_=None,
        )

    profile_forms = [form.value for form in typology.PROFILE_FORMS]
    pivot = (
        select(
            Response.beneficiary_id.label("person"),
            *(func.max(value(source)).label(source.fact) for source in sources),
        )
        .join(Answer, Answer.response_id == Response.id)
        .where(
            *response_conditions(filters),
            or_(*(reads(source) for source in sources)),
            Answer.value != NO_ANSWER,
        )
        .group_by(Response.beneficiary_id)
        .having(func.max(case((Response.form.in_(profile_forms), 1), else_=0)) == 1)
        .subquery()
    )
    profile = typology.profile_case(
        {source.fact: pivot.c[source.fact] for source in sources}, definition
    )
    return select(pivot.c.person, profile.label("profile")).subquery()


def typology_counts(
    db: Session, definition: Definition, filters: EvaluationFilters
) -> dict[str, int]:
    """People per profile of `typology.rules` (the profile of their before or retro form)."""
    return typology_of(read_tally(db, filters, [facts.PROFILE]))


def quality_of(tally: Tally) -> Quality:
    befores = _by(tally, facts.RESPONSES, [FormKind.BEFORE.value])
    paired = _by(tally, facts.PAIRED, [FormKind.BEFORE.value])
    second: dict[str, int] = defaultdict(int)
    for (_form, value), number in _by(tally, facts.SECOND).items():
        second[value] += number
    channels: dict[tuple[str, str], int] = defaultdict(int)
    for (form, channel, key, _value), number in tally.items():
        if key == facts.RESPONSES:
            channels[(form, channel)] += number
    return Quality(
        sum(befores.values()),
        sum(paired.values()),
        dict(channels),
        second["entries"],
        second["compared"],
        second["differing"],
    )


def typology_people(
    db: Session, definition: Definition, filters: EvaluationFilters
) -> dict[int, str]:
    """Each person's profile, by the same query (for checks against `typology.classify`)."""
    profiles = _profiles(definition, filters)
    rows = db.execute(select(profiles.c.person, profiles.c.profile))
    return {int(person): str(profile) for person, profile in rows}


def quality(db: Session, filters: EvaluationFilters) -> Quality:
    return quality_of(read_tally(db, filters, [facts.RESPONSES, facts.PAIRED, facts.SECOND]))


DERIVED = (
    facts.RESPONSES,
    facts.PAIRED,
    facts.COMFORT,
    facts.RANKED,
    facts.UP,
    facts.PROFILE,
    facts.SECOND,
)


def collect(
    db: Session,
    definition: Definition,
    filters: EvaluationFilters,
    variables: Sequence[str],
    people: int,
) -> RawIndicators:
    """Every raw count the dashboard needs, from one query over the facts."""
    multiple = frozenset(code for code in variables if definition.item(code).type.several)
    tally = read_tally(db, filters, [*variables, *DERIVED])
    found, answered = distributions_of(tally, variables, multiple)
    return RawIndicators(
        people=people,
        people_by_form=people_by_form_of(tally),
        distributions=found,
        answered=answered,
        pairs=evolution_of(tally, FormKind.AFTER),
        retro=evolution_of(tally, FormKind.RETRO),
        typology=typology_of(tally),
        quality=quality_of(tally),
    )


CHANNELS = tuple(channel.value for channel in Channel)
