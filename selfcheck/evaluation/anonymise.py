"""The anonymisation plan of an export: every column that can single someone out counts.

Quasi-identifiers (QI) of a person, one value each in the plan (`qi_record`):
- `place`: the structure, with its ladder structure -> department -> region -> national
  (`disclosure.geography`);
- each item with a `quasi_identifier:` (age band, gender, diploma, status, area), with the
  ladder declared on the item;
- per form (before, after, retro): the month it was sent (ladder `disclosure.period`: month ->
  quarter -> year), its channel, its wording and its questionnaire version (ladders in
  `disclosure.context`);
- `forms`: the pattern of forms present (before only, before and after, retrospective...).

The anonymity engine (`selfcheck.evaluation.anonymity`) chooses one level per QI and masks a
few cells (`MASKED`), with the weights of `disclosure.weights` and, when the evaluator chose
one, an analysis focus (`disclosure.focus`), so that every combination of released QI values
is shared by at least k people, losing the least information. A last check (`_verify`) counts
the released combinations again, the forms present taken as they show in the file (a form's
answers show whether the person had it, even when the pattern is masked): anyone still in a
group smaller than k is left out. Where k cannot be met, the export releases less, never
more, and the report says how much.

Direct identifiers (beneficiary code, response ids, staff) never leave; the person is named
by `pseudonym`, an HMAC of their id under a key drawn for one export and thrown away. Rows are
written in a random order drawn for each export (`Plan.order`).
"""

from __future__ import annotations

import hashlib
import hmac
import operator
import random
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.evaluation import anonymity, joins
from selfcheck.evaluation.anonymity import MASKED
from selfcheck.evaluation.regions import region_of
from selfcheck.evaluation.scope import EvaluationFilters
from selfcheck.platform.models import Structure
from selfcheck.questionnaire.model import (
    NO_ANSWER,
    Definition,
    FormKind,
    Geography,
    Item,
    Period,
    QuasiIdentifier,
)

if TYPE_CHECKING:
    from selfcheck.evaluation.export import PersonAnswers

# The follow-ups too (issue 15): their month is a quasi-identifier like any form's (month ->
# quarter -> year), and their presence is part of the forms pattern (bits 8 and 16).
FORMS = (
    FormKind.BEFORE,
    FormKind.AFTER,
    FormKind.RETRO,
    FormKind.FOLLOWUP,
    FormKind.FOLLOWUP_LATE,
)
# The forms that describe the person (the 'after' form does not ask again).
PROFILE_FORMS = (FormKind.BEFORE.value, FormKind.RETRO.value)
PLACE = "place"
FORMS_PRESENT = "forms"
DETAILS = ("month", "channel", "wording", "version")
DEFAULT_MAX_SUPPRESSED = 0.05
# Number of the pattern of forms present: one bit per form (before 1, after 2, retro 4,
# follow-up 8, second follow-up 16).
FORM_BITS = {form.value: 1 << index for index, form in enumerate(FORMS)}


def detail_column(form: FormKind | str, detail: str) -> str:
    return f"{FormKind(form).value}_{detail}"


def forms_pattern(forms: Iterable[str]) -> int:
    return sum(FORM_BITS[f] for f in set(forms) if f in FORM_BITS)


def new_key() -> bytes:
    return secrets.token_bytes(32)


def pseudonym(key: bytes, beneficiary_id: int) -> str:
    """Stable inside one export (same key), unlinkable across exports (fresh key each time)."""
    return hmac.new(key, str(beneficiary_id).encode(), hashlib.sha256).hexdigest()[:16]


def pseudonyms(key: bytes) -> Callable[[int], str]:
    """`pseudonym` under one key for many people: the HMAC keyed once, then copied."""
    keyed = hmac.new(key, digestmod=hashlib.sha256)

    def of(beneficiary_id: int) -> str:
        mac = keyed.copy()
        mac.update(str(beneficiary_id).encode())
        return mac.hexdigest()[:16]

    return of


