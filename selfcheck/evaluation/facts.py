"""Dashboard facts, kept up to date in the transaction of every write (issue 18).

Aggregating every answer of 100,000 people took seconds; the dashboard now reads two small
derived tables instead (models `ResponseFact` and `FactTally`):

- `response_fact`: one row per submitted response, with what it says about its person (the
  profile answers, comfort and tasks then and now, pair complete, typology profile, second
  entry counts) and the lines (`tally`) it adds to the counts below;
- `fact_tally`: those lines added up per structure, month, form and channel, and again per
  structure, form and channel for all months (`ALL_MONTHS`): the dashboard's filters select
  exactly such cells, so its figures are sums over a few thousand rows.

**When they change.** `install` hooks a session factory: every write to an answer, a
response, a second entry or a beneficiary, whether through ORM objects (flush) or SQL
statements run by the session (`session.execute(delete(Answer)…)`), records the people it
touches, and just before the transaction commits their facts are recomputed from their
answers (`refresh`): the old rows' tally lines are subtracted, the new ones added. Writers
need not know the facts exist, so a new writer cannot forget them. Data written around the
session (raw SQL on a connection, as the benchmarks' bulk loads do) needs `rebuild`, as does
a change of the questionnaire definition or of the typology rule (`selfcheck facts rebuild`).

**Tally keys.** A variable code (an item with a role, not free text) counts its answer
values, `NO_ANSWER` left out; a multiple choice also counts `ANSWERED` (the response chose
something). Derived keys start with "@" (item codes cannot): see the constants below.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    union_all,
)
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, aliased, sessionmaker

from selfcheck.evaluation import typology
from selfcheck.platform import db as platform_db
from selfcheck.platform.models import (
    Answer,
    Beneficiary,
    DataVersion,
    FactCell,
    FactFollowup,
    FactTally,
    Response,
    ResponseFact,
    SecondEntry,
    Status,
)
from selfcheck.platform.written import matching_ids, written_ids
from selfcheck.questionnaire.model import (
    END_FORMS,
    FOLLOWUP_FORMS,
    NO_ANSWER,
    PRE_SUFFIX,
    Definition,
    FormKind,
    Role,
    Tag,
)

ALONE_RANK = 3  # "on my own" and above on the autonomy ladder

RESPONSES = "@n"  # value "": one per submitted response
ANSWERED = "*"  # value of a multiple choice's variable: the response chose something
PAIRED = "@paired"  # value "1": a 'before' whose person has a submitted 'after'
COMFORT = "@comfort"  # value "then>now" (ranks): an 'after' with its 'before', or a retro form
RANKED = "@ranked"  # value a competence: a task of this type ranked then and now
UP = "@up"  # value a competence: at least one such task moved up
PROFILE = "@profile"  # value a typology profile: the person's 'before' or retro form
SECOND = "@second"  # values "entries", "compared", "differing": a completed second entry
# The paired matrices (evaluation/paired.py), on an 'after' with its 'before' or a retro form:
PAIR = "@pair"  # value "item:then>now" (answer codes) of the comfort item and of each task
RANK_SUM = "@ranksum"  # value "competence:then>now": sums of the rungs of the tasks of that
# type placed on the ladder both times
# The headline's figures (evaluation/headline.py), on every form:
REAL = "@real"  # value a multiple choice: the response chose something, "declined" left out
TAGGED = "@tagged"  # value "item:tag" (a multiple choice): one of its choices has the tag
ONLY = "@only"  # value "item:tag" (a multiple choice): a single choice, and it has the tag
THEN = "@then"  # value "item:rung": a task's rung before ('before' and retrospective forms)

# Columns of `response_fact` holding the answer of the item with this role.
COLUMN_ROLES: Mapping[str, Role] = {
    "age": Role.AGE,
    "gender": Role.GENDER,
    "diploma": Role.DIPLOMA,
    "internet_home": Role.INTERNET_HOME,
    "status": Role.STATUS,
    "prescribed": Role.PRESCRIBER,
}
PROFILE_FORMS = frozenset({FormKind.BEFORE.value, FormKind.RETRO.value})
CHUNK = 500  # people per refresh query
PENDING = "selfcheck.facts.pending"

TallyLine = tuple[str, str, int]
CellOf = tuple[int, str, str, str]  # structure, month, form, channel (fact_cell)
CellKey = tuple[int, str, str, str, str, str]  # structure, month, form, channel, key, value


@dataclass(frozen=True)
class Plan:
    """What the facts read from a definition, found by role."""

    tallied: frozenset[str]  # variables whose values are counted
    several: frozenset[str]  # of which multiple choices
    read: tuple[str, ...]  # every variable the facts read
    columns: Mapping[str, str]  # response_fact column -> item code
    comfort: str | None
    comfort_ranks: Mapping[str, int]
    tasks: tuple[tuple[str, str], ...]  # (item code, competence)
    matrix_items: tuple[str, ...]  # the items of the paired matrices: the tasks, the comfort
    declined: Mapping[str, frozenset[str]]  # multiple choice -> its "declined" options
    tags: Mapping[str, tuple[tuple[str, frozenset[str]], ...]]  # multiple choice -> (tag, options)
    ladder: Mapping[str, int]
    typology: frozenset[str]  # the variables the typology's facts are read from
    # The follow-up figures (evaluation/retention.py): each task's rung per answer code (0: not
    # on the ladder), and the tasks that have a competence type.
    task_rungs: Mapping[str, Mapping[str, int]]
    competences: tuple[tuple[str, str], ...]  # (item code, competence), competence set


@lru_cache(maxsize=8)
def plan(definition: Definition) -> Plan:
    items = {v.code: v.item for form in FormKind for v in definition.variables(form)}
    tallied = frozenset(
        code for code, item in items.items() if item.role is not None and not item.type.free_text
    )
    columns = {
        column: item.code
        for column, role in COLUMN_ROLES.items()
        if (item := definition.item_with_role(role)) is not None
    }
    comfort = definition.item_with_role(Role.COMFORT)
    tasks = definition.task_items()
    ladder = {o.code: o.rank for o in tasks[0].options if o.rank is not None} if tasks else {}
    profile_variables = frozenset(
        variable for source in typology.sources(definition) for _form, variable in source.answers
    )
    codes = {*tallied, *columns.values()}
    codes |= {item.code for item in tasks}
    if comfort is not None:
        codes.add(comfort.code)
    read = {code for base in codes for code in (base, base + PRE_SUFFIX)} | profile_variables
    return Plan(
        tallied=tallied,
        several=frozenset(code for code in tallied if items[code].type.several),
        read=tuple(sorted(read)),
        columns=columns,
        comfort=comfort.code if comfort else None,
        comfort_ranks={o.code: o.rank for o in comfort.options if o.rank is not None}
        if comfort
        else {},
        tasks=tuple((item.code, item.competence or "") for item in tasks),
        matrix_items=(*(item.code for item in tasks), *((comfort.code,) if comfort else ())),
        declined={
            code: frozenset(items[code].tagged(Tag.DECLINED))
            for code in tallied
            if items[code].type.several
        },
        tags={
            code: tuple(
                (tag.value, frozenset(items[code].tagged(tag)))
                for tag in sorted(
                    {t for o in items[code].options for t in o.tags} - {Tag.DECLINED},
                    key=lambda t: t.value,
                )
            )
            for code in tallied
            if items[code].type.several
        },
        ladder=ladder,
        typology=profile_variables,
        task_rungs={item.code: {o.code: o.rank or 0 for o in item.options} for item in tasks},
        competences=tuple((item.code, item.competence) for item in tasks if item.competence),
    )


# --- one person's facts, in Python -----------------------------------------------------------

Answers = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Submitted:
    """A submitted response and what the facts read of it."""

    id: int
    beneficiary_id: int
    structure_id: int
    form: str
    channel: str
    submitted_at: datetime | None
    answers: Answers
    second: tuple[int, int] | None  # (compared, differing) of a completed second entry


# The month of the cells that add up every month: the dashboard's first view (no dates) reads
# these only, several times fewer rows than the months'.
ALL_MONTHS = ""
NO_MONTH = "0000-00"  # a submitted response without its time (old rows): no date filter keeps it


def month_of(moment: datetime | date | None) -> str:
    if moment is None:
        return NO_MONTH
    if isinstance(moment, datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        return f"{moment.year:04d}-{moment.month:02d}"
    return f"{moment.year:04d}-{moment.month:02d}"


def _one(answers: Answers | None, code: str | None) -> str | None:
    """The real answer of a single-valued variable, None when missing or "no answer"."""
    if answers is None or code is None:
        return None
    for value in answers.get(code, ()):
        if value != NO_ANSWER:
            return value
    return None


# Profiles already classified, per definition and facts (a few thousand combinations at most).
_PROFILES: dict[tuple[int, tuple[tuple[str, str], ...]], str] = {}


def _person_profile(definition: Definition, responses: Sequence[Submitted]) -> str | None:
    """The person's typology profile from all their submitted answers (`typology.person_facts`:
    the modality comes from the after form), None when not counted."""
    answers = (
        (response.form, code, value)
        for response in responses
        for code, values in response.answers.items()
        for value in values
    )
    facts = typology.person_facts(answers, definition)
    if facts is None:
        return None
    key = (id(definition), tuple(sorted(facts.items())))
    found = _PROFILES.get(key)
    if found is None:
        if len(_PROFILES) > 100_000:
            _PROFILES.clear()
        found = _PROFILES[key] = typology.classify(facts, definition).value
    return found


def _profile_holder(responses: Sequence[Submitted]) -> int | None:
    """The response that carries the person's profile (counted once): their 'before' form,
    else their retrospective one."""
    for form in typology.PROFILE_FORMS:
        for response in responses:
            if response.form == form.value:
                return response.id
    return None


def person_rows(
    plan: Plan, definition: Definition, responses: Sequence[Submitted]
) -> list[dict[str, Any]]:
    """The `response_fact` rows of one person's submitted responses."""
    by_form = {response.form: response for response in responses}
    holder = _profile_holder(responses)
    person_profile = _person_profile(definition, responses) if holder is not None else None
    lasting = followup_facts(plan, responses)
    return [
        _response_row(
            plan, response, by_form, person_profile if response.id == holder else None, lasting
        )
        for response in responses
    ]


