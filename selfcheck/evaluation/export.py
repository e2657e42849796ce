"""Anonymised exports of the submitted responses in an evaluator's scope.

Two shapes:
- wide: one row per person (pseudonym), the person's quasi-identifiers (generalised, see
  `anonymise`), then every variable of each form side by side, prefixed by the form
  (`before_COMFORT`, `after_COMFORT`, `retro_COMFORT_PRE`); a multiple choice gives one 0/1
  column per option, numbered by the option's position (`before_DEVICES_1`; the codebook
  gives the option code), so that every name fits Stata's 32 characters;
- long: one row per person x form x variable that holds a value (a multiple choice: one row
  per option, 0/1), with the same quasi-identifiers and form details on every row.

Answers are coded as numbers with value labels (a scale keeps its digits; other options are
numbered by position, 1 first): the same codes in every format. Free text comes only when the
evaluator may read it. Rows are read with a streaming query ordered by person and written one
person at a time: memory depends on one person's answers, not on how many there are.
CSV wide takes a faster path that reads the people once for the plan and the file
(`csv_wide`); the same bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import itertools
import json
import queue
import threading
from collections.abc import (
    Callable,
    Collection,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Integer, Result, Select, and_, func, literal, select, true
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from selfcheck.evaluation import anonymise
from selfcheck.evaluation.anonymise import Plan
from selfcheck.evaluation.anonymity import MASKED
from selfcheck.evaluation.regions import region_of
from selfcheck.evaluation.scope import EvaluationFilters, response_conditions
from selfcheck.evaluation.writers import Column
from selfcheck.evaluation.writers.base import Missing
from selfcheck.platform.labels import CHANNEL_LABELS, FORM_SHORT_LABELS
from selfcheck.platform.models import Answer, Channel, Response
from selfcheck.questionnaire.answer_types import ExportKind, option_values
from selfcheck.questionnaire.model import (
    NO_ANSWER,
    Definition,
    FormKind,
    Geography,
    Item,
    Moment,
    Option,
    Variable,
)

# Every form, the follow-ups last (issue 15): their columns come after, their numbers too.
# The anonymiser's order, which its forms pattern's bits follow.
FORMS = anonymise.FORMS
FORM_NUMBERS = {form.value: index + 1 for index, form in enumerate(FORMS)}
CHANNELS = tuple(channel.value for channel in Channel)
WORDINGS = ("standard", "easy")
BATCH = 2000
# Rows (submitted forms) a fetch brings on PostgreSQL; up to four such chunks are held at
# once (two queued, one read by the thread, one being written): a few MB.
PREFETCH_ROWS = 500
PEOPLE_PER_QUERY = 100  # people read at once when writing in the plan's random order
TEXT_WIDTH = 2000  # UTF-8 bytes: 500 characters of free text at most

FORM_LABELS = FORM_SHORT_LABELS
WORDING_LABELS: Mapping[str, object] = {"standard": _l("standard"), "easy": _l("facile à lire")}
# Exported number of the first group of a quasi-identifier's ladder (60_plus...): after the
# item's own options, which keep their numbers.
GROUP_FIRST_VALUE = 21


_NO_VALUES: Mapping[str, int] = {}  # numbers and texts: no option values


class Shape(enum.StrEnum):
    WIDE = "wide"
    LONG = "long"


def exported_items(definition: Definition, free_text: bool) -> list[Item]:
    return [
        item
        for item in definition.items()
        if item.quasi_identifier is None and (free_text or not item.type.free_text)
    ]


@dataclass(frozen=True)
class Field:
    """One exported value of a form: a variable, or one option of a multiple choice."""

    suffix: str  # column name without the form prefix: COMFORT, T01_PRE, DEVICES_3
    variable: Variable
    option: Option | None = None

    @property
    def item(self) -> Item:
        return self.variable.item


def form_fields(definition: Definition, form: FormKind, free_text: bool) -> list[Field]:
    fields: list[Field] = []
    for variable in definition.variables(form):
        item = variable.item
        if item.quasi_identifier is not None or (item.type.free_text and not free_text):
            continue
        # One column per variable, or one 0/1 column per option (a multiple choice).
        fields.extend(
            Field(variable.code, variable)
            if option is None
            else Field(f"{variable.code}_{index + 1}", variable, option)
            for index, option in enumerate(item.type.export_options(item))
        )
    return fields


def field_label(field: Field) -> str:
    label = str(_(field.item.label))
    if field.variable.moment is Moment.PRE:
        label = str(_("%(question)s (avant l'accompagnement)", question=label))
    if field.option is not None:
        label = str(_("%(question)s : %(option)s", question=label, option=_(field.option.label)))
    return label


def field_column(field: Field, form: FormKind | None) -> Column:
    name = f"{form.value}_{field.suffix}" if form else field.suffix
    item = field.item
    label = field_label(field)
    if form is not None:
        label = f"[{FORM_LABELS[form.value]}] {label}"
    if item.type.export_kind is ExportKind.STR:
        return Column(name, label, ExportKind.STR, width=TEXT_WIDTH)
    if field.option is not None:
        return Column(name, label, ExportKind.INT, ((0, _("non coché")), (1, _("coché"))))
    labels = tuple((value, _(text)) for value, text in item.type.value_labels(item))
    return Column(name, label, ExportKind.INT, labels)


def _labelled(mapping: Mapping[str, object]) -> tuple[tuple[int, str], ...]:
    return tuple((index + 1, str(label)) for index, label in enumerate(mapping.values()))


def qi_values(item: Item) -> dict[str, int]:
    """Exported number of each value a quasi-identifier can be released as (options, groups)."""
    values = option_values(item.options)
    if item.quasi_identifier is not None:
        first = max(GROUP_FIRST_VALUE, max(values.values(), default=0) + 1)
        for index, group in enumerate(item.quasi_identifier.groups()):
            values.setdefault(group.code, first + index)
    return values


def context_values(definition: Definition, detail: str, raw: Sequence[str]) -> dict[str, int]:
    """Exported number of each value of a context column (channel...) and of its groups."""
    values = {code: index + 1 for index, code in enumerate(raw)}
    first = max(GROUP_FIRST_VALUE, len(values) + 1)
    for step in definition.disclosure.context_column(detail).ladder:
        for group in step.groups:
            values.setdefault(group.code, first + len(values) - len(raw))
    return values


def context_labels(
    definition: Definition, detail: str, labels: Mapping[str, object]
) -> tuple[tuple[int, str], ...]:
    values = context_values(definition, detail, list(labels))
    out = [(values[code], str(label)) for code, label in labels.items()]
    for step in definition.disclosure.context_column(detail).ladder:
        out += [(values[g.code], str(_(g.label))) for g in step.groups]
    return tuple(out)


def forms_present_labels() -> tuple[tuple[int, str], ...]:
    """The pattern of forms present: one bit per form (1 before, 2 after, 4 retro)."""
    labels = []
    for number in range(1, 1 << len(FORMS)):
        names = [
            str(FORM_LABELS[form.value])
            for form in FORMS
            if number & anonymise.FORM_BITS[form.value]
        ]
        labels.append((number, " + ".join(names)))
    return tuple(labels)


def qi_columns(definition: Definition) -> list[Column]:
    def item_column(item: Item) -> Column:
        assert item.quasi_identifier is not None
        values = qi_values(item)
        labels = tuple((values[o.code], _(o.label)) for o in item.options)
        groups = tuple((values[g.code], _(g.label)) for g in item.quasi_identifier.groups())
        return Column(item.quasi_identifier.column, _(item.label), ExportKind.INT, labels + groups)

    return [
        Column("structure", _("Structure (identifiant court)"), ExportKind.STR, width=64),
        Column("department", _("Département"), ExportKind.STR, width=3),
        Column("region", _("Région (code INSEE)"), ExportKind.STR, width=3),
        *(item_column(item) for item in definition.quasi_identifiers()),
        Column(
            anonymise.FORMS_PRESENT,
            _("Questionnaires remplis par la personne"),
            ExportKind.INT,
            forms_present_labels(),
        ),
    ]


def form_detail_columns(prefix: str, definition: Definition) -> list[Column]:
    return [
        Column(
            f"{prefix}month",
            _("Période de l'envoi (AAAA-MM mois, AAAA-Tn trimestre, AAAA année)"),
            ExportKind.STR,
            width=7,
        ),
        Column(
            f"{prefix}channel",
            _("Mode de passation"),
            ExportKind.INT,
            context_labels(definition, "channel", CHANNEL_LABELS),
        ),
        Column(
            f"{prefix}wording",
            _("Version du texte"),
            ExportKind.INT,
            context_labels(definition, "wording", WORDING_LABELS),
        ),
        Column(f"{prefix}version", _("Version du questionnaire"), ExportKind.STR, width=32),
    ]


class Layout:
    """The columns of one export and how to turn one person into rows."""

    def __init__(self, definition: Definition, shape: Shape, free_text: bool) -> None:
        self.definition = definition
        self.shape = shape
        self.free_text = free_text
        self.fields = {form: form_fields(definition, form, free_text) for form in FORMS}
        self.qi_items = definition.quasi_identifiers()
        self.qi_values = [qi_values(item) for item in self.qi_items]
        self.detail_values = {
            "channel": context_values(definition, "channel", CHANNELS),
            "wording": context_values(definition, "wording", WORDINGS),
        }
        # The plan's column of each form's month, channel, wording and version.
        self.detail_names = {
            form: tuple(anonymise.detail_column(form, detail) for detail in anonymise.DETAILS)
            for form in FORMS
        }
        self.value_maps: dict[str, dict[str, int]] = {}
        for item in definition.items():
            if item.options:
                self.value_maps[item.code] = option_values(item.options)
        head = [
            Column("pseudonym", _("Pseudonyme (propre à cet export)"), ExportKind.STR, width=16)
        ]
        head += qi_columns(definition)
        if shape is Shape.WIDE:
            columns = list(head)
            for form in FORMS:
                columns += form_detail_columns(f"{form.value}_", definition)
                columns += [field_column(f, form) for f in self.fields[form]]
        else:
            columns = [
                *head,
                Column("form", _("Questionnaire"), ExportKind.INT, _labelled(FORM_LABELS)),
                *form_detail_columns("", definition),
                Column(
                    "variable",
                    _("Variable (voir le dictionnaire des variables)"),
                    ExportKind.STR,
                    width=40,
                ),
                Column("value", _("Valeur (code)"), ExportKind.INT),
            ]
            if free_text:
                columns.append(Column("text", _("Réponse libre"), ExportKind.STR, width=TEXT_WIDTH))
        self.columns = [with_missing_labels(column) for column in columns]

    def head_columns(self) -> tuple[str, ...]:
        """The plan's columns that `qi_cells` reads (its cells after the pseudonym depend
        on these values only)."""
        items = (item.quasi_identifier.column for item in self.qi_items if item.quasi_identifier)
        return (anonymise.PLACE, "_department", *items, anonymise.FORMS_PRESENT)

    def qi_cells(self, pseudonym: str, released: Mapping[str, Any]) -> list[Any]:
        """The head of every row of a person: pseudonym, place, QI items, forms present.

        Reads `head_columns` of `released` only (csv_wide writes the rest of the head once
        per combination of their values)."""
        place = released.get(anonymise.PLACE)
        structure: str | Missing = Missing.MASKED
        department: str | Missing = Missing.MASKED
        region: str | Missing = Missing.MASKED
        if isinstance(place, str):  # the structure itself
            structure = place
            department = released.get("_department", Missing.MASKED)
        elif isinstance(place, tuple):
            level, value = place
            if level == Geography.DEPARTMENT:
                department = value
            elif level == Geography.REGION:
                region = value
        if isinstance(department, str):
            region = region_of(department) or Missing.MASKED
        items = []
        for item, numbers in zip(self.qi_items, self.qi_values, strict=True):
            assert item.quasi_identifier is not None
            items.append(_coded(released.get(item.quasi_identifier.column), numbers))
        forms = released.get(anonymise.FORMS_PRESENT)
        return [
            pseudonym,
            structure,
            department,
            region,
            *items,
            Missing.MASKED if forms is MASKED else forms,
        ]

    def details(self, released: Mapping[str, Any], form: FormKind) -> list[Any]:
        """The month, channel, wording and version of one form, as released."""
        month_name, channel_name, wording_name, version_name = self.detail_names[form]
        month = released.get(month_name)
        channel = released.get(channel_name)
        wording = released.get(wording_name)
        version = released.get(version_name)
        return [
            Missing.MASKED if month is MASKED else month,
            _coded(channel, self.detail_values["channel"]),
            _coded(wording, self.detail_values["wording"]),
            Missing.MASKED if version is MASKED else version,
        ]

    def cell(self, field: Field, answers: Mapping[str, list[str]]) -> int | str | Missing | None:
        given = answers.get(field.variable.code)
        if not given:
            return None  # not asked
        if given == [NO_ANSWER]:
            return Missing.NO_ANSWER
        item = field.item
        return item.type.export_value(
            item, given, field.option, self.value_maps.get(item.code, _NO_VALUES)
        )

    def rows(
        self, person: PersonAnswers, head: list[Any], released: Mapping[str, Any]
    ) -> Iterator[list[Any]]:
        if self.shape is Shape.WIDE:
            row = list(head)
            for form in FORMS:
                sent = person.forms.get(form.value)
                if sent is None:
                    row += [None] * (4 + len(self.fields[form]))
                    continue
                row += self.details(released, form)
                row += [self.cell(field, sent.answers) for field in self.fields[form]]
            yield row
            return
        for form in FORMS:
            sent = person.forms.get(form.value)
            if sent is None:
                continue
            details = [FORM_NUMBERS[form.value], *self.details(released, form)]
            for field in self.fields[form]:
                value = self.cell(field, sent.answers)
                if value is None:
                    continue
                if isinstance(value, str):
                    yield [*head, *details, field.suffix, None, value]
                elif (isinstance(value, Missing) and self.free_text) or self.free_text:
                    yield [*head, *details, field.suffix, value, None]
                else:
                    yield [*head, *details, field.suffix, value]


CACHE_MAX = 1024  # distinct answers remembered per variable (numbers; choices have fewer)


class WideCoder:
    """The wide rows of `Layout.rows`, each cell passed through `prepare` (the writer's own
    coding: text for CSV), with each variable's cells coded once per distinct answer.

    A variable's cells depend only on its own answer (`Layout.cell`), and the answers of a
    choice or a number take few distinct values: the cells of one (variable, answer) are
    remembered, so that a row costs a lookup per variable instead of the coding and the
    writer's conversion of every cell. Free text is never remembered.
    """

    def __init__(self, layout: Layout, prepare: Callable[[Any], Any]) -> None:
        self.layout = layout
        self.prepare = prepare
        blank = prepare(None)
        Group = tuple[
            str, tuple[Field, ...], dict[tuple[str, ...], tuple[Any, ...]] | None, list[Any]
        ]
        self.forms: list[tuple[FormKind, list[Group], list[Any]]] = []
        for form in FORMS:
            groups: list[Group] = []
            # A variable's fields are side by side (`form_fields`): one group each.
            for code, same in itertools.groupby(layout.fields[form], key=_variable_code):
                fields = tuple(same)
                remembered = fields[0].item.type.export_kind is not ExportKind.STR
                groups.append((code, fields, {} if remembered else None, [blank] * len(fields)))
            self.forms.append((form, groups, [blank] * (4 + len(layout.fields[form]))))
        # `row_released`: per decisions dict (by id), the dict, its prepared head after the
        # pseudonym and each form's prepared details.
        self.by_released: dict[
            int, tuple[Mapping[str, Any], list[Any], dict[FormKind, list[Any]]]
        ] = {}

    def row(
        self, person: PersonAnswers, head: Sequence[Any], released: Mapping[str, Any]
    ) -> list[Any]:
        prepare = self.prepare
        details = self.layout.details
        return self._row(
            person,
            [prepare(value) for value in head],
            lambda form: [prepare(value) for value in details(released, form)],
        )

    def row_released(
        self, person: PersonAnswers, pseudonym: str, released: Mapping[str, Any]
    ) -> list[Any]:
        """`row(person, layout.qi_cells(pseudonym, released), released)`, the head after the
        pseudonym and each form's details prepared once per decisions dict: the people
        released alike share theirs (`anonymise._shared_decisions`), and the head and the
        details depend on it only (`qi_cells`, `details`). Remembered by the dict itself
        (kept, so that its id stays its own), up to `CACHE_MAX` dicts at a time."""
        known = self.by_released.get(id(released))
        if known is None or known[0] is not released:
            if len(self.by_released) >= CACHE_MAX:
                self.by_released.clear()
            prepare, layout = self.prepare, self.layout
            _pseudonym, *head = layout.qi_cells("", released)
            known = (
                released,
                [prepare(value) for value in head],
                {
                    form: [prepare(value) for value in layout.details(released, form)]
                    for form, _groups, _absent in self.forms
                },
            )
            self.by_released[id(released)] = known
        return self._row(person, [self.prepare(pseudonym), *known[1]], known[2].__getitem__)

    def _row(
        self,
        person: PersonAnswers,
        row: list[Any],
        details: Callable[[FormKind], list[Any]],
    ) -> list[Any]:
        """`row` (the head, prepared) followed by each form's prepared `details` and cells."""
        prepare = self.prepare
        cell = self.layout.cell
        for form, groups, absent in self.forms:
            sent = person.forms.get(form.value)
            if sent is None:
                row += absent
                continue
            row += details(form)
            answers = sent.answers
            for code, fields, memory, blank in groups:
                given = answers.get(code)
                if not given:
                    row += blank
                    continue
                key = tuple(given)
                cells = memory.get(key) if memory is not None else None
                if cells is None:
                    cells = tuple(prepare(cell(field, answers)) for field in fields)
                    if memory is not None and len(memory) < CACHE_MAX:
                        memory[key] = cells
                row += cells
        return row