def structure_places(db: Session, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """Structure id -> (slug, department), for the structures in scope."""
    rows = db.execute(
        select(Structure.id, Structure.slug, Structure.department).where(
            Structure.id.in_(list(ids))
        )
    )
    return {row.id: (row.slug, row.department) for row in rows}


# --- the quasi-identifiers of one person ---------------------------------------------------


def item_value(person: PersonAnswers, code: str) -> str | None:
    """A QI item's answer: the largest over the before and retro forms; NO_ANSWER when the
    person was asked and gave none; None when never asked."""
    value: str | None = None
    asked = False
    for form in PROFILE_FORMS:
        sent = person.forms.get(form)
        if sent is None:
            continue
        for given in sent.answers.get(code, ()):
            asked = True
            if given != NO_ANSWER and (value is None or given > value):
                value = given
    return value if value is not None else (NO_ANSWER if asked else None)


def qi_record(
    person: PersonAnswers, places: Mapping[int, tuple[str, str]], definition: Definition
) -> dict[str, Any]:
    """The raw quasi-identifiers of one person, by plan column (see module doc)."""
    return _Recorder(places, definition).record(person)


def recorder(
    places: Mapping[int, tuple[str, str]], definition: Definition
) -> Callable[[PersonAnswers], dict[str, Any]]:
    """`qi_record` for many people (the item bank's columns looked up once, strings shared)."""
    return _Recorder(places, definition).record


# Each form's plan columns (month, channel, wording, version), built once: every record
# shares these key strings instead of holding four new ones per form.
_DETAIL_COLUMNS = tuple(
    (form.value, tuple(detail_column(form, detail) for detail in DETAILS)) for form in FORMS
)


class _Recorder:
    """`qi_record` for many people: the item bank's columns looked up once, and the
    released strings (months, channels, wordings, versions) shared between records rather
    than one copy per person (a million answer rows: 20,000 records of 27 values)."""

    def __init__(self, places: Mapping[int, tuple[str, str]], definition: Definition) -> None:
        self.slugs = {structure: slug for structure, (slug, _department) in places.items()}
        self.items = tuple(
            (item.code, item.quasi_identifier.column)
            for item in definition.quasi_identifiers()
            if item.quasi_identifier is not None
        )
        self.months: dict[tuple[int, int], str] = {}
        self.strings: dict[str, str] = {}

    def month(self, sent_at: datetime | None) -> str | None:
        if sent_at is None:
            return None
        key = (sent_at.year, sent_at.month)
        month = self.months.get(key)
        if month is None:
            month = self.months[key] = sent_at.strftime("%Y-%m")
        return month

    def shared(self, value: str) -> str:
        return self.strings.setdefault(value, value)

    def record(self, person: PersonAnswers) -> dict[str, Any]:
        forms = person.forms
        record: dict[str, Any] = {
            PLACE: self.slugs.get(person.structure_id or -1),
            FORMS_PRESENT: forms_pattern(forms),
        }
        shared = self.shared
        for code, column in self.items:
            value = item_value(person, code)
            record[column] = None if value is None else shared(value)
        for form, (month, channel, wording, version) in _DETAIL_COLUMNS:
            sent = forms.get(form)
            if sent is None:
                record[month] = None
                record[channel] = None
                record[wording] = None
                record[version] = None
            else:
                record[month] = self.month(sent.submitted_at)
                record[channel] = shared(sent.channel)
                record[wording] = shared(sent.wording)
                record[version] = shared(sent.version)
        return record


# A QI item's answer in one form as `ColumnRecorder` takes it: its value, the tuple of its
# values when it has several (a multiple choice), None when the form holds none.
AnswerKey = str | tuple[str, ...] | None
_NO_DETAILS: tuple[None, None, None, None] = (None, None, None, None)


class _Best(dict[AnswerKey, str | None]):
    """A QI item's answer in one form, per key: the largest value that is not NO_ANSWER,
    NO_ANSWER when it holds no other (asked, no answer), None when absent (`item_value`).
    Remembered per key: each distinct answer is worked out once and its string shared."""

    def __init__(self) -> None:
        super().__init__({None: None})

    def __missing__(self, key: AnswerKey) -> str | None:
        values = (key,) if isinstance(key, str) else key
        assert values is not None  # None is always there
        best: str | None = None
        for given in values:
            if given != NO_ANSWER and (best is None or given > best):
                best = given
        if best is None and values:
            best = NO_ANSWER
        if len(self) < _SHARED_MAX:
            self[key] = best
        return best


_SHARED_MAX = 1 << 16  # distinct keys and details remembered by a `ColumnRecorder`


def _either(first: str | None, second: str | None) -> str | None:
    """A QI item's answer over two profile forms, each as `_Best` gives it."""
    if first is None or first == NO_ANSWER:
        return second if second is not None else first
    if second is None or second == NO_ANSWER:
        return first
    return second if second > first else first


class ColumnRecorder:
    """`qi_record` for many people, kept by column (`anonymity.Columns`): the records a
    reader gives it person by person, from each form's details and its QI items' answers,
    are those `qi_record` makes from the same `PersonAnswers` (same columns, same values),
    without a dict per person.

    Per person (`add`): the largest structure id of their forms, the pattern of forms
    present (`FORM_BITS`), the keys of the QI items (`items`' order) of each profile form
    they sent (before, retro), and each form's details (`details`, in `FORMS` order)."""

    def __init__(self, places: Mapping[int, tuple[str, str]], definition: Definition) -> None:
        self.slugs = {structure: slug for structure, (slug, _department) in places.items()}
        qis = [item for item in definition.quasi_identifiers() if item.quasi_identifier]
        self.items = tuple(item.code for item in qis)
        self.names: tuple[str, ...] = (
            PLACE,
            FORMS_PRESENT,
            *(item.quasi_identifier.column for item in qis if item.quasi_identifier),
            *(column for _form, columns in _DETAIL_COLUMNS for column in columns),
        )
        self.absent: tuple[None, ...] = (None,) * len(self.items)
        self.best = _Best()
        self.months: dict[tuple[int, int], str] = {}
        self.strings: dict[str, str] = {}
        self.known: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self.rows: list[tuple[Any, ...]] = []

    def details(
        self, channel: str, wording: str, version: str, submitted_at: datetime | None
    ) -> tuple[Any, ...]:
        """A form's (month, channel, wording, version) as `qi_record` gives them, shared."""
        if submitted_at is None:
            key: tuple[Any, ...] = (channel, wording, version, None, None)
        else:
            key = (channel, wording, version, submitted_at.year, submitted_at.month)
        found = self.known.get(key)
        if found is None:
            shared = self.strings.setdefault
            month = None if submitted_at is None else submitted_at.strftime("%Y-%m")
            found = (month, shared(channel, channel), shared(wording, wording))
            found = (*found, shared(version, version))
            if len(self.known) < _SHARED_MAX:
                self.known[key] = found
        return found

    def add(
        self,
        structure_id: int | None,
        pattern: int,
        profiles: Sequence[Sequence[AnswerKey]],
        details: Sequence[tuple[Any, ...] | None],
    ) -> None:
        """One person: `profiles` the QI keys of each profile form sent (none, one or two),
        `details` per form of `FORMS` its `details` or None when not sent."""
        best = self.best.__getitem__
        if not profiles:
            values: tuple[Any, ...] = self.absent
        elif len(profiles) == 1:
            values = tuple(map(best, profiles[0]))
        else:
            values = tuple(map(_either, map(best, profiles[0]), map(best, profiles[1])))
            for more in profiles[2:]:
                values = tuple(map(_either, values, map(best, more)))
        row = (self.slugs.get(structure_id or -1), pattern, *values)
        for found in details:
            row += _NO_DETAILS if found is None else found
        self.rows.append(row)

    def columns(self) -> anonymity.Columns:
        """The records added, by column (the rows are given up)."""
        size = len(self.rows)
        transposed = list(zip(*self.rows, strict=True)) if size else [() for _ in self.names]
        self.rows = []
        return anonymity.Columns(dict(zip(self.names, transposed, strict=True)), size)


# --- ladders for the engine, from the item bank --------------------------------------------


def _grouping(groups: Mapping[str, str]) -> Callable[[Any], Any]:
    """A rung mapping each value to its group; values outside every group (NO_ANSWER) stay."""
    return lambda value: groups.get(value, value)


def ladder_rungs(qi: QuasiIdentifier) -> tuple[list[Callable[[Any], Any]], list[str]]:
    """The engine's rungs above the raw value of a declared ladder, and their names.

    The first step releases the answer as given (level 0); a `masked` step is the engine's
    own last level; each step with groups maps an option to its group's code.
    """
    rungs: list[Callable[[Any], Any]] = []
    names: list[str] = []
    for step in qi.ladder[1:]:
        if step.masked or not step.groups:
            continue
        rungs.append(_grouping({o: g.code for g in step.groups for o in g.options}))
        names.append(step.name)
    return rungs, names


def _quarter(month: str) -> str:
    year, number = month.split("-")
    return f"{year}-T{(int(number) - 1) // 3 + 1}"


def _year(month: str) -> str:
    return month.split("-")[0]


PERIOD_RUNGS: Mapping[Period, Callable[[str], str]] = {
    Period.QUARTER: _quarter,
    Period.YEAR: _year,
}


def place_value(level: Geography, slug: str, places: Mapping[str, str]) -> tuple[str, str]:
    """The place released at `level`: (level, value), the value None-free."""
    department = places.get(slug, "")
    if level is Geography.STRUCTURE:
        return (level.value, slug)
    if level is Geography.DEPARTMENT:
        return (level.value, department)
    if level is Geography.REGION:
        return (level.value, region_of(department) or "")
    return (level.value, "")


def engine_columns(
    definition: Definition,
    departments: Mapping[str, str],
    focus: str | None = None,
) -> list[anonymity.QuasiIdentifier]:
    """Every QI column of the plan as the engine takes it: ladder, names and weight.

    `departments`: structure slug -> department. `focus`: the code of an analysis focus of
    the item bank (`disclosure.focus`), whose columns weigh more.
    """
    disclosure = definition.disclosure
    chosen = disclosure.focus_named(focus) if focus else None

    def weight(base: str) -> float:
        w = disclosure.weight(base)
        if chosen is not None and base in chosen.columns:
            w *= chosen.weight
        return w

    def make_place_rung(level: Geography) -> Callable[[Any], Any]:
        return lambda slug: place_value(level, slug, departments)

    geography = [g for g in disclosure.geography if g is not Geography.STRUCTURE]
    columns = [
        anonymity.QuasiIdentifier(
            PLACE,
            ladder=[make_place_rung(g) for g in geography],
            weight=weight(PLACE),
            names=[g.value for g in geography],
        )
    ]
    for item in definition.quasi_identifiers():
        qi = item.quasi_identifier
        assert qi is not None
        rungs, names = ladder_rungs(qi)
        # A demographic is masked cell by cell (at most `max_suppressed` of the people lose
        # one), never for everyone unless nothing else meets k.
        columns.append(
            anonymity.QuasiIdentifier(qi.column, rungs, weight(qi.column), names, whole=True)
        )
    forms_qi = disclosure.context_column(FORMS_PRESENT)
    rungs, names = ladder_rungs(forms_qi)
    # The forms present show in the file whatever is masked (a form's answers, or its masked
    # details, show that it was sent): released as they are, a stratum of the release.
    columns.append(
        anonymity.QuasiIdentifier(FORMS_PRESENT, rungs, weight(FORMS_PRESENT), names, fixed=True)
    )
    periods = [p for p in disclosure.period if p is not Period.MONTH]
    for form in FORMS:
        columns.append(
            anonymity.QuasiIdentifier(
                detail_column(form, "month"),
                [PERIOD_RUNGS[p] for p in periods],
                weight("month"),
                [p.value for p in periods],
            )
        )
        for detail in DETAILS[1:]:
            rungs, names = ladder_rungs(disclosure.context_column(detail))
            columns.append(
                anonymity.QuasiIdentifier(detail_column(form, detail), rungs, weight(detail), names)
            )
    return columns


# --- the plan ------------------------------------------------------------------------------


@dataclass
class Plan:
    """What an export releases: per person kept, their QI values as released, and the order."""

    k: int
    focus: str | None
    people: int
    release: anonymity.Release
    decisions: dict[int, dict[str, Any]]  # beneficiary id -> released QI values
    order: list[int]  # beneficiary ids to write, in a random order drawn for this export
    left_out_after_check: int = 0
    # Left out so that the join of this evaluator's exports stays k-anonymous (joins.py).
    left_out_for_joins: int = 0
    digests: dict[int, str] = field(default_factory=dict)  # released id -> new join digest
    demographic_columns: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    shares_shown: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Released id -> the forms the plan saw them with (`forms_pattern`): the file writes
    # those forms only (export.write_rows), whatever was sent since.
    patterns: dict[int, int] = field(default_factory=dict)
    # The stamp of the evaluator's memory the plan read (joins.record checks it again).
    memory_stamp: str | None = None

    @property
    def people_exported(self) -> int:
        return len(self.order)

    @property
    def people_left_out(self) -> int:
        return self.people - self.people_exported

    def released(self, beneficiary_id: int) -> dict[str, Any] | None:
        return self.decisions.get(beneficiary_id)

    def people_with_demographic_masked(self) -> int:
        return sum(
            1
            for values in self.decisions.values()
            if any(values.get(c) is MASKED for c in self.demographic_columns)
        )

    def report(self) -> dict[str, Any]:
        """JSON-ready: per QI the level and the share masked; shifts of demographic shares
        (categories of at least k people, true and released); people left out."""
        utility = self.release.report
        exported = max(self.people_exported, 1)
        columns = []
        for column in utility.columns:
            masked = sum(
                1 for values in self.decisions.values() if values.get(column.column) is MASKED
            )
            columns.append(
                {
                    "column": column.column,
                    "level": column.level_name,
                    "constant": column.constant,
                    "masked_share": round(masked / exported, 4),
                }
            )
        return {
            "k": self.k,
            "focus": self.focus,
            "people_in_scope": self.people,
            "people_exported": self.people_exported,
            "people_left_out": self.people_left_out,
            "people_left_out_for_earlier_exports": self.left_out_for_joins,
            "people_with_demographic_masked": self.people_with_demographic_masked(),
            "information_loss": round(utility.loss, 4),
            "search_exhaustive": utility.exhaustive,
            "columns": columns,
            # Shares of the people exported, true and in the file (people left out apart).
            "shares": self.shares_shown,
            "shares_compared": self.people_exported,
            "quasi_identifiers": list(self.columns),
        }


def collect(
    db: Session, filters: EvaluationFilters, definition: Definition
) -> tuple[list[int], list[dict[str, Any]], dict[str, str]]:
    """(beneficiary ids, their raw QI records, structure slug -> department), one pass."""
    from selfcheck.evaluation.export import stream_people  # export imports this module

    places = structure_places(db, filters.structure_ids)
    ids: list[int] = []
    records: list[dict[str, Any]] = []
    # Only the quasi-identifier items' answers: the rest would be read for nothing.
    codes = {item.code for item in definition.quasi_identifiers()}
    recorder = _Recorder(places, definition)
    for person in stream_people(db, filters, variables=codes):
        ids.append(person.beneficiary_id)
        records.append(recorder.record(person))
    return ids, records, dict(places.values())


def plan(
    db: Session,
    filters: EvaluationFilters,
    k: int,
    definition: Definition,
    focus: str | None = None,
    *,
    rng: random.Random | None = None,
    memory: Callable[[Sequence[int]], joins.Memory] | None = None,
) -> Plan:
    """Read the people in scope, anonymise their QIs, check the result, shuffle the order.

    `memory`: given the people in scope, the evaluator's earlier exports (joins.load)."""
    ids, records, departments = collect(db, filters, definition)
    remembered = memory(ids) if memory is not None else None
    return plan_records(ids, records, departments, k, definition, focus, rng=rng, memory=remembered)


def plan_records(
    ids: Sequence[int],
    records: Sequence[Mapping[str, Any]],
    departments: Mapping[str, str],
    k: int,
    definition: Definition,
    focus: str | None = None,
    *,
    rng: random.Random | None = None,
    memory: joins.Memory | None = None,
) -> Plan:
    """The plan for raw QI records (one per person, `ids` their beneficiary ids).

    With `memory` (the evaluator's earlier exports), people are also left out so that the
    join of all their exports stays k-anonymous (`joins.restrict`); `Plan.digests` then
    holds what to remember once the file is written."""
    specs = engine_columns(definition, departments, focus)
    max_suppressed = definition.disclosure.suppression_limit(len(records))
    # Released by column, not as a copy of every record: each person's decisions are built
    # once the engine's arrays are freed (the plan's peak of memory at a million answers).
    release = anonymity.anonymise(records, specs, k, max_suppressed=max_suppressed, rows=False)
    names = [s.column for s in specs]
    decisions = _shared_decisions(ids, release.kept, names, release.columns, release.codes)
    release = replace(release, columns={}, codes={})  # the plan keeps its levels and report
    dropped = _verify(decisions, records, ids, k)
    for beneficiary_id in dropped:
        del decisions[beneficiary_id]
    for_joins: frozenset[int] = frozenset()
    digests: dict[int, str] = {}
    pattern = _patterns(records, ids)
    if memory is not None:
        restricted = joins.restrict(decisions, pattern, memory, k, FORMS_PRESENT)
        for_joins, digests = restricted.left_out, restricted.digests
        for beneficiary_id in for_joins:
            del decisions[beneficiary_id]
        decisions.update(restricted.merged)
    for values in decisions.values():
        if isinstance(values.get(PLACE), str):  # the structure: its department goes with it
            values["_department"] = departments.get(values[PLACE])
    order = _shuffled(list(decisions), rng)
    demographics = tuple(
        item.quasi_identifier.column
        for item in definition.quasi_identifiers()
        if item.quasi_identifier is not None
    )
    result = Plan(
        k=k,
        focus=focus,
        people=len(ids),
        release=release,
        decisions=decisions,
        order=order,
        left_out_after_check=len(dropped),
        left_out_for_joins=len(for_joins),
        digests=digests,
        demographic_columns=demographics,
        columns=tuple(names),
        memory_stamp=memory.stamp if memory is not None else None,
        patterns={b: pattern[b] for b in ids if b in decisions},
    )
    positions = {b: i for i, b in enumerate(ids)}
    result.shares_shown = _shares(
        specs, release.levels, decisions, records, positions, demographics, k
    )
    return result


def _shared_decisions(
    ids: Sequence[int],
    kept: Sequence[int],
    names: Sequence[str],
    columns: Mapping[str, Sequence[Any]],
    codes: Mapping[str, tuple[Any, Sequence[Any]]] | None = None,
) -> dict[int, dict[str, Any]]:
    """Each kept person's released values (`ids[kept[i]]` -> column -> `columns[column][i]`),
    one dict per distinct combination, shared by the people who show it: a few thousand
    dicts for 20,000 people instead of a dict each (16 MB at the export's peak:
    docs/performance.md, "The export's memory under 170 MB"). The plan never changes a
    person's dict in place (`joins.restrict` replaces it), except to add "_department",
    which follows from the dict's own structure. Values are alike when of the same type and
    `repr`, as `_verify` compares: 1, 1.0 and True, or 0.0 and -0.0, stay apart.

    The combinations are counted over integer codes (`anonymity.combination_ids`), each
    column coded by the type and `repr` of its distinct values: the engine's codes where it
    gives them (`Release.codes`: the value of each code), else each distinct object of the
    column (`_shown_codes`). Each combination's dict holds the values of its first person,
    as when each person's values were looked up in turn."""
    if not kept:
        return {}
    given = codes or {}
    parts: list[tuple[npt.NDArray[np.int64], int]] = []
    for name in names:
        engine = given.get(name)
        if engine is None:
            parts.append(_shown_codes(columns[name]))
        else:
            by_code, values = engine
            shown = _shown_codes(values)
            parts.append((shown[0][by_code], shown[1]))
    combination, _count = anonymity.combination_ids(parts, len(kept))
    _, first = np.unique(combination, return_index=True)
    shared = [
        dict(zip(names, [columns[name][i] for name in names], strict=True)) for i in first.tolist()
    ]
    return dict(
        zip(
            map(ids.__getitem__, kept),
            map(shared.__getitem__, combination.tolist()),
            strict=True,
        )
    )


def _shown_codes(values: Sequence[Any]) -> tuple[npt.NDArray[np.int64], int]:
    """A code per value, equal exactly when the values' types and `repr` are, and how many
    codes. Each distinct object is looked at once (the same object is alike to itself):
    the values of a column are mostly the same few objects."""
    objects = dict(zip(map(id, values), values, strict=True))
    if len(objects) == 1:
        return np.zeros(len(values), dtype=np.int64), 1
    alike: dict[tuple[type, str], int] = {}
    code_of = {
        key: alike.setdefault((type(value), repr(value)), len(alike))
        for key, value in objects.items()
    }
    found = np.fromiter(
        map(code_of.__getitem__, map(id, values)), dtype=np.int64, count=len(values)
    )
    return found, len(alike)


_VERIFIED = 4096  # decisions read into columns at a time (`_verify`)


def _shuffled(people: list[int], rng: random.Random | None = None) -> list[int]:
    """`people` in a random order: `rng.shuffle` when given (a seeded order, for tests);
    else a permutation drawn from the system's secure source, uniformly: the people sorted
    by 64 random bits each (drawn again in the unlikely event of a tie), which costs one
    draw and a sort instead of one draw per person."""
    if rng is not None:
        rng.shuffle(people)
        return people
    while True:
        draws = np.frombuffer(secrets.token_bytes(8 * len(people)), dtype=np.uint64)
        if np.unique(draws).size == draws.size:
            break
    return [people[i] for i in np.argsort(draws).tolist()]


def _verify(
    decisions: Mapping[int, Mapping[str, Any]],
    records: Sequence[Mapping[str, Any]],
    ids: Sequence[int],
    k: int,
) -> list[int]:
    """People in a released combination of fewer than k, the forms present taken as they
    show in the file (the true pattern: a form's answers show it even when masked).

    Values are compared by their type and `repr` (MASKED, None and values kept apart; 1,
    1.0 and True, or 0.0 and -0.0, too, as `_shared_decisions` keeps them), each distinct
    value coded once, then the combinations counted over integer codes (numpy: one group
    id per person, `anonymity.combination_sizes`)."""
    people = list(decisions)
    if not people:
        return []
    rows = list(decisions.values())
    names = sorted(name for name in rows[0] if name != FORMS_PRESENT)
    pattern = _patterns(records, ids)
    # People share their decisions' dict when released alike (`_shared_decisions`): each
    # distinct dict is read and coded once (a dict is equal to itself), then every person
    # takes their dict's combination. The same counts as coding every person's values.
    distinct = {id(row): row for row in rows}
    place = {key: index for index, key in enumerate(distinct)}
    which = np.fromiter(map(place.__getitem__, map(id, rows)), dtype=np.int64, count=len(rows))
    unique = list(distinct.values())
    # Read a row at a time (one C call per row), by slices of `_VERIFIED` rows (a slice's
    # tuples are held at once, not every row's), then coded a column at a time.
    values: list[list[Any]] = [[] for _ in names]
    if len(names) == 1:
        values[0].extend(map(operator.itemgetter(names[0]), unique))
    elif names:
        row = operator.itemgetter(*names)
        for start in range(0, len(unique), _VERIFIED):
            chunk = zip(*map(row, unique[start : start + _VERIFIED]), strict=True)
            for column, got in zip(values, chunk, strict=True):
                column.extend(got)
    unique_columns: list[tuple[npt.NDArray[np.int64], int]] = []
    for column in values:
        # By type and `repr`, as `_shared_decisions` keeps them apart and the file writes
        # them: 1, 1.0 and True, or 0.0 and -0.0, are equal keys to `_repr_codes`'s dict.
        unique_columns.append(_shown_codes(column))
        column.clear()
    combination, combinations = anonymity.combination_ids(unique_columns, len(unique))
    forms = _repr_codes(list(map(pattern.__getitem__, people)))
    sizes = anonymity.combination_sizes(
        [(forms, int(forms.max()) + 1), (combination[which], combinations)], len(people)
    )
    return [people[i] for i in np.flatnonzero(sizes < k).tolist()]


def record_column(records: Sequence[Mapping[str, Any]], name: str) -> Sequence[Any]:
    """Every record's value of `name`, in order (KeyError when a record has none): the
    column itself for records kept by column (`anonymity.Columns`)."""
    if isinstance(records, anonymity.Columns):
        values = records.columns.get(name)
        if values is None:
            raise KeyError(name)
        return values
    return [record[name] for record in records]


def _patterns(records: Sequence[Mapping[str, Any]], ids: Sequence[int]) -> dict[int, Any]:
    """Beneficiary id -> their true forms pattern."""
    return dict(zip(ids, record_column(records, FORMS_PRESENT), strict=True))


def _repr_codes(values: Sequence[Any]) -> npt.NDArray[np.int64]:
    """A code per value, equal when the values' `repr` are equal (each distinct value's
    `repr` taken once). Values equal as keys share the first one's code (1, 1.0 and True;
    0.0 and -0.0): for values of one type whose equal values write alike (the forms
    patterns); else `_shown_codes`."""
    codes: dict[Any, int] = dict.fromkeys(values, 0)
    by_repr: dict[str, int] = {}
    for value in codes:
        codes[value] = by_repr.setdefault(repr(value), len(by_repr))
    return np.fromiter(map(codes.__getitem__, values), dtype=np.int64, count=len(values))


def _shares(
    specs: Sequence[anonymity.QuasiIdentifier],
    levels: Mapping[str, int],
    decisions: Mapping[int, Mapping[str, Any]],
    records: Sequence[Mapping[str, Any]],
    positions: Mapping[int, int],
    demographics: Sequence[str],
    k: int,
) -> dict[str, list[dict[str, Any]]]:
    """Per demographic column, its shares among known values in the file against the truth
    of the SAME people (their raw answers at the level released): the people left out are
    not in either, and the report counts them apart. Only categories with at least k people
    both true and released are shown; none when the column is masked for everyone.

    `records` are the raw records, `positions` each released person's index in them."""
    shown: dict[str, list[dict[str, Any]]] = {}
    where = list(map(positions.__getitem__, decisions))
    for spec in specs:
        column = spec.column
        if column not in demographics:
            continue
        level = levels.get(column, 0)
        rows: list[dict[str, Any]] = []
        shown[column] = rows
        if level > len(spec.ladder):
            continue
        # Counted per distinct raw value, the ladder applied once to each.
        true: Counter[Any] = Counter()
        raw = record_column(records, column)
        for value, count in Counter(map(raw.__getitem__, where)).items():
            if value is not None and value != NO_ANSWER:
                true[spec.apply(level, value)] += count
        released = Counter(map(operator.itemgetter(column), decisions.values()))
        for missing in (None, MASKED, NO_ANSWER):
            released.pop(missing, None)
        true_total, released_total = sum(true.values()), sum(released.values())
        for category in sorted(true, key=str):
            if true[category] < k or released[category] < k:
                continue
            true_share = 100 * true[category] / true_total
            released_share = 100 * released[category] / released_total
            rows.append(
                {
                    "category": str(category),
                    "true_share": round(true_share, 1),
                    "released_share": round(released_share, 1),
                    "shift": round(released_share - true_share, 1),
                }
            )
    return shown


def qi_items(definition: Definition) -> tuple[Item, ...]:
    return definition.quasi_identifiers()