Moments = tuple[Answers | None, Answers | None, bool, str]  # then, now, paired, suffix


def _moments(form: FormKind, own: Answers, by_form: Mapping[str, Submitted]) -> Moments:
    """The answers a response's change is read between (then, now), whether the person's
    before and after forms make a pair, and the suffix of the "then" answers' codes."""
    before = by_form.get(FormKind.BEFORE.value)
    after = by_form.get(FormKind.AFTER.value)
    if form is FormKind.BEFORE:
        return own, None, after is not None, ""
    if form is FormKind.AFTER:
        return (before.answers if before else None), own, before is not None, ""
    if form is FormKind.RETRO:
        return own, own, False, PRE_SUFFIX
    return None, own, False, ""  # a follow-up, months later: read by evaluation/retention.py


def _answer_tally(plan: Plan, own: Answers) -> dict[tuple[str, str], int]:
    """The tally lines of a response's own answers: each value once (but "no answer"), and
    the choice lines of the questions with several answers."""
    tally: dict[tuple[str, str], int] = {(RESPONSES, ""): 1}
    for code, values in own.items():
        if code not in plan.tallied:
            continue
        real = 0
        for value in values:  # each value once (uq_answer_value)
            if value != NO_ANSWER:
                tally[(code, value)] = tally.get((code, value), 0) + 1
                real += 1
        if real and code in plan.several:
            tally[(code, ANSWERED)] = 1
            _choice_lines(plan, tally, code, values)
    return tally


Ranks = list[tuple[str, int | None, int | None]]  # competence, rung then, rung now


def _evolution_lines(
    plan: Plan,
    tally: dict[tuple[str, str], int],
    comforts: tuple[int | None, int | None],
    ranks: Ranks,
    moments: Moments,
) -> None:
    """The tally lines of a change between then and now: comfort, tasks ranked and up."""
    then, now, _paired, suffix = moments
    then_comfort, now_comfort = comforts
    if then_comfort is not None and now_comfort is not None:
        tally[(COMFORT, f"{then_comfort}>{now_comfort}")] = 1
    for competence, then_rank, now_rank in ranks:
        if then_rank is not None and now_rank is not None:
            tally[(RANKED, competence)] = 1
            if now_rank > then_rank:
                tally[(UP, competence)] = 1
    _matrix_lines(plan, tally, then, now, suffix, ranks)