def _variable_code(field: Field) -> str:
    return field.variable.code


@dataclass
class SentForm:
    channel: str
    wording: str
    version: str
    submitted_at: datetime | None
    answers: dict[str, list[str]]


@dataclass
class PersonAnswers:
    beneficiary_id: int
    structure_id: int | None
    forms: dict[str, SentForm]


def stream_people(
    db: Session,
    filters: EvaluationFilters,
    people: Sequence[int] | None = None,
    variables: Collection[str] | None = None,
) -> Iterator[PersonAnswers]:
    """Every person in scope (or only `people`, by beneficiary id) with their submitted
    answers, one at a time (server-side cursor). NO_ANSWER is kept (a distinct missing).
    In the order of `people` on PostgreSQL, of beneficiary ids otherwise.

    `variables`: only these answers are read (every submitted form still comes, with its
    details, even without any of them): the anonymisation plan needs the quasi-identifiers
    only, a small share of the rows.
    """
    conditions = response_conditions(filters)
    postgres = db.get_bind().dialect.name == "postgresql"
    # One row per submitted form with its answers aggregated into two parallel lists (the
    # same aggregation pass, so the same order): about 60 times fewer rows to fetch and loop
    # over than one row per answer.
    if postgres:
        query = _postgres_query(RESPONSE_DETAILS, conditions, people, variables)
    else:  # SQLite: JSON arrays
        query = sqlite_query(conditions, people, variables)
    fetched = fetch_rows(db, query)
    decode: Callable[[Any], Sequence[Any]] = (lambda v: v or ()) if postgres else json.loads
    for beneficiary_id, rows in itertools.groupby(fetched, key=lambda row: row[0]):
        person = PersonAnswers(beneficiary_id, None, {})
        forms = person.forms
        for _id, structure_id, form, channel, wording, version, sent_at, names, values in rows:
            if person.structure_id is None or structure_id > person.structure_id:
                person.structure_id = structure_id
            sent = forms.get(form)
            if sent is None:
                sent = forms[form] = SentForm(channel, wording, version, sent_at, {})
            _add_answers(sent.answers, decode(names), decode(values))
        yield person


