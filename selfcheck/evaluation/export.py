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
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.evaluation import anonymise
from selfcheck.evaluation.anonymise import Plan, Profile, Released
from selfcheck.evaluation.scope import EvaluationFilters, response_conditions
from selfcheck.evaluation.writers import Column
from selfcheck.platform.labels import CHANNEL_LABELS, FORM_SHORT_LABELS
from selfcheck.platform.models import Answer, Channel, Response
from selfcheck.questionnaire.answer_types import ExportKind, option_values
from selfcheck.questionnaire.model import NO_ANSWER, Definition, FormKind, Item, Option, Variable

FORMS = (FormKind.BEFORE, FormKind.AFTER, FormKind.RETRO)
FORM_NUMBERS = {form.value: index + 1 for index, form in enumerate(FORMS)}
CHANNELS = tuple(channel.value for channel in Channel)
WORDINGS = ("standard", "easy")
BATCH = 2000
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
    if field.variable.moment.value == "pre":
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
        return Column(name, label, "str", width=TEXT_WIDTH)
    if field.option is not None:
        return Column(name, label, "int", ((0, _("non coché")), (1, _("coché"))))
    labels = tuple((value, _(text)) for value, text in item.type.value_labels(item))
    return Column(name, label, "int", labels)


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


def qi_columns(definition: Definition) -> list[Column]:
    def item_column(item: Item) -> Column:
        assert item.quasi_identifier is not None
        values = qi_values(item)
        labels = tuple((values[o.code], _(o.label)) for o in item.options)
        groups = tuple((values[g.code], _(g.label)) for g in item.quasi_identifier.groups())
        return Column(item.quasi_identifier.column, _(item.label), "int", labels + groups)

    return [
        Column("structure", _("Structure (identifiant court)"), "str", width=64),
        Column("department", _("Département"), "str", width=3),
        Column("region", _("Région (code INSEE)"), "str", width=3),
        *(item_column(item) for item in definition.quasi_identifiers()),
    ]