def _response_row(
    plan: Plan,
    response: Submitted,
    by_form: Mapping[str, Submitted],
    profile: str | None,
    lasting: Lasting,
) -> dict[str, Any]:
    """One response's `response_fact` row (`profile`: the person's, on the response holding
    it)."""
    form = FormKind(response.form)
    own = response.answers
    tally = _answer_tally(plan, own)
    moments = then, now, paired, suffix = _moments(form, own, by_form)
    if form is FormKind.BEFORE and paired:
        tally[(PAIRED, "1")] = 1
    comfort = plan.comfort
    then_comfort = plan.comfort_ranks.get(_one(then, comfort and comfort + suffix) or "")
    now_comfort = plan.comfort_ranks.get(_one(now, comfort) or "")
    ranks: Ranks = [
        (
            competence,
            plan.ladder.get(_one(then, code + suffix) or ""),
            plan.ladder.get(_one(now, code) or ""),
        )
        for code, competence in plan.tasks
    ]
    evolution = form is not FormKind.BEFORE and then is not None
    ranked = sum(1 for _c, t, n in ranks if t is not None and n is not None)
    if evolution:
        _evolution_lines(plan, tally, (then_comfort, now_comfort), ranks, moments)
    if response.form in PROFILE_FORMS:
        for (code, _competence), (_c, rung, _n) in zip(plan.tasks, ranks, strict=True):
            if rung is not None:
                tally[(THEN, f"{code}:{rung}")] = 1
    if profile is not None:
        tally[(PROFILE, profile)] = 1
    if response.second is not None:
        compared, differing = response.second
        tally[(SECOND, "entries")] = 1
        tally[(SECOND, "compared")] = compared
        tally[(SECOND, "differing")] = differing
    return {
        "response_id": response.id,
        "beneficiary_id": response.beneficiary_id,
        "structure_id": response.structure_id,
        "form": response.form,
        "channel": response.channel,
        "submitted_at": response.submitted_at,
        "month": month_of(response.submitted_at),
        **{
            column: _one(own, code) if response.form in PROFILE_FORMS else None
            for column, code in plan.columns.items()
        },
        **{column: None for column in COLUMN_ROLES if column not in plan.columns},
        "comfort_then": then_comfort,
        "comfort_now": now_comfort,
        "tasks_then": _alone(then, (t for _c, t, _n in ranks)),
        "tasks_now": _alone(now, (n for _c, _t, n in ranks)),
        "tasks_ranked": ranked if evolution else None,
        "paired": paired,
        "profile": profile,
        "compared_fields": response.second[0] if response.second else None,
        "differing_fields": response.second[1] if response.second else None,
        "ended_at": lasting.ended_at,
        "followed": lasting.followed,
        "kept": lasting.kept if response.id == lasting.read else None,
        "tally": format_tally(
            (key, value, number) for (key, value), number in tally.items() if number
        ),
    }


@dataclass(frozen=True)
class Lasting:
    """What the follow-up figures (evaluation/retention.py) read of one person."""

    ended_at: datetime | None  # their first end form's sending time: none, no figure
    followed: bool  # they sent a follow-up
    read: int | None  # the follow-up whose answers are compared: the latest sent
    kept: str | None  # per competence with a gain, whether every gain was kept ("c:1,d:0")


def followup_facts(plan: Plan, responses: Sequence[Submitted]) -> Lasting:
    """The follow-up facts of one person's submitted responses (in id order): a task is a gain
    when its rung at the end (the after form, or the retrospective form) is above its rung
    before (the before form, or the retrospective form's "before" answers), kept when the
    rung of the latest follow-up sent is at least the end's (`retention.kept_gains`)."""
    sent: dict[FormKind, datetime] = {}
    for response in responses:
        if response.submitted_at is not None:
            sent[FormKind(response.form)] = response.submitted_at
    ends = [sent[form] for form in END_FORMS if form in sent]
    if not ends:
        return Lasting(None, False, None, None)
    followed = any(form in sent for form in FOLLOWUP_FORMS)
    read_form = next((form for form in reversed(FOLLOWUP_FORMS) if form in sent), None)
    if read_form is None:
        return Lasting(min(ends), followed, None, None)
    read = [r.id for r in responses if r.form == read_form.value][-1]
    before: dict[str, int] = {}
    end: dict[str, int] = {}
    later: dict[str, int] = {}
    for response in responses:
        form = FormKind(response.form)
        given = {
            variable: plan.task_rungs[variable.removesuffix(PRE_SUFFIX)].get(values[-1], 0)
            for variable, values in response.answers.items()
            if values and variable.removesuffix(PRE_SUFFIX) in plan.task_rungs
        }
        if form is FormKind.BEFORE:
            before.update(given)
        elif form is FormKind.AFTER:
            end.update(given)
        elif form is FormKind.RETRO:
            for variable, rung in given.items():
                code = variable.removesuffix(PRE_SUFFIX)
                (before if variable.endswith(PRE_SUFFIX) else end)[code] = rung
        else:  # a follow-up: the latest sent is read (both, when the latest has no time)
            latest = next(f for f in reversed(FOLLOWUP_FORMS) if f in sent or f is form)
            if form is latest:
                later.update(given)
    verdicts: dict[str, bool] = {}
    for code, competence in plan.competences:
        then, now, after = before.get(code, 0), end.get(code, 0), later.get(code, 0)
        if not (then and now and after) or now <= then:
            continue  # no gain, or a rung missing at one of the three points
        verdicts[competence] = verdicts.get(competence, True) and after >= now
    kept = ",".join(f"{c}:{int(v)}" for c, v in sorted(verdicts.items())) or None
    return Lasting(min(ends), followed, read, kept)


def _choice_lines(
    plan: Plan, tally: dict[tuple[str, str], int], code: str, values: Sequence[str]
) -> None:
    """The headline's lines of a multiple choice: chosen (declined left out), a choice with
    each tag, a single choice with each tag."""
    declined = plan.declined.get(code, frozenset())
    real = [value for value in values if value != NO_ANSWER and value not in declined]
    if not real:
        return
    tally[(REAL, code)] = 1
    for tag, options in plan.tags.get(code, ()):
        if any(value in options for value in real):
            tally[(TAGGED, f"{code}:{tag}")] = 1
            if len(real) == 1:
                tally[(ONLY, f"{code}:{tag}")] = 1


def _matrix_lines(
    plan: Plan,
    tally: dict[tuple[str, str], int],
    then: Answers | None,
    now: Answers | None,
    suffix: str,
    ranks: Sequence[tuple[str, int | None, int | None]],
) -> None:
    """The lines of the paired matrices (`paired.matrices_of` reads them): every answer before
    x every answer now of each item, and per competence the sums of the rungs of its tasks
    placed on the ladder both times."""
    if then is None or now is None:
        return
    for code in plan.matrix_items:
        for then_value in then.get(code + suffix, ()):
            for now_value in now.get(code, ()):
                line = (PAIR, f"{code}:{then_value}>{now_value}")
                tally[line] = tally.get(line, 0) + 1
    sums: dict[str, tuple[int, int]] = {}
    for competence, then_rank, now_rank in ranks:
        if competence and then_rank is not None and now_rank is not None:
            then_sum, now_sum = sums.get(competence, (0, 0))
            sums[competence] = (then_sum + then_rank, now_sum + now_rank)
    for competence, (then_sum, now_sum) in sums.items():
        tally[(RANK_SUM, f"{competence}:{then_sum}>{now_sum}")] = 1


def _alone(answers: Answers | None, ranks: Iterable[int | None]) -> int | None:
    if answers is None:
        return None
    return sum(1 for rank in ranks if rank is not None and rank >= ALONE_RANK)


def format_tally(lines: Iterable[TallyLine]) -> str:
    return "\n".join(f"{key}\t{value}\t{number}" for key, value, number in sorted(lines))


def parse_tally(text: str) -> Iterator[TallyLine]:
    for line in text.splitlines():
        key, value, number = line.split("\t")
        yield key, value, int(number)


def cells(rows: Iterable[Mapping[str, Any]]) -> Counter[CellKey]:
    """What `rows` add to `fact_tally`: per month, and for all months (`ALL_MONTHS`)."""
    total: Counter[CellKey] = Counter()
    for row in rows:
        structure, form, channel = row["structure_id"], row["form"], row["channel"]
        for key, value, number in parse_tally(row["tally"]):
            total[(structure, row["month"], form, channel, key, value)] += number
            total[(structure, ALL_MONTHS, form, channel, key, value)] += number
    return total