def _add_answers(
    answers: dict[str, list[str]], names: Sequence[str | None], values: Sequence[str]
) -> None:
    """`values` added to `answers`, each to the list of its variable (`names`, parallel; a
    None name: the outer join's empty row, no answer), in the order read.

    Most forms give each variable once: then a dict of one-value lists is made at once (a
    comprehension, no lookup per answer); else (a multiple choice, several values of one
    variable, a variable already there, an empty row) one answer at a time."""
    if len(names) != len(values):
        raise ValueError("as many values as variables")
    if not answers and None not in names and len(set(names)) == len(names):
        named = cast(Sequence[str], names)  # no None among them
        answers.update({variable: [value] for variable, value in zip(named, values, strict=True)})
        return
    for variable, value in zip(names, values, strict=True):
        if variable is not None:  # the outer join's empty row: no answer
            given = answers.get(variable)
            if given is None:
                answers[variable] = [value]
            else:
                given.append(value)


# A submitted form's own columns, first in every row of the queries below.
RESPONSE_DETAILS = (
    Response.beneficiary_id,
    Response.structure_id,
    Response.form,
    Response.channel,
    Response.wording,
    Response.definition_version,
    Response.submitted_at,
)


def sqlite_query(
    conditions: list[ColumnElement[bool]],
    people: Sequence[int] | None = None,
    variables: Collection[str] | None = None,
) -> Select[Any]:
    """SQLite: one row per submitted form, its answers' variables and values as two JSON
    arrays (the same aggregation, so the same order), by person then form."""
    joined = Answer.response_id == Response.id
    if variables is not None:
        joined = and_(joined, Answer.variable.in_(sorted(variables)))
    if people is not None:
        conditions = [*conditions, Response.beneficiary_id.in_(list(people))]
    return (
        select(
            *RESPONSE_DETAILS,
            func.json_group_array(Answer.variable),
            func.json_group_array(Answer.value),
        )
        .select_from(Response)
        .outerjoin(Answer, joined)
        .where(*conditions)
        .group_by(Response.id)
        .order_by(Response.beneficiary_id, Response.form)
    )


