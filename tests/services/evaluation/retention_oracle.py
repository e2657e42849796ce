"""The follow-up figures computed from the answers, as the dashboard read them before the
facts held them (issue 18): the oracle that `retention.load`, which reads the facts, must
equal. Every response of the people in scope and the task answers of those followed up go
through Python here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.evaluation.retention import Followed
from selfcheck.evaluation.scope import EvaluationFilters, response_conditions
from selfcheck.journey import schedule
from selfcheck.platform.models import Answer, Response, Status, Structure
from selfcheck.questionnaire.model import (
    END_FORMS,
    FOLLOWUP_FORMS,
    PRE_SUFFIX,
    Definition,
    FormKind,
)

Ranks = dict[str, int]  # item code -> rung (0: no ranked answer)


@dataclass
class PersonPoints:
    """One person's task rungs at the three points, and their forms' sending times."""

    before: Ranks = field(default_factory=dict)
    end: Ranks = field(default_factory=dict)
    later: Ranks = field(default_factory=dict)
    sent: dict[FormKind, datetime] = field(default_factory=dict)
    followup_months: int = 3
    person_id: int = 0  # the beneficiary (differencing.guard_figures compares groups of them)
    # In the figures through the selection (see the module's note): the follow-up read is in
    # it (kept gains), the end form is in it (response rate).
    counts_kept: bool = True
    counts_response: bool = True


def kept_gains(
    people: Iterable[PersonPoints],
    tasks: Mapping[str, str],
    members: dict[str | None, set[int]] | None = None,
) -> dict[str | None, tuple[int, int]]:
    """(people who kept all their gains, people with a gain), per competence and overall
    (key None). `tasks`: item code -> competence code. `members`, when given, receives the
    people counted in each figure (their person_id)."""
    counts: dict[str | None, list[int]] = {}
    for person in people:
        if not person.later or not person.counts_kept:
            continue
        verdicts: dict[str | None, bool] = {}
        for code, competence in tasks.items():
            before, end, later = (
                person.before.get(code, 0),
                person.end.get(code, 0),
                person.later.get(code, 0),
            )
            if not (before and end and later) or end <= before:
                continue  # no gain, or a rung missing at one of the three points
            kept = later >= end
            for key in (competence, None):
                verdicts[key] = verdicts.get(key, True) and kept
        for key, kept_all in verdicts.items():
            pair = counts.setdefault(key, [0, 0])
            pair[0] += int(kept_all)
            pair[1] += 1
            if members is not None:
                members.setdefault(key, set()).add(person.person_id)
    return {key: (pair[0], pair[1]) for key, pair in counts.items()}


def response_counts(
    people: Iterable[PersonPoints],
    now: datetime,
    zone: ZoneInfo,
    members: set[int] | None = None,
) -> tuple[int, int]:
    """(people who sent a follow-up, people whose first follow-up has opened). `members`,
    when given, receives the latter (their person_id)."""
    answered = opened = 0
    # Whether the first follow-up has opened depends only on the end's local day and the delay:
    # computed once per pair (a few hundred), not once per person.
    known: dict[tuple[date, int], bool] = {}
    for person in people:
        ends = [person.sent[form] for form in END_FORMS if form in person.sent]
        if not ends or not person.counts_response:
            continue
        end = min(ends)
        key = (schedule.local_day(end, zone), person.followup_months)
        is_open = known.get(key)
        if is_open is None:
            first = schedule.openings(end, {FormKind.FOLLOWUP: person.followup_months}, zone)
            is_open = known[key] = bool(first) and first[0].is_open(now)
        if not is_open:
            continue
        opened += 1
        if members is not None:
            members.add(person.person_id)
        answered += int(any(form in person.sent for form in FOLLOWUP_FORMS))
    return answered, opened


def load_people(
    db: Session, definition: Definition, filters: EvaluationFilters
) -> list[PersonPoints]:
    """The three points of every person of the selection with a sent end form, flagged with
    the figures they count in (see the module's note: the follow-up or the end form in the
    selection dates them)."""
    tasks = [item.code for item in definition.task_items()]
    ranks = {
        item.code: {o.code: o.rank or 0 for o in item.options} for item in definition.task_items()
    }
    wanted = [*tasks, *(code + PRE_SUFFIX for code in tasks)]
    dating = Response.form.in_([form.value for form in (*END_FORMS, *FOLLOWUP_FORMS)])
    # The forms of each person that are in the selection (one query; the points are then
    # read for these people only, whole).
    selected: dict[int, set[FormKind]] = {}
    for person_id, form_value in db.execute(
        select(Response.beneficiary_id, Response.form).where(*response_conditions(filters), dating)
    ):
        selected.setdefault(person_id, set()).add(FormKind(form_value))
    if not selected:
        return []
    people: dict[int, PersonPoints] = {}
    answers: dict[tuple[int, FormKind], Ranks] = {}
    in_scope = (
        Response.status == Status.SUBMITTED.value,
        Response.structure_id.in_(filters.structure_ids),
        # The people of the selection, as a subquery of its own (not correlated).
        Response.beneficiary_id.in_(
            select(Response.beneficiary_id)
            .where(*response_conditions(filters), dating)
            .correlate(None)
            .scalar_subquery()
        ),
    )
    # One row per response: when each form was sent (the response rate reads only that).
    responses = (
        select(
            Response.beneficiary_id, Response.form, Response.submitted_at, Structure.followup_months
        )
        .join(Structure, Structure.id == Response.structure_id)
        .where(*in_scope)
    )
    kinds = {form.value: form for form in FormKind}
    for person_id, form_value, sent_at, months in db.execute(responses):
        person = people.get(person_id)
        if person is None:
            person = people[person_id] = PersonPoints(followup_months=months, person_id=person_id)
        if sent_at is not None:
            person.sent[kinds[form_value]] = (
                sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=UTC)
            )
    # The rungs only of the people who sent a follow-up: no gain is kept or lost without one
    # (`kept_gains`), and reading every task answer of every person took seconds.
    followed = (
        select(Response.beneficiary_id)
        .where(*in_scope, Response.form.in_([form.value for form in FOLLOWUP_FORMS]))
        .scalar_subquery()
    )
    ranked = (
        select(Response.beneficiary_id, Response.form, Answer.variable, Answer.value)
        .join(Answer, Answer.response_id == Response.id)
        .where(*in_scope, Answer.variable.in_(wanted), Response.beneficiary_id.in_(followed))
    )
    for person_id, form_value, variable, value in db.execute(ranked):
        answers.setdefault((person_id, kinds[form_value]), {})[variable] = ranks.get(
            variable.removesuffix(PRE_SUFFIX), {}
        ).get(value, 0)
    for (person_id, form), given in answers.items():
        person = people[person_id]
        if form is FormKind.BEFORE:
            person.before.update(given)
        elif form is FormKind.AFTER:
            person.end.update(given)
        elif form is FormKind.RETRO:
            for variable, rank in given.items():
                code = variable.removesuffix(PRE_SUFFIX)
                (person.before if variable.endswith(PRE_SUFFIX) else person.end)[code] = rank
    for (person_id, form), given in answers.items():
        # The latest follow-up sent: the second one when there is one.
        if form not in FOLLOWUP_FORMS:
            continue
        person = people[person_id]
        latest = next(f for f in reversed(FOLLOWUP_FORMS) if f in person.sent or f is form)
        if form is latest:
            person.later.update(given)
    for person_id, person in people.items():
        in_selection = selected.get(person_id, set())
        read = next((f for f in reversed(FOLLOWUP_FORMS) if f in person.sent), None)
        person.counts_kept = read is not None and read in in_selection
        person.counts_response = any(form in in_selection for form in END_FORMS)
    return [p for p in people.values() if any(form in p.sent for form in END_FORMS)]


def followed(
    db: Session,
    definition: Definition,
    filters: EvaluationFilters,
    *,
    now: datetime,
    zone: ZoneInfo,
) -> Followed | None:
    """What `retention.load` gives, from the answers."""
    people = load_people(db, definition, filters)
    if not people:
        return None
    tasks = {item.code: item.competence for item in definition.task_items() if item.competence}
    members: dict[str | None, set[int]] = {}
    kept_gains(people, tasks, members)
    kept_all: dict[str | None, set[int]] = {}
    for person in people:  # the people who kept every gain, per competence
        single: dict[str | None, set[int]] = {}
        counts = kept_gains([person], tasks, single)
        for key, (kept, _n) in counts.items():
            if kept:
                kept_all.setdefault(key, set()).add(person.person_id)
    opened: set[int] = set()
    answered, _opened = response_counts(people, now, zone, opened)
    answering = {
        p.person_id
        for p in people
        if p.person_id in opened and any(form in p.sent for form in FOLLOWUP_FORMS)
    }
    assert len(answering) == answered
    return Followed(
        gained={key: frozenset(found) for key, found in members.items()},
        kept_all={key: frozenset(found) for key, found in kept_all.items()},
        opened=frozenset(opened),
        answered=frozenset(answering),
    )