# --- reading answers, writing facts ----------------------------------------------------------


def compute(
    connection: Connection,
    definition: Definition,
    people: ColumnElement[bool],
    *,
    joined: bool = False,
) -> list[dict[str, Any]]:
    """The fact rows of the people whose responses match `people` (a condition on Response).

    `joined`: their responses, answers and second entries read by one statement (each
    response's row repeated with each of its answers: for the few people of a refresh, one
    round trip instead of three on PostgreSQL); else three (a rebuild's thousands of people)."""
    current = plan(definition)
    if joined:
        return _rows_of(current, definition, *_read_joined(connection, current, people))
    responses = connection.execute(
        select(*_RESPONSE_COLUMNS)
        .where(people, Response.status == Status.SUBMITTED.value)
        .order_by(Response.beneficiary_id, Response.id)
    ).all()
    if not responses:
        return []
    answers: dict[int, dict[str, list[str]]] = {}
    for response_id, variable, value in connection.execute(
        select(Answer.response_id, Answer.variable, Answer.value)
        .join(Response, Response.id == Answer.response_id)
        .where(
            people,
            Response.status == Status.SUBMITTED.value,
            Answer.variable.in_(current.read),
        )
    ).all():
        answers.setdefault(response_id, {}).setdefault(variable, []).append(value)
    seconds = {
        response_id: (int(compared), int(differing))
        for response_id, compared, differing in connection.execute(
            select(
                SecondEntry.response_id, SecondEntry.compared_fields, SecondEntry.differing_fields
            )
            .join(Response, Response.id == SecondEntry.response_id)
            .where(
                people,
                Response.status == Status.SUBMITTED.value,
                SecondEntry.completed_at.is_not(None),
            )
        )
    }
    return _rows_of(current, definition, responses, answers, seconds)


# What the facts read of each submitted response (both reads of `compute`).
_RESPONSE_COLUMNS = (
    Response.id,
    Response.beneficiary_id,
    Response.structure_id,
    Response.form,
    Response.channel,
    Response.submitted_at,
)

Read = tuple[
    Sequence[Any], Mapping[int, Mapping[str, Sequence[str]]], Mapping[int, tuple[int, int]]
]


def _read_joined(connection: Connection, current: Plan, people: ColumnElement[bool]) -> Read:
    """`compute`'s three reads as one statement: the submitted responses matching `people`
    (in person and id order), each with its completed second entry and its answers to the
    variables the facts read (in the order they were written)."""
    responses: dict[int, Any] = {}
    answers: dict[int, dict[str, list[str]]] = {}
    seconds: dict[int, tuple[int, int]] = {}
    for row in connection.execute(
        select(
            *_RESPONSE_COLUMNS,
            SecondEntry.compared_fields,
            SecondEntry.differing_fields,
            Answer.variable,
            Answer.value,
        )
        .select_from(Response)
        .outerjoin(
            SecondEntry,
            and_(SecondEntry.response_id == Response.id, SecondEntry.completed_at.is_not(None)),
        )
        .outerjoin(
            Answer, and_(Answer.response_id == Response.id, Answer.variable.in_(current.read))
        )
        .where(people, Response.status == Status.SUBMITTED.value)
        .order_by(Response.beneficiary_id, Response.id, Answer.id)
    ):
        if row.id not in responses:
            responses[row.id] = row
            if row.compared_fields is not None:
                seconds[row.id] = (int(row.compared_fields), int(row.differing_fields))
        if row.variable is not None:
            answers.setdefault(row.id, {}).setdefault(row.variable, []).append(row.value)
    return list(responses.values()), answers, seconds


def _rows_of(
    current: Plan,
    definition: Definition,
    responses: Sequence[Any],
    answers: Mapping[int, Mapping[str, Sequence[str]]],
    seconds: Mapping[int, tuple[int, int]],
) -> list[dict[str, Any]]:
    if not responses:
        return []
    rows: list[dict[str, Any]] = []
    person: list[Submitted] = []
    for response in responses:
        submitted = Submitted(
            id=response.id,
            beneficiary_id=response.beneficiary_id,
            structure_id=response.structure_id,
            form=response.form,
            channel=response.channel,
            submitted_at=response.submitted_at,
            answers=answers.get(response.id, {}),
            second=seconds.get(response.id),
        )
        if person and person[0].beneficiary_id != submitted.beneficiary_id:
            rows += person_rows(current, definition, person)
            person = []
        person.append(submitted)
    rows += person_rows(current, definition, person)
    return rows


COLUMNS = tuple(column.name for column in ResponseFact.__table__.columns)


def _as_row(found: Any) -> dict[str, Any]:
    return {column: getattr(found, column) for column in COLUMNS}


def refresh(session: Session, definition: Definition, people: Iterable[int]) -> None:
    """Recompute the facts of these people from their answers, in the session's transaction."""
    ids = sorted(set(people))
    connection = session.connection()
    key = session_cell_key(session)
    note = session.info.get(SETTLING)
    if isinstance(note, Settling) and len(ids) <= CHUNK and note.locked.issuperset(ids):
        # `settle` locked them (PostgreSQL): the data version is raised with the writes.
        note.bumped = _refresh(connection, definition, ids, key, locked=True, with_bump=True)
        return
    for start in range(0, len(ids), CHUNK):
        _refresh(connection, definition, ids[start : start + CHUNK], key)


SETTLING = "selfcheck.facts.settling"


@dataclass
class Settling:
    """`settle`'s note to `refresh` (in `Session.info`): these people are locked already, and
    the data version may be raised by the facts' writes (`bumped`: it was)."""

    locked: frozenset[int]
    bumped: bool = False