def fetch_rows(db: Session, query: Select[Any]) -> Generator[Any, None, None]:
    """The rows of `query`, streamed (server-side cursor) on the session's connection (same
    transaction), without the ORM layer; on PostgreSQL the next rows are fetched by a thread
    while the caller works (`_prefetched`)."""
    postgres = db.get_bind().dialect.name == "postgresql"
    size = PREFETCH_ROWS if postgres else BATCH
    result = db.connection().execute(query.execution_options(yield_per=size, stream_results=True))
    try:
        yield from _prefetched(result, size) if postgres else result
    finally:
        result.close()


def _prefetched(result: Result[Any], size: int) -> Iterator[Any]:
    """The rows of `result`, the next `size` fetched by a thread while the caller works on
    these: the database server prepares rows while Python codes and writes the previous
    ones (the driver lets other threads run while it waits for the server). The session
    is used by one thread at a time: the caller must not use it until the rows are read or
    the generator closed (which stops the thread and waits for it)."""
    chunks: queue.Queue[Sequence[Any] | BaseException] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def fetch() -> None:
        try:
            while not stop.is_set():
                chunk = result.fetchmany(size)
                chunks.put(chunk)
                if not chunk:
                    return
        except BaseException as error:  # given to the caller, raised there
            chunks.put(error)

    thread = threading.Thread(target=fetch, name="export-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            chunk = chunks.get()
            if isinstance(chunk, BaseException):
                raise chunk
            if not chunk:
                return
            yield from chunk
    finally:
        stop.set()
        while thread.is_alive():  # a put waiting for room: make some
            with contextlib.suppress(queue.Empty):
                chunks.get(timeout=0.05)
        thread.join()


def _postgres_query(
    details: tuple[Any, ...],
    conditions: list[ColumnElement[bool]],
    people: Sequence[int] | None,
    variables: Collection[str] | None,
) -> Select[Any]:
    """PostgreSQL: each response's answers aggregated by a lateral subquery (an index-only
    scan of `uq_answer_value` per response), instead of sorting the joined answers of the
    whole scope to group them: in the order of `people` when given (one array parameter
    and its positions, so one query for any number of people), else by person."""
    own = Answer.response_id == Response.id
    if variables is not None:
        own = and_(own, Answer.variable.in_(sorted(variables)))
    answers = (
        select(
            func.array_agg(Answer.variable).label("names"),
            func.array_agg(Answer.value).label("answer_values"),
        )
        .where(own)
        .lateral("answers")
    )
    columns = (*details, answers.c.names, answers.c.answer_values)
    if people is None:
        return (
            select(*columns)
            .select_from(Response)
            .outerjoin(answers, true())
            .where(*conditions)
            .order_by(Response.beneficiary_id, Response.form)
        )
    wanted = (
        func.unnest(sa_cast(literal(list(people), ARRAY(Integer)), ARRAY(Integer)))
        .table_valued("id", with_ordinality="position")
        .render_derived()
    )
    return (
        select(*columns)
        .select_from(wanted)
        .join(Response, Response.beneficiary_id == wanted.c.id)
        .outerjoin(answers, true())
        .where(*conditions)
        .order_by(wanted.c.position, Response.form)
    )


@dataclass
class Written:
    rows: int
    people: int
    plan: Plan
    released: list[int] = dataclasses.field(default_factory=list)  # the people written


def write_rows(
    db: Session,
    filters: EvaluationFilters,
    layout: Layout,
    plan: Plan,
    key: bytes,
    write: Callable[[Sequence[Any]], None],
    prepare: Callable[[Any], Any] | None = None,
) -> Written:
    """Write the people of the plan into `write`, in the plan's random order.

    `prepare`: the writer's coding of one cell (`Writer.prepare`); the rows given to `write`
    are then made of prepared cells (`Writer.write_prepared`). Without it, raw cells.

    People are streamed (PostgreSQL: one query in the plan's order; SQLite:
    `PEOPLE_PER_QUERY` at a time): memory depends on a few people's answers, not on how
    many there are. People left out by the plan are never read.
    """
    coder = WideCoder(layout, prepare or _same) if layout.shape is Shape.WIDE else None
    pseudonym = anonymise.pseudonyms(key)
    rows = people = 0
    written: list[int] = []
    for person in _in_plan_order(db, filters, plan.order):
        beneficiary_id = person.beneficiary_id
        released = plan.released(beneficiary_id)
        if released is None:
            continue
        person = as_planned(person, plan.patterns.get(beneficiary_id))
        people += 1
        written.append(beneficiary_id)
        if coder is not None:
            write(coder.row_released(person, pseudonym(beneficiary_id), released))
            rows += 1
            continue
        head = layout.qi_cells(pseudonym(beneficiary_id), released)
        for row in layout.rows(person, head, released):
            write(row if prepare is None else [prepare(value) for value in row])
            rows += 1
    if people < sum(1 for b in plan.order if plan.released(b) is not None):
        # Someone of the plan was erased or purged meanwhile (`as_planned`).
        raise DataChanged("a person of the plan is gone")
    return Written(rows, people, plan, written)


def _in_plan_order(
    db: Session, filters: EvaluationFilters, order: Sequence[int]
) -> Iterator[PersonAnswers]:
    """The people of `order` (those still in scope), in that order. PostgreSQL: one
    streaming query in that order. SQLite: `PEOPLE_PER_QUERY` people per query (each
    batch held, in id order, then given out in the plan's)."""
    if db.get_bind().dialect.name == "postgresql":
        yield from stream_people(db, filters, order)
        return
    for start in range(0, len(order), PEOPLE_PER_QUERY):
        batch = order[start : start + PEOPLE_PER_QUERY]
        found = {p.beneficiary_id: p for p in stream_people(db, filters, batch)}
        for beneficiary_id in batch:
            person = found.pop(beneficiary_id, None)
            if person is not None:
                yield person


def _same(value: Any) -> Any:
    return value


class DataChanged(RuntimeError):
    """Forms the plan saw are gone by the time the file is written (an erasure or a purge
    meanwhile): the export fails, nothing is released nor remembered; run it again."""


def as_planned(person: PersonAnswers | None, planned: int | None) -> PersonAnswers:
    """The person with the forms the plan saw only. The plan and the file are read by
    different statements: on PostgreSQL (READ COMMITTED) a form sent in between would be
    written although no class of the plan has it (a row like no other, and a join key the
    memory never saw). A planned form gone meanwhile: DataChanged, as a file written
    without it would show a class under k."""
    if person is None:
        raise DataChanged("a person of the plan is gone")
    if planned is None:
        return person
    kept = {
        form: sent
        for form, sent in person.forms.items()
        if anonymise.FORM_BITS.get(form, 0) & planned
    }
    if anonymise.forms_pattern(kept) != planned:
        raise DataChanged("a form of the plan is gone")
    if len(kept) == len(person.forms):
        return person
    return dataclasses.replace(person, forms=kept)


MISSING_LABELS: Mapping[Missing, object] = {
    Missing.NO_ANSWER: _l("Sans réponse (question posée)"),
    Missing.MASKED: _l("Masqué pour l'anonymat"),
}


def with_missing_labels(column: Column) -> Column:
    """A number column labels the missing codes too (a question not asked stays empty)."""
    if column.kind is not ExportKind.INT:
        return column
    extra = tuple((missing.value, str(label)) for missing, label in MISSING_LABELS.items())
    return dataclasses.replace(column, value_labels=column.value_labels + extra)


def _coded(value: Any, numbers: Mapping[str, int]) -> int | Missing | None:
    """A released QI value as its exported number (or the missing it stands for)."""
    if value is None:
        return None
    if value is MASKED:
        return Missing.MASKED
    if value == NO_ANSWER:
        return Missing.NO_ANSWER
    return numbers.get(value)
