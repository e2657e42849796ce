"""The dashboard's raw counts, all computed in SQL (GROUP BY / COUNT), never row by row.

A handful of queries cover the whole dashboard, whatever the number of items: one for every
answer distribution, one for their bases, one per evolution measure (pairs, retrospective),
one for the typology, a few for data quality. Each returns a few hundred aggregated rows at
most. Counts here are raw: `dashboard.py` builds the tables and `disclosure.protect` hides
small cells before anything is shown.

Who is counted:
- a *person* is a beneficiary with at least one submitted response in scope
  (`scope.response_conditions`); each person has at most one response per form, so counting
  responses of one form counts people;
- items asked in the 'before' and retrospective forms (the profile) and items asked in the
  'after' and retrospective forms (the path, the evolution) are answered once per person:
  their counts add up over forms;
- *pairs*: a submitted 'after' in scope and the same person's submitted 'before' (the
  before may fall outside the date range: the after dates the pair);
- *retrospective*: a retrospective form in scope, "before" being its *_PRE answers.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, distinct, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from selfcheck.evaluation import indicators, paired
from selfcheck.evaluation.headline import PATH_FORMS, PROFILE_FORMS
from selfcheck.evaluation.paired import Matrices
from selfcheck.evaluation.scope import EvaluationFilters, response_conditions
from selfcheck.platform.models import Answer, Channel, Response, SecondEntry, Status
from selfcheck.questionnaire.model import (
    NO_ANSWER,
    PRE_SUFFIX,
    Definition,
    FormKind,
    Indicator,
    Item,
    Option,
    Role,
    Tag,
)

ALONE_RANK = 3  # "on my own" and above on the autonomy ladder

# (variable, form) -> value -> count of responses (= people for one form)
Distributions = dict[tuple[str, str], dict[str, int]]


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


def distributions(
    db: Session,
    filters: EvaluationFilters,
    variables: Sequence[str],
    multiple: frozenset[str] = frozenset(),
) -> tuple[Distributions, dict[tuple[str, str], int]]:
    """Value counts and bases (responses with a real answer) of many variables: two queries.

    `multiple`: the variables that are multiple choices (several rows per response).
    """
    where = [*response_conditions(filters), Answer.variable.in_(variables)]
    counted = db.execute(
        select(Answer.variable, Answer.value, Response.form, func.count())
        .join(Response, Response.id == Answer.response_id)
        .where(*where, Answer.value != NO_ANSWER)
        .group_by(Answer.variable, Answer.value, Response.form)
    )
    found: Distributions = defaultdict(dict)
    for variable, value, form, number in counted:
        found[(variable, form)][value] = int(number)
    # A single choice's base is the sum of its values; only multiple choices need a count of
    # the responses that chose anything.
    answered = {
        (variable, form): sum(values.values())
        for (variable, form), values in found.items()
        if variable not in multiple
    }
    if multiple:
        bases = db.execute(
            select(Answer.variable, Response.form, func.count(distinct(Answer.response_id)))
            .join(Response, Response.id == Answer.response_id)
            .where(
                *response_conditions(filters),
                Answer.variable.in_(sorted(multiple)),
                Answer.value != NO_ANSWER,
            )
            .group_by(Answer.variable, Response.form)
        )
        answered.update({(variable, form): int(number) for variable, form, number in bases})
    return dict(found), answered


def people_by_form(db: Session, filters: EvaluationFilters) -> dict[str, int]:
    rows = db.execute(
        select(Response.form, func.count())
        .where(*response_conditions(filters))
        .group_by(Response.form)
    )
    return {form: int(number) for form, number in rows}


def _rank_case(column: Any, ranks: Mapping[str, int]) -> ColumnElement[int]:
    return case(*((column == code, literal(rank)) for code, rank in ranks.items()), else_=None)


def _ranks(options: Sequence[Option]) -> dict[str, int]:
    return {o.code: o.rank for o in options if o.rank is not None}


def evolution(
    db: Session, definition: Definition, filters: EvaluationFilters, kind: FormKind
) -> Evolution:
    """Comfort and task progress of pairs (kind AFTER) or retrospective forms (kind RETRO)."""
    then_answer, now_answer = aliased(Answer), aliased(Answer)
    now_scope = (
        select(Response.id, Response.beneficiary_id)
        .where(*response_conditions(filters), Response.form == kind.value)
        .subquery()
    )
    if kind is FormKind.AFTER:
        before = aliased(Response)
        source = (
            select(
                now_scope.c.beneficiary_id.label("person"),
                before.id.label("then_id"),
                now_scope.c.id.label("now_id"),
            )
            .join(
                before,
                and_(
                    before.beneficiary_id == now_scope.c.beneficiary_id,
                    before.form == FormKind.BEFORE.value,
                    before.status == Status.SUBMITTED.value,
                ),
            )
            .subquery()
        )
        suffix = ""
    else:
        source = select(
            now_scope.c.beneficiary_id.label("person"),
            now_scope.c.id.label("then_id"),
            now_scope.c.id.label("now_id"),
        ).subquery()
        suffix = PRE_SUFFIX
    joined = (
        select(source.c.person)
        .join(then_answer, then_answer.response_id == source.c.then_id)
        .join(
            now_answer,
            and_(
                now_answer.response_id == source.c.now_id,
                then_answer.variable == now_answer.variable + suffix,
            ),
        )
    )
    comfort_item = definition.item_with_role(Role.COMFORT)
    comfort_code = comfort_item.code if comfort_item else ""
    comfort_ranks = _ranks(comfort_item.options if comfort_item else ())
    comfort_rows = db.execute(
        joined.with_only_columns(
            then_answer.value, now_answer.value, func.count(distinct(source.c.person))
        )
        .where(
            now_answer.variable == comfort_code,
            # Redundant with the join, but lets the planner read both sides by variable.
            then_answer.variable == comfort_code + suffix,
        )
        .group_by(then_answer.value, now_answer.value)
    )
    comfort: dict[tuple[int, int], int] = defaultdict(int)
    for then_value, now_value, number in comfort_rows:
        if then_value in comfort_ranks and now_value in comfort_ranks:
            comfort[(comfort_ranks[then_value], comfort_ranks[now_value])] += int(number)

    tasks = definition.task_items()
    ladder = {o.code: o.rank for o in tasks[0].options if o.rank is not None} if tasks else {}
    competence = case(
        *((now_answer.variable == item.code, literal(item.competence)) for item in tasks),
        else_=None,
    )
    then_rank = _rank_case(then_answer.value, ladder)
    now_rank = _rank_case(now_answer.value, ladder)
    progressed = case((now_rank > then_rank, source.c.person), else_=None)
    rows = db.execute(
        joined.with_only_columns(
            competence.label("competence"),
            func.count(distinct(source.c.person)),
            func.count(distinct(progressed)),
        )
        .where(
            now_answer.variable.in_([item.code for item in tasks]),
            then_answer.variable.in_([item.code + suffix for item in tasks]),
            then_answer.value.in_(list(ladder)),
            now_answer.value.in_(list(ladder)),
        )
        .group_by(competence)
    )
    people: dict[str, int] = {}
    moved: dict[str, int] = {}
    for code, number, up in rows:
        if code is not None:
            people[str(code)] = int(number)
            moved[str(code)] = int(up)
    return Evolution(dict(comfort), people, moved)


def typology_counts(
    db: Session, definition: Definition, filters: EvaluationFilters
) -> dict[str, int]:
    """People per profile, by the answer-based SQL (each person's profile pivoted from their
    answers, `indicators.typology_people`), counted."""
    return dict(Counter(indicators.typology_people(db, definition, filters).values()))


def quality(db: Session, filters: EvaluationFilters) -> Quality:
    after = aliased(Response)
    has_after = (
        select(after.id)
        .where(
            after.beneficiary_id == Response.beneficiary_id,
            after.form == FormKind.AFTER.value,
            after.status == Status.SUBMITTED.value,
        )
        .exists()
    )
    befores, paired = db.execute(
        select(func.count(), func.coalesce(func.sum(case((has_after, 1), else_=0)), 0)).where(
            *response_conditions(filters), Response.form == FormKind.BEFORE.value
        )
    ).one()
    channels = {
        (form, channel): int(number)
        for form, channel, number in db.execute(
            select(Response.form, Response.channel, func.count())
            .where(*response_conditions(filters))
            .group_by(Response.form, Response.channel)
        )
    }
    entries, compared, differing = db.execute(
        select(
            func.count(SecondEntry.id),
            func.coalesce(func.sum(SecondEntry.compared_fields), 0),
            func.coalesce(func.sum(SecondEntry.differing_fields), 0),
        )
        .join(Response, Response.id == SecondEntry.response_id)
        .where(*response_conditions(filters), SecondEntry.completed_at.is_not(None))
    ).one()
    return Quality(
        int(befores),
        int(paired or 0),
        channels,
        int(entries),
        int(compared or 0),
        int(differing or 0),
    )


def collect(
    db: Session,
    definition: Definition,
    filters: EvaluationFilters,
    variables: Sequence[str],
    people: int,
) -> RawIndicators:
    """Every raw count the dashboard needs (about ten queries in all)."""
    multiple = frozenset(code for code in variables if definition.item(code).type.several)
    found, answered = distributions(db, filters, variables, multiple)
    return RawIndicators(
        people=people,
        people_by_form=people_by_form(db, filters),
        distributions=found,
        answered=answered,
        pairs=evolution(db, definition, filters, FormKind.AFTER),
        retro=evolution(db, definition, filters, FormKind.RETRO),
        typology=typology_counts(db, definition, filters),
        quality=quality(db, filters),
    )


CHANNELS = tuple(channel.value for channel in Channel)


# --- the paired matrices (evaluation/paired.py), from the answers --------------------------


def _source(filters: EvaluationFilters, kind: FormKind) -> tuple[Any, str]:
    """(person, then_id, now_id) of the pairs (kind AFTER) or retrospective forms (RETRO)."""
    now_scope = (
        select(Response.id, Response.beneficiary_id)
        .where(*response_conditions(filters), Response.form == kind.value)
        .subquery()
    )
    if kind is FormKind.AFTER:
        before = aliased(Response)
        source = (
            select(
                now_scope.c.beneficiary_id.label("person"),
                before.id.label("then_id"),
                now_scope.c.id.label("now_id"),
            )
            .join(
                before,
                and_(
                    before.beneficiary_id == now_scope.c.beneficiary_id,
                    before.form == FormKind.BEFORE.value,
                    before.status == Status.SUBMITTED.value,
                ),
            )
            .subquery()
        )
        return source, ""
    source = select(
        now_scope.c.beneficiary_id.label("person"),
        now_scope.c.id.label("then_id"),
        now_scope.c.id.label("now_id"),
    ).subquery()
    return source, PRE_SUFFIX


def _ladder_ranks(tasks: tuple[Item, ...]) -> dict[str, int]:
    return {o.code: o.rank for o in tasks[0].options if o.rank is not None} if tasks else {}


def matrices(
    db: Session, definition: Definition, filters: EvaluationFilters, kind: FormKind
) -> Matrices:
    """The before x after matrices of the comfort item and the tasks (two queries): what
    `paired.matrices` read from the answers before the facts kept them."""
    source, suffix = _source(filters, kind)
    then_answer, now_answer = aliased(Answer), aliased(Answer)
    joined: Select[Any] = (
        select(source.c.person)
        .join(then_answer, then_answer.response_id == source.c.then_id)
        .join(
            now_answer,
            and_(
                now_answer.response_id == source.c.now_id,
                then_answer.variable == now_answer.variable + suffix,
            ),
        )
    )
    tasks = definition.task_items()
    comfort = definition.item_with_role(Role.COMFORT)
    items = [*tasks, *([comfort] if comfort is not None else [])]
    codes = [item.code for item in items]
    by_item: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    if codes:
        rows = db.execute(
            joined.with_only_columns(
                now_answer.variable, then_answer.value, now_answer.value, func.count()
            )
            .where(
                now_answer.variable.in_(codes),
                then_answer.variable.in_([code + suffix for code in codes]),
            )
            .group_by(now_answer.variable, then_answer.value, now_answer.value)
        )
        for code, then_value, now_value, number in rows:
            by_item[str(code)][(str(then_value), str(now_value))] = int(number)
    by_competence: dict[str, dict[tuple[int, int], int]] = defaultdict(dict)
    ladder = _ladder_ranks(tasks)
    if tasks and ladder:
        competence = case(
            *((now_answer.variable == item.code, literal(item.competence)) for item in tasks),
            else_=None,
        )
        then_rank = case(
            *((then_answer.value == code, literal(rank)) for code, rank in ladder.items()),
            else_=None,
        )
        now_rank = case(
            *((now_answer.value == code, literal(rank)) for code, rank in ladder.items()),
            else_=None,
        )
        per_person = (
            joined.with_only_columns(
                source.c.person,
                competence.label("competence"),
                func.sum(then_rank).label("then_sum"),
                func.sum(now_rank).label("now_sum"),
            )
            .where(
                now_answer.variable.in_([item.code for item in tasks]),
                then_answer.variable.in_([item.code + suffix for item in tasks]),
                then_answer.value.in_(list(ladder)),
                now_answer.value.in_(list(ladder)),
            )
            .group_by(source.c.person, competence)
            .subquery()
        )
        rows = db.execute(
            select(
                per_person.c.competence,
                per_person.c.then_sum,
                per_person.c.now_sum,
                func.count(),
            ).group_by(per_person.c.competence, per_person.c.then_sum, per_person.c.now_sum)
        )
        for code, then_sum, now_sum, number in rows:
            if code is not None:
                by_competence[str(code)][(int(then_sum), int(now_sum))] = int(number)
    return Matrices(
        {code: dict(matrix) for code, matrix in by_item.items()},
        {code: dict(matrix) for code, matrix in by_competence.items()},
    )


# --- the headline's counts (evaluation/headline.py), from the answers ---------------------------


def _forms(forms: Sequence[FormKind]) -> ColumnElement[bool]:
    return Response.form.in_([form.value for form in forms])


def _people(db: Session, filters: EvaluationFilters, *where: ColumnElement[bool]) -> int:
    query = (
        select(func.count(distinct(Response.beneficiary_id)))
        .join(Answer, Answer.response_id == Response.id)
        .where(*response_conditions(filters), *where)
    )
    return int(db.scalar(query) or 0)


def _answered(item: Item, forms: Sequence[FormKind]) -> list[ColumnElement[bool]]:
    """People who gave the item a real answer (not blank, not "I'd rather not say")."""
    return [
        _forms(forms),
        Answer.variable == item.code,
        Answer.value != NO_ANSWER,
        Answer.value.not_in(item.tagged(Tag.DECLINED)),
    ]


def _tagged(
    db: Session,
    filters: EvaluationFilters,
    item: Item | None,
    tags: Sequence[Tag],
    forms: Sequence[FormKind],
) -> tuple[int, int] | None:
    """(people with an option tagged with one of `tags`, people who answered)."""
    if item is None:
        return None
    codes = [code for tag in tags for code in item.tagged(tag)]
    base = _people(db, filters, *_answered(item, forms))
    return _people(db, filters, *_answered(item, forms), Answer.value.in_(codes)), base


def _switch_before(
    db: Session, filters: EvaluationFilters, item: Item | None
) -> tuple[int, int] | None:
    """People below "on my own" on the task before (first form or retrospective "before")."""
    if item is None:
        return None
    ranks = {o.code: o.rank for o in item.options if o.rank is not None}
    before = or_(
        and_(Response.form == FormKind.BEFORE.value, Answer.variable == item.code),
        and_(Response.form == FormKind.RETRO.value, Answer.variable == item.code + PRE_SUFFIX),
    )
    base = _people(db, filters, before, Answer.value.in_(list(ranks)))
    below = [code for code, rank in ranks.items() if rank < paired.ALONE_RANK]
    return _people(db, filters, before, Answer.value.in_(below)), base


def _only_topic(
    db: Session, filters: EvaluationFilters, item: Item | None
) -> tuple[int, int] | None:
    """People whose only topic ticked is tagged `procedures`, among those who ticked any."""
    if item is None:
        return None
    procedures = list(item.tagged(Tag.PROCEDURES))
    per_response = (
        select(
            Response.beneficiary_id.label("person"),
            func.count().label("topics"),
            func.sum(case((Answer.value.in_(procedures), 1), else_=0)).label("procedures"),
        )
        .join(Answer, Answer.response_id == Response.id)
        .where(*response_conditions(filters), *_answered(item, PATH_FORMS))
        .group_by(Response.id, Response.beneficiary_id)
        .subquery()
    )
    only = select(func.count(distinct(per_response.c.person))).where(
        per_response.c.topics == 1, per_response.c.procedures == 1
    )
    base = _people(db, filters, *_answered(item, PATH_FORMS))
    return int(db.scalar(only) or 0), base


def _pairs(db: Session, filters: EvaluationFilters) -> tuple[int, int]:
    """(people with a 'before' in scope and their 'after' submitted, people with a 'before')."""
    after = aliased(Response)
    has_after = (
        select(after.id)
        .where(
            after.beneficiary_id == Response.beneficiary_id,
            after.form == FormKind.AFTER.value,
            after.status == Status.SUBMITTED.value,
        )
        .exists()
    )
    befores = select(func.count(distinct(Response.beneficiary_id))).where(
        *response_conditions(filters), Response.form == FormKind.BEFORE.value
    )
    completed = befores.where(has_after)
    return int(db.scalar(completed) or 0), int(db.scalar(befores) or 0)


def _paper(db: Session, filters: EvaluationFilters, people: int) -> tuple[int, int]:
    query = select(func.count(distinct(Response.beneficiary_id))).where(
        *response_conditions(filters), Response.channel == Channel.PAPER.value
    )
    return int(db.scalar(query) or 0), people


def headline_counts(
    db: Session, definition: Definition, filters: EvaluationFilters, people: int
) -> dict[str, tuple[int, int] | None]:
    """(count, base) of every share figure; None where the questionnaire lacks the item."""
    item = definition.item_with_role
    return {
        "pairs": _pairs(db, filters),
        "aged_60_plus": _tagged(db, filters, item(Role.AGE), [Tag.SENIOR], PROFILE_FORMS),
        "women": _tagged(db, filters, item(Role.GENDER), [Tag.FEMININE], PROFILE_FORMS),
        "below_bac": _tagged(
            db, filters, item(Role.DIPLOMA), [Tag.BELOW_BACCALAUREATE], PROFILE_FORMS
        ),
        "internet_at_home": _tagged(
            db, filters, item(Role.INTERNET_HOME), [Tag.YES], PROFILE_FORMS
        ),
        "switch_device": _switch_before(
            db, filters, definition.item_with_indicator(Indicator.SWITCH_DEVICE)
        ),
        "procedures_among_topics": _tagged(
            db, filters, item(Role.TOPICS), [Tag.PROCEDURES], PATH_FORMS
        ),
        "procedures_only_topic": _only_topic(db, filters, item(Role.TOPICS)),
        "new_things": _tagged(db, filters, item(Role.NEW_THINGS), [Tag.YES], PATH_FORMS),
        "progress": _progress(db, filters, item(Role.PROGRESS)),
        "paper": _paper(db, filters, people),
    }


def _progress(db: Session, filters: EvaluationFilters, item: Item | None) -> tuple[int, int] | None:
    """People who felt some progress, among those who said yes or no (tags)."""
    if item is None:
        return None
    yes, no = item.tagged(Tag.PROGRESS_YES), item.tagged(Tag.PROGRESS_NO)
    where = [_forms(PATH_FORMS), Answer.variable == item.code]
    base = _people(db, filters, *where, Answer.value.in_([*yes, *no]))
    return _people(db, filters, *where, Answer.value.in_(yes)), base