def _same(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> bool:
    def by_id(rows: Sequence[Mapping[str, Any]]) -> dict[Any, tuple[Any, ...]]:
        return {row["response_id"]: tuple(row[column] for column in COLUMNS) for row in rows}

    return by_id(old) == by_id(new)


def _refresh(
    connection: Connection,
    definition: Definition,
    ids: list[int],
    key: bytes,
    *,
    locked: bool = False,
    with_bump: bool = False,
) -> bool:
    """Recompute the facts of `ids` (at most CHUNK people). On PostgreSQL their rows are
    locked first, unless `locked` (`settle` did, with the statuses' read), and the writes
    go as one statement (`_write_postgres`), the data version's raise with them when
    `with_bump`. Returns whether the data version was raised."""
    postgres = connection.dialect.name == "postgresql"
    if postgres and not locked:
        # One refresh of a person at a time: the second reads the first's rows once committed.
        connection.execute(
            select(Beneficiary.id)
            .where(Beneficiary.id.in_(ids))
            .order_by(Beneficiary.id)
            .with_for_update()
        )
    old = [
        _as_row(found)
        for found in connection.execute(
            select(ResponseFact).where(ResponseFact.beneficiary_id.in_(ids))
        )
    ]
    new = compute(connection, definition, Response.beneficiary_id.in_(ids), joined=True)
    if _same(old, new):
        return False
    delta = cells(new)
    delta.subtract(cells(old))
    sums = cell_sums(new, key)
    for cell, values in cell_sums(old, key).items():
        sums[cell] = sums.get(cell, _ZERO) - values
    lasting = followup_sums(new, key)
    for place, values in followup_sums(old, key).items():
        lasting[place] = lasting.get(place, _ZERO) - values
    if postgres:
        return _write_postgres(connection, ids, old, new, delta, sums, lasting, with_bump)
    if old:
        connection.execute(delete(ResponseFact).where(ResponseFact.beneficiary_id.in_(ids)))
    if new:
        connection.execute(insert(ResponseFact), new)
    add_to_tally(connection, delta)
    add_to_cells(connection, sums)
    add_to_followup(connection, lasting)
    return False


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # never from PostgreSQL (timestamptz): UTC, as SQLite's
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")


def _as_json(rows: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps(rows, default=_json_value, separators=(",", ":"))


def _upsert_part(
    name: str, table: str, key: Sequence[str], sums: Sequence[str], after: str | None
) -> str:
    """A part of `_write_postgres`'s WITH: the rows of parameter `name` (a JSON array of
    objects, in key order: two writers lock the rows they share in the same order) added to
    `table`'s sums, after the part `after` has run (it reads its count)."""
    columns = ", ".join((*key, *sums))
    added = ", ".join(f"{column} = {table}.{column} + excluded.{column}" for column in sums)
    return (
        f"{name} AS (INSERT INTO {table} ({columns}) SELECT {columns} "
        f"FROM jsonb_populate_recordset(NULL::{table}, %({name})s::jsonb) WITH ORDINALITY "
        f"WHERE {_after(after)} ORDER BY ordinality "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {added} RETURNING 1)"
    )


def _after(part: str | None) -> str:
    return f"(SELECT count(*) FROM {part}) >= 0" if part else "TRUE"


_TALLY_KEY = ("structure_id", "month", "form", "channel", "key", "value")
_CELL_KEY = ("structure_id", "month", "form", "channel")


def _write_postgres(
    connection: Connection,
    ids: list[int],
    old: Sequence[Mapping[str, Any]],
    new: Sequence[Mapping[str, Any]],
    delta: Mapping[CellKey, int],
    sums: Mapping[CellOf, npt.NDArray[np.int64]],
    lasting: Mapping[FollowupOf, npt.NDArray[np.int64]],
    with_bump: bool,
) -> bool:
    """The writes of `_refresh` as one statement (PostgreSQL): the people's old fact rows
    deleted, the new ones inserted, the tally's, the cells' and the follow-up's sums added
    (each an upsert in key order, as `add_to_tally`, `add_to_cells`, `add_to_followup`),
    and the data version raised last (`bump`) when `with_bump`; each part of the WITH after
    the one before it (it reads that part's count: a WITH's writing parts may otherwise run
    in any order, and the new rows' keys are the deleted ones'). 1 round trip instead of
    4 to 6 for a sending (issue 18, part 6, ninth pass). A person's own follow-up cells,
    once empty, are deleted by a statement of their own after it (a part of the same
    statement would not see the sums just added): then the version is raised after that."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    last: str | None = None
    if old:
        parts.append(
            "gone AS (DELETE FROM response_fact WHERE beneficiary_id = ANY(%(people)s) RETURNING 1)"
        )
        params["people"] = ids
        last = "gone"
    if new:
        columns = ", ".join(COLUMNS)
        parts.append(
            f"added AS (INSERT INTO response_fact ({columns}) SELECT {columns} "
            "FROM jsonb_populate_recordset(NULL::response_fact, %(added)s::jsonb) "
            f"WHERE {_after(last)} RETURNING 1)"
        )
        params["added"] = _as_json(new)
        last = "added"
    tally = [
        dict(zip(CELL_COLUMNS, (*cell, number), strict=True))
        for cell, number in sorted(delta.items())
        if number
    ]
    if tally:
        parts.append(_upsert_part("tallied", "fact_tally", _TALLY_KEY, ("n",), last))
        params["tallied"] = _as_json(tally)
        last = "tallied"
    cell_rows_ = _cell_rows(sums)
    if cell_rows_:
        parts.append(_upsert_part("celled", "fact_cell", _CELL_KEY, CELL_SUMS, last))
        params["celled"] = _as_json(cell_rows_)
        last = "celled"
    followup_rows = _followup_rows(lasting)
    if followup_rows:
        parts.append(_upsert_part("followed", "fact_followup", FOLLOWUP_KEY, CELL_SUMS, last))
        params["followed"] = _as_json(followup_rows)
        last = "followed"
    doubled = sorted({cell[-1] for cell in lasting if cell[-1]})
    bumped = with_bump and not doubled
    if bumped:
        parts.append(
            "bumped AS (INSERT INTO data_version (id, n) SELECT 1, 1 "
            f"WHERE {_after(last)} ON CONFLICT (id) DO UPDATE SET n = data_version.n + 1 "
            "RETURNING 1)"
        )
        last = "bumped"
    if last is not None:
        connection.exec_driver_sql(f"WITH {', '.join(parts)} SELECT count(*) FROM {last}", params)
    if doubled:
        connection.execute(
            delete(FactFollowup).where(FactFollowup.person.in_(doubled), FactFollowup.n == 0)
        )
    return bumped


CELL_COLUMNS = ("structure_id", "month", "form", "channel", "key", "value", "n")


def add_to_tally(connection: Connection, delta: Mapping[CellKey, int]) -> None:
    """Add these numbers to `fact_tally` (an upsert, in key order: no deadlock between two)."""
    rows = [
        {
            "structure_id": structure,
            "month": month,
            "form": form,
            "channel": channel,
            "key": key,
            "value": value,
            "n": number,
        }
        for (structure, month, form, channel, key, value), number in sorted(delta.items())
        if number
    ]
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(FactTally)
    statement = statement.on_conflict_do_update(
        index_elements=["structure_id", "month", "form", "channel", "key", "value"],
        set_={"n": FactTally.n + statement.excluded.n},
    )
    connection.execute(statement, rows)


def rebuild(session: Session, definition: Definition, batch: int = 2000) -> int:
    """Recompute every fact from the answers (the migration's backfill); returns the rows."""
    connection = session.connection()
    # An earlier migration's backfill runs before fact_cell exists (0019 fills it), and before
    # fact_followup exists (0021 fills it).
    with_cells = inspect(connection).has_table(FactCell.__tablename__)
    if with_cells:
        connection.execute(delete(FactCell))
    with_followup = inspect(connection).has_table(FactFollowup.__tablename__)
    if with_followup:
        connection.execute(delete(FactFollowup))
    connection.execute(delete(FactTally))
    connection.execute(delete(ResponseFact))
    # An earlier migration's backfill runs this code on the table as that migration left it:
    # only the columns present then are written (a later migration fills the others).
    present = {column["name"] for column in inspect(connection).get_columns("response_fact")}
    target: Any = ResponseFact.__table__
    if set(COLUMNS) - present:
        target = sql_table(
            ResponseFact.__tablename__, *(sql_column(c) for c in COLUMNS if c in present)
        )
    total: Counter[CellKey] = Counter()
    written = 0
    last = 0
    while True:
        ids = list(
            connection.scalars(
                select(Beneficiary.id)
                .where(Beneficiary.id > last)
                .order_by(Beneficiary.id)
                .limit(batch)
            )
        )
        if not ids:
            break
        rows = compute(connection, definition, Response.beneficiary_id.between(ids[0], ids[-1]))
        if rows:
            if target is not ResponseFact.__table__:
                rows = [{c: row[c] for c in COLUMNS if c in present} for row in rows]
            connection.execute(insert(target), rows)
            total.update(cells(rows))
            written += len(rows)
        last = ids[-1]
    cube = [
        dict(zip(CELL_COLUMNS, (*cell, number), strict=True))
        for cell, number in sorted(total.items())
        if number
    ]
    for start in range(0, len(cube), 20_000):
        connection.execute(insert(FactTally), cube[start : start + 20_000])
    if with_cells:
        rebuild_cells(connection, session_cell_key(session))
    if with_followup:
        rebuild_followup(connection, session_cell_key(session))
    # An earlier migration's backfill runs before data_version exists (0020 makes it).
    if inspect(connection).has_table(DataVersion.__tablename__):
        bump(connection)
    return written


# --- the cells' digests (fact_cell) -----------------------------------------------------------

# The key of the cells' digests, in `Session.info` of the app's sessions (`install`). It must be
# secret: with a known key, someone who can submit and erase responses can choose two different
# sets of responses with the same count and sums (a subset sum, found by lattice reduction:
# tests/services/evaluation/test_attack5_findings.py), and a sealed verdict would then be reused
# for other people. Under a secret key the sums of different sets differ but with odds of 2**-128.
CELL_KEY_INFO = "selfcheck.fact_cell_key"
FORM_INDEX: Mapping[str, int] = {form.value: index for index, form in enumerate(FormKind)}
_ZERO = np.zeros(5, dtype=np.int64)


def cell_key(secret: str | bytes) -> bytes:
    """The cells' digest key, derived from the app's secret (a new secret: `selfcheck facts
    cells` recomputes the digests; until then no view is sealed, every check runs in full)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, b"selfcheck fact_cell digest", hashlib.sha256).digest()


def session_cell_key(session: Session) -> bytes:
    """The cells' digest key of an app session (`install` puts it there)."""
    key = session.info.get(CELL_KEY_INFO)
    if not isinstance(key, bytes):
        raise RuntimeError("a session without the facts' hooks cannot write fact_cell")
    return key


def cell_parts(
    response: npt.NDArray[np.int64],
    person: npt.NDArray[np.int64],
    form: npt.NDArray[np.int64],
    key: bytes,
) -> npt.NDArray[np.int64]:
    """Per response, four 32-bit pieces (as int64) of AES-256 under the secret `key` of one
    block holding its id, its person's id and its form: a pseudo-random permutation of
    distinct blocks, computed in bulk (a million in a few milliseconds)."""
    blocks = np.zeros((response.size, 2), dtype="<u8")
    blocks[:, 0] = response.astype(np.uint64)
    blocks[:, 1] = (person.astype(np.uint64) << np.uint64(8)) | form.astype(np.uint64)
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    out = encryptor.update(blocks.tobytes()) + encryptor.finalize()
    return np.frombuffer(out, dtype="<u4").reshape(response.size, 4).astype(np.int64)


def cell_sums(rows: Sequence[Mapping[str, Any]], key: bytes) -> dict[CellOf, npt.NDArray[np.int64]]:
    """What `rows` (response_fact rows) add to `fact_cell`: per cell (and for all months),
    the number of responses and the four sums of their `cell_parts`."""
    if not rows:
        return {}
    parts = cell_parts(
        np.array([row["response_id"] for row in rows], dtype=np.int64),
        np.array([row["beneficiary_id"] for row in rows], dtype=np.int64),
        np.array([FORM_INDEX.get(row["form"], 255) for row in rows], dtype=np.int64),
        key,
    )
    values = np.column_stack([np.ones(len(rows), dtype=np.int64), parts])
    found: dict[CellOf, npt.NDArray[np.int64]] = {}
    for months in (False, True):
        index: dict[CellOf, int] = {}
        keys = (
            (
                row["structure_id"],
                ALL_MONTHS if months else row["month"],
                row["form"],
                row["channel"],
            )
            for row in rows
        )
        at = np.fromiter(
            (index.setdefault(key, len(index)) for key in keys), dtype=np.int64, count=len(rows)
        )
        sums = np.zeros((len(index), values.shape[1]), dtype=np.int64)
        np.add.at(sums, at, values)
        for cell, position in index.items():
            found[cell] = sums[position]
    return found


CELL_SUMS = ("n", "d0", "d1", "d2", "d3")


def _cell_rows(delta: Mapping[CellOf, npt.NDArray[np.int64]]) -> list[dict[str, Any]]:
    """The rows `add_to_cells` adds, in key order, the empty ones left out."""
    return [
        {
            "structure_id": structure,
            "month": month,
            "form": form,
            "channel": channel,
            **{name: int(value) for name, value in zip(CELL_SUMS, values, strict=True)},
        }
        for (structure, month, form, channel), values in sorted(delta.items())
        if values.any()
    ]


def add_to_cells(connection: Connection, delta: Mapping[CellOf, npt.NDArray[np.int64]]) -> None:
    """Add these numbers to `fact_cell` (an upsert, in key order: no deadlock between two)."""
    rows = _cell_rows(delta)
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(FactCell)
    statement = statement.on_conflict_do_update(
        index_elements=["structure_id", "month", "form", "channel"],
        set_={
            name: getattr(FactCell, name) + getattr(statement.excluded, name) for name in CELL_SUMS
        },
    )
    connection.execute(statement, rows)


def cell_rows(
    connection: Connection, *where: Any, order: Any = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """The `response_fact` columns that `cell_sums` reads, for the rows matching `where`."""
    query = select(
        ResponseFact.response_id,
        ResponseFact.beneficiary_id,
        ResponseFact.structure_id,
        ResponseFact.month,
        ResponseFact.form,
        ResponseFact.channel,
    ).where(*where)
    if order is not None:
        query = query.order_by(order)
    return [row._asdict() for row in connection.execute(query.limit(limit))]


def rebuild_cells(connection: Connection, key: bytes, batch: int = 200_000) -> int:
    """Recompute `fact_cell` from `response_fact` (the backfill of migration 0019, and after a
    bulk load of the facts); returns the cells written."""
    connection.execute(delete(FactCell))
    total: dict[CellOf, npt.NDArray[np.int64]] = {}
    last = -1
    while True:
        rows = cell_rows(
            connection, ResponseFact.response_id > last, order=ResponseFact.response_id, limit=batch
        )
        if not rows:
            break
        for cell, values in cell_sums(rows, key).items():
            total[cell] = total.get(cell, _ZERO) + values
        last = rows[-1]["response_id"]
    add_to_cells(connection, total)
    return len(total)


# --- the follow-up figures' cells (fact_followup) ---------------------------------------------

# structure, month, form, channel, ended_on, followed, kept, person (models.FactFollowup)
FollowupOf = tuple[int, str, str, str, str, bool, str, int]
FOLLOWUP_KEY = (
    "structure_id",
    "month",
    "form",
    "channel",
    "ended_on",
    "followed",
    "kept",
    "person",
)
END_VALUES = frozenset(form.value for form in END_FORMS)
FOLLOWUP_VALUES = frozenset(form.value for form in FOLLOWUP_FORMS)
# A person's block in the figures' digests: response 0 (no response has it) and this form
# index (no form has it), so that no block of `cell_parts` for fact_cell is ever the same.
FIGURE_FORM = 254


def day_of(moment: datetime) -> str:
    """The UTC day of `moment` (naive: UTC, as SQLite returns it), YYYY-MM-DD."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date().isoformat()


def figure_parts(people: npt.NDArray[np.int64], key: bytes | None) -> npt.NDArray[np.int64]:
    """Per person, the four 32-bit pieces that the figures' digests add up (`cell_parts` of
    the person's own block, under the cells' secret key); zeros without a key (a bare
    migration: no figures' check is then ever sealed, `selfcheck facts cells` makes them)."""
    if key is None:
        return np.zeros((people.size, 4), dtype=np.int64)
    return cell_parts(
        np.zeros(people.size, dtype=np.int64),
        people,
        np.full(people.size, FIGURE_FORM, dtype=np.int64),
        key,
    )


def _followup_cell(row: Mapping[str, Any], doubled: set[int]) -> FollowupOf | None:
    """The `fact_followup` cell of a response_fact row, None when it is in none."""
    ended = row["ended_at"]
    if ended is None:
        return None
    form = row["form"]
    if form in END_VALUES:
        person = row["beneficiary_id"] if row["beneficiary_id"] in doubled else 0
        day, kept = day_of(ended), ""
    elif form in FOLLOWUP_VALUES:
        person, day, kept = 0, "", row["kept"] or ""
    else:
        return None
    return (
        row["structure_id"],
        row["month"],
        form,
        row["channel"],
        day,
        bool(row["followed"]),
        kept,
        person,
    )


def followup_sums(
    rows: Sequence[Mapping[str, Any]], key: bytes | None
) -> dict[FollowupOf, npt.NDArray[np.int64]]:
    """What `rows` (every response_fact row of some people) add to `fact_followup`: per cell,
    the number of rows and the four sums of their person's `figure_parts`."""
    ends = Counter(
        row["beneficiary_id"]
        for row in rows
        if row["form"] in END_VALUES and row["ended_at"] is not None
    )
    doubled = {person for person, count in ends.items() if count > 1}
    keyed = [
        (cell, row["beneficiary_id"])
        for row in rows
        if (cell := _followup_cell(row, doubled)) is not None
    ]
    if not keyed:
        return {}
    people = np.fromiter((person for _cell, person in keyed), dtype=np.int64, count=len(keyed))
    values = np.column_stack([np.ones(len(keyed), dtype=np.int64), figure_parts(people, key)])
    index: dict[FollowupOf, int] = {}
    at = np.fromiter(
        (index.setdefault(cell, len(index)) for cell, _person in keyed),
        dtype=np.int64,
        count=len(keyed),
    )
    sums = np.zeros((len(index), values.shape[1]), dtype=np.int64)
    np.add.at(sums, at, values)
    return {cell: sums[position] for cell, position in index.items()}


def _followup_rows(delta: Mapping[FollowupOf, npt.NDArray[np.int64]]) -> list[dict[str, Any]]:
    """The rows `add_to_followup` adds, in key order, the empty ones left out."""
    return [
        {
            **dict(zip(FOLLOWUP_KEY, cell, strict=True)),
            **{name: int(value) for name, value in zip(CELL_SUMS, values, strict=True)},
        }
        for cell, values in sorted(delta.items())
        if values.any()
    ]


def add_to_followup(
    connection: Connection, delta: Mapping[FollowupOf, npt.NDArray[np.int64]]
) -> None:
    """Add these numbers to `fact_followup` (an upsert, in key order: no deadlock)."""
    rows = _followup_rows(delta)
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(FactFollowup)
    statement = statement.on_conflict_do_update(
        index_elements=list(FOLLOWUP_KEY),
        set_={
            name: getattr(FactFollowup, name) + getattr(statement.excluded, name)
            for name in CELL_SUMS
        },
    )
    connection.execute(statement, rows)
    # A person's own cells, once empty, go (an erased person leaves no id behind).
    doubled = sorted({cell[-1] for cell in delta if cell[-1]})
    if doubled:
        connection.execute(
            delete(FactFollowup).where(FactFollowup.person.in_(doubled), FactFollowup.n == 0)
        )


def rebuild_followup(connection: Connection, key: bytes | None, batch: int = 100_000) -> int:
    """Recompute `fact_followup` from `response_fact` (the backfill of migration 0021, and
    after a bulk load of the facts), `batch` person ids at a time (a person's rows together:
    someone with two end forms is seen whole); returns the cells written."""
    connection.execute(delete(FactFollowup))
    top = int(connection.scalar(select(func.max(ResponseFact.beneficiary_id))) or 0)
    total: dict[FollowupOf, npt.NDArray[np.int64]] = {}
    forms = sorted(END_VALUES | FOLLOWUP_VALUES)
    for low in range(0, top + 1, batch):
        rows = [
            row._asdict()
            for row in connection.execute(
                select(
                    ResponseFact.beneficiary_id,
                    ResponseFact.structure_id,
                    ResponseFact.month,
                    ResponseFact.form,
                    ResponseFact.channel,
                    ResponseFact.ended_at,
                    ResponseFact.followed,
                    ResponseFact.kept,
                ).where(
                    ResponseFact.beneficiary_id >= low,
                    ResponseFact.beneficiary_id < low + batch,
                    ResponseFact.form.in_(forms),
                    ResponseFact.ended_at.is_not(None),
                )
            )
        ]
        for cell, values in followup_sums(rows, key).items():
            total[cell] = total.get(cell, _ZERO) + values
    add_to_followup(connection, total)
    return len(total)


# --- the hook ---------------------------------------------------------------------------------


@dataclass
class Pending:
    """What a transaction touched: people (refreshed), and responses whose person is
    refreshed if the response is submitted at commit."""

    people: set[int]
    responses: set[int]


def _pending(session: Session) -> Pending:
    found = session.info.get(PENDING)
    if found is None:
        found = session.info[PENDING] = Pending(set(), set())
    assert isinstance(found, Pending)
    return found


def _on_execute(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    # An ORM statement's table is annotated: compare names.
    table = getattr(getattr(state.statement, "table", None), "name", None)
    if table == Answer.__tablename__:
        responses = (
            written_ids(state, "response_id")
            if state.is_insert
            else matching_ids(state, Answer.response_id)
        )
        _pending(state.session).responses.update(responses)
    elif table == Response.__tablename__:
        if state.is_update:  # the person is refreshed if the response is submitted at commit
            changed = matching_ids(state, Response.id)
            _pending(state.session).responses.update(changed)
            # Its status may have changed: read at commit (`settle`).
            platform_db.forget_in_progress(state.session, changed)
        else:
            people = (
                written_ids(state, "beneficiary_id")
                if state.is_insert
                else matching_ids(state, Response.beneficiary_id)
            )
            _pending(state.session).people.update(people)
    elif table == SecondEntry.__tablename__:
        responses = (
            written_ids(state, "response_id")
            if state.is_insert
            else matching_ids(state, SecondEntry.response_id)
        )
        _pending(state.session).responses.update(responses)
    elif table == Beneficiary.__tablename__ and state.is_delete:
        _pending(state.session).people.update(matching_ids(state, Beneficiary.id))


def _touch(session: Session, found: object) -> None:
    if isinstance(found, Answer | SecondEntry):
        if found.response_id is not None:
            _pending(session).responses.add(found.response_id)
    elif isinstance(found, Response):
        if found in session.deleted:
            if found.beneficiary_id is not None:
                _pending(session).people.add(found.beneficiary_id)
        elif found.id is not None:
            _pending(session).responses.add(found.id)
    elif isinstance(found, Beneficiary) and found in session.deleted:
        _pending(session).people.add(found.id)


def _before_flush(session: Session, _context: object, _instances: object) -> None:
    """Changed and deleted objects, read while their rows still exist."""
    for found in session.dirty:
        if isinstance(found, Answer | SecondEntry | Response) and session.is_modified(found):
            _touch(session, found)
            if isinstance(found, Response) and inspect(found).attrs.status.history.has_changes():
                platform_db.forget_in_progress(session, {found.id})
    for found in session.deleted:
        _touch(session, found)


def _after_flush(session: Session, _context: object) -> None:
    """New objects, once their keys (given through relationships too) are known."""
    for found in session.new:
        _touch(session, found)


def _on_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(PENDING, None)
        platform_db.forget_in_progress(session)


def settle(session: Session, definition: Definition) -> None:
    """Bring the facts of everyone this transaction touched up to date (before commit)."""
    # Flushed first: objects added since the last flush are seen by the hooks only then (a
    # response added and committed with no flush between left no fact, and no cell digest).
    session.flush()
    if PENDING not in session.info:
        return
    pending = _pending(session)
    people = set(pending.people)
    connection = session.connection()
    # A response still in progress at commit counts for nothing: its status is read here,
    # unless this transaction holds its row locked and read it in progress (a page save of
    # the journey, `platform.db.hold_in_progress`: no query at all; only where the lock is
    # real, PostgreSQL: SQLite reads it outside the write transaction, and here inside it).
    # (Nothing turns a submitted response back into one in progress.)
    postgres = connection.dialect.name == "postgresql"
    known = platform_db.held_in_progress(session) if postgres else ()
    responses = sorted(pending.responses.difference(known))
    if postgres and (responses or people) and len(responses) + len(people) <= CHUNK:
        # A few people (a sending, a page entered by staff): the people of the submitted
        # responses found and everyone locked by one statement, the facts' writes and the
        # data version's raise by one more (`_refresh`): 4 round trips, not 10.
        people |= set(connection.scalars(_lock_people(people, responses)))
        note = session.info[SETTLING] = Settling(frozenset(people))
        try:
            refresh(session, definition, people)
        finally:
            session.info.pop(SETTLING, None)
        if people and not note.bumped:
            bump(connection)
        pending.people.clear()
        pending.responses.clear()
        return
    for start in range(0, len(responses), CHUNK):
        people |= set(
            connection.scalars(
                select(Response.beneficiary_id).where(
                    Response.id.in_(responses[start : start + CHUNK]),
                    Response.status == Status.SUBMITTED.value,
                )
            )
        )
    refresh(session, definition, people)
    if people:
        bump(connection)
    pending.people.clear()
    pending.responses.clear()


def _lock_people(people: set[int], responses: list[int]) -> Select[Any]:
    """`people` and the people of `responses` that are submitted, locked in id order (as
    `_refresh` locks them: one refresh of a person at a time), in one statement (PostgreSQL).
    The statuses read are those of rows this transaction wrote (a writer of an answer
    updates its response's row: journey/row_guard.py), so holds them locked too.

    The two sets are one subquery (a `UNION ALL`), never two conditions joined by `OR`: with
    `OR` PostgreSQL filters every person's row through the subquery (a scan of the whole
    table: 1 M people in `selfcheck_bench_1m`); with one `IN` it reads the few ids by the
    primary key."""
    chosen: Any = select(Response.beneficiary_id).where(
        Response.id.in_(responses), Response.status == Status.SUBMITTED.value
    )
    if people:
        named = aliased(Beneficiary)
        chosen = union_all(chosen, select(named.id).where(named.id.in_(sorted(people))))
    return (
        select(Beneficiary.id)
        .where(Beneficiary.id.in_(chosen))
        .order_by(Beneficiary.id)
        .with_for_update(of=Beneficiary)
    )


def bump(connection: Connection) -> None:
    """Raise the data version (models.DataVersion) in this transaction: last, after the
    cells, so that two writers cannot wait for each other (one row, an upsert)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(DataVersion).values(id=1, n=1)
    statement = statement.on_conflict_do_update(
        index_elements=["id"], set_={"n": DataVersion.n + 1}
    )
    connection.execute(statement)


def install(sessions: sessionmaker[Session], definition: Definition, secret: str | bytes) -> None:
    """Keep the facts of every session of `sessions` up to date, in its own transaction; the
    cells' digests under a key derived from the app's `secret`."""
    sessions.configure(info={**sessions.kw.get("info", {}), CELL_KEY_INFO: cell_key(secret)})

    def before_commit(session: Session) -> None:
        # SQLAlchemy fires this at each savepoint's release too (`begin_nested`, one per
        # person started): the facts are settled once, at the outer commit, for everyone the
        # transaction touched in one query per CHUNK people (a 500-person demo refreshed
        # them one person at a time: 783 refreshes, 141 s of a 316 s test on PostgreSQL).
        if session.in_nested_transaction():
            return
        settle(session, definition)

    event.listen(sessions, "do_orm_execute", _on_execute)
    event.listen(sessions, "before_flush", _before_flush)
    event.listen(sessions, "after_flush", _after_flush)
    event.listen(sessions, "before_commit", before_commit)
    event.listen(sessions, "after_transaction_end", _on_end)