def form_detail_columns(prefix: str) -> list[Column]:
    return [
        Column(f"{prefix}month", _("Mois de l'envoi (AAAA-MM)"), "str", width=7),
        Column(f"{prefix}channel", _("Mode de passation"), "int", _labelled(CHANNEL_LABELS)),
        Column(f"{prefix}wording", _("Version du texte"), "int", _labelled(WORDING_LABELS)),
        Column(f"{prefix}version", _("Version du questionnaire"), "str", width=32),
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
        self.value_maps: dict[str, dict[str, int]] = {}
        for item in definition.items():
            if item.options:
                self.value_maps[item.code] = option_values(item.options)
        head = [Column("pseudonym", _("Pseudonyme (propre à cet export)"), "str", width=16)]
        head += qi_columns(definition)
        if shape is Shape.WIDE:
            columns = list(head)
            for form in FORMS:
                columns += form_detail_columns(f"{form.value}_")
                columns += [field_column(f, form) for f in self.fields[form]]
        else:
            columns = [
                *head,
                Column("form", _("Questionnaire"), "int", _labelled(FORM_LABELS)),
                *form_detail_columns(""),
                Column(
                    "variable",
                    _("Variable (voir le dictionnaire des variables)"),
                    "str",
                    width=40,
                ),
                Column("value", _("Valeur (code)"), "int"),
            ]
            if free_text:
                columns.append(Column("text", _("Réponse libre"), "str", width=TEXT_WIDTH))
        self.columns = columns

    def qi_cells(self, pseudonym: str, released: Released) -> list[Any]:
        values = list(released.values) + [None] * (len(self.qi_values) - len(released.values))
        return [
            pseudonym,
            released.structure,
            released.department,
            released.region,
            *(
                numbers.get(value) if value is not None else None
                for numbers, value in zip(self.qi_values, values, strict=False)
            ),
        ]

    def cell(self, field: Field, answers: Mapping[str, list[str]]) -> int | str | None:
        given = answers.get(field.variable.code)  # NO_ANSWER already left out when read
        if not given:
            return None
        item = field.item
        return item.type.export_value(
            item, given, field.option, self.value_maps.get(item.code, _NO_VALUES)
        )

    def rows(self, person: PersonAnswers, head: list[Any]) -> Iterator[list[Any]]:
        if self.shape is Shape.WIDE:
            row = list(head)
            for form in FORMS:
                sent = person.forms.get(form.value)
                if sent is None:
                    row += [None] * (4 + len(self.fields[form]))
                    continue
                row += sent.details()
                row += [self.cell(field, sent.answers) for field in self.fields[form]]
            yield row
            return
        for form in FORMS:
            sent = person.forms.get(form.value)
            if sent is None:
                continue
            details = [FORM_NUMBERS[form.value], *sent.details()]
            for field in self.fields[form]:
                value = self.cell(field, sent.answers)
                if value is None:
                    continue
                if isinstance(value, str):
                    yield [*head, *details, field.suffix, None, value]
                elif self.free_text:
                    yield [*head, *details, field.suffix, value, None]
                else:
                    yield [*head, *details, field.suffix, value]


@dataclass
class SentForm:
    channel: str
    wording: str
    version: str
    submitted_at: datetime | None
    answers: dict[str, list[str]]

    def details(self) -> list[Any]:
        month = self.submitted_at.strftime("%Y-%m") if self.submitted_at else None
        channel = CHANNELS.index(self.channel) + 1 if self.channel in CHANNELS else None
        wording = WORDINGS.index(self.wording) + 1 if self.wording in WORDINGS else None
        return [month, channel, wording, self.version]


@dataclass
class PersonAnswers:
    beneficiary_id: int
    structure_id: int | None
    forms: dict[str, SentForm]

    def profile(self, codes: Sequence[str]) -> Profile:
        """The same rule as `anonymise.profile_counts` (max over before/retro answers).

        `codes`: the quasi-identifier items, as `Definition.quasi_identifiers()`.
        """
        values: dict[str, str] = {}
        for form in anonymise.PROFILE_FORMS:
            sent = self.forms.get(form)
            if sent is None:
                continue
            for item in codes:
                for value in sent.answers.get(item, ()):
                    if item not in values or value > values[item]:
                        values[item] = value
        return Profile(self.structure_id, *(values.get(item) for item in codes))


def stream_people(db: Session, filters: EvaluationFilters) -> Iterator[PersonAnswers]:
    """Every person in scope with their submitted answers, one at a time (server-side cursor)."""
    query = (
        select(
            Response.beneficiary_id,
            Response.structure_id,
            Response.form,
            Response.channel,
            Response.wording,
            Response.definition_version,
            Response.submitted_at,
            Answer.variable,
            Answer.value,
        )
        .select_from(Response)
        .outerjoin(Answer, Answer.response_id == Response.id)
        .where(*response_conditions(filters))
        .order_by(Response.beneficiary_id, Response.form)
        .execution_options(yield_per=BATCH, stream_results=True)
    )
    # Core rows on the session's connection (same transaction), without the ORM layer.
    result = db.connection().execute(query)
    for beneficiary_id, rows in itertools.groupby(result, key=lambda row: row[0]):
        person = PersonAnswers(beneficiary_id, None, {})
        forms = person.forms
        for _id, structure_id, form, channel, wording, version, sent_at, variable, value in rows:
            if person.structure_id is None or structure_id > person.structure_id:
                person.structure_id = structure_id
            sent = forms.get(form)
            if sent is None:
                sent = forms[form] = SentForm(channel, wording, version, sent_at, {})
            if variable is not None and value != NO_ANSWER:
                sent.answers.setdefault(variable, []).append(value)
        yield person
    result.close()


@dataclass
class Written:
    rows: int
    people: int
    plan: Plan


def write_rows(
    db: Session,
    filters: EvaluationFilters,
    layout: Layout,
    plan: Plan,
    key: bytes,
    write: Callable[[Sequence[Any]], None],
) -> Written:
    """Stream every exported row of the scope into `write`; people left out are skipped."""
    rows = people = 0
    codes = [item.code for item in layout.qi_items]
    for person in stream_people(db, filters):
        released = plan.release(person.profile(codes))
        if released is None:
            continue
        people += 1
        head = layout.qi_cells(anonymise.pseudonym(key, person.beneficiary_id), released)
        for row in layout.rows(person, head):
            write(row)
            rows += 1
    return Written(rows, people, plan)
