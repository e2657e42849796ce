"""The entry screen: every question of a paper form, in the paper's order and numbering."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from selfcheck.entry.values import Values
from selfcheck.journey import operations as journey
from selfcheck.journey.page_view import input_id, question_numbers
from selfcheck.questionnaire.answer_types import EntryKind
from selfcheck.questionnaire.model import (
    NO_ANSWER,
    Definition,
    FormKind,
    Item,
    Moment,
    variable_code,
)

# --- the entry screen ------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryOption:
    key: int  # the number typed to choose it; 0 is "Sans réponse"
    code: str
    label: str
    # What the compact screen shows: the short heading printed on the paper grids, if any.
    heading: str
    input_id: str
    checked: bool
    exclusive: bool


@dataclass(frozen=True)
class EntryVariable:
    code: str
    moment: Moment
    options: tuple[EntryOption, ...]  # the item's options, then "Sans réponse" (key 0)
    text: str  # a typed number or text
    no_answer: bool
    errors: tuple[str, ...]

    @property
    def typed(self) -> bool:
        return self.no_answer or bool(self.text) or any(o.checked for o in self.options)

    @property
    def first_input_id(self) -> str:
        return self.options[0].input_id if self.options else input_id(self.code)

    @property
    def focus_id(self) -> str:
        """Where the keyboard lands: the chosen radio button, else the first input."""
        chosen = next((o.input_id for o in self.options if o.checked), None)
        return chosen or self.first_input_id

    @property
    def no_answer_id(self) -> str:
        return input_id(self.code, NO_ANSWER)

    @property
    def max_key(self) -> int:
        return max((o.key for o in self.options), default=0)


@dataclass(frozen=True)
class EntryCondition:
    """ "Only if question N is answered X": shown on screen, evaluated by the script."""

    item: str
    number: int
    accepted: tuple[str, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class EntryQuestion:
    item: Item
    number: int
    kind: EntryKind
    variables: tuple[EntryVariable, ...]
    condition: EntryCondition | None
    applicable: bool
    # In a run of scale questions sharing their answers (as the paper grids): the screen shows
    # the answers' headings once, above the run's first row, and only their numbers per row.
    grid: bool = False
    grid_start: bool = False

    @property
    def paired(self) -> bool:
        return len(self.variables) > 1

    @property
    def errors(self) -> tuple[tuple[EntryVariable, str], ...]:
        return tuple((v, message) for v in self.variables for message in v.errors)


@dataclass(frozen=True)
class EntryScreen:
    questions: tuple[EntryQuestion, ...]
    focus_id: str | None  # the first applicable question not typed yet

    @property
    def typed(self) -> int:
        return sum(1 for q in self.questions if q.applicable for v in q.variables if v.typed)

    @property
    def to_type(self) -> int:
        return sum(len(q.variables) for q in self.questions if q.applicable)


def build_screen(
    definition: Definition,
    form: FormKind,
    values: Values,
    errors: Mapping[str, Sequence[str]] | None = None,
) -> EntryScreen:
    """Every question of the form, in the paper's order and numbering, with `values` shown."""
    numbers = question_numbers(definition, form)
    errors = errors or {}
    current = {code: tuple(given) for code, given in values.items()}
    questions = []
    for item in definition.items(form):
        variables = tuple(
            entry_variable(item, variable_code, moment, current, errors)
            for variable_code, moment in _variables_of(item, form)
        )
        condition = None
        if item.show_if is not None:
            source = definition.item(item.show_if.item)
            accepted = item.show_if.accepted()
            condition = EntryCondition(
                item=source.code,
                number=numbers.get(source.code, 0),
                accepted=accepted,
                labels=tuple(o.label for o in source.options if o.code in accepted),
            )
        questions.append(
            EntryQuestion(
                item=item,
                number=numbers[item.code],
                kind=item.type.entry_kind,
                variables=variables,
                condition=condition,
                applicable=journey.is_visible(item, current),
            )
        )
    focus = next(
        (v.focus_id for q in questions if q.applicable for v in q.variables if not v.typed),
        None,
    )
    return EntryScreen(_grids(questions), focus)


def _grids(questions: Sequence[EntryQuestion]) -> tuple[EntryQuestion, ...]:
    """Mark runs of two or more unconditional scale questions with the same options."""

    def gridded(q: EntryQuestion) -> bool:
        return q.item.type.paper_grid and q.condition is None

    marked: list[EntryQuestion] = []
    index = 0
    while index < len(questions):
        end = index + 1
        if gridded(questions[index]):
            while (
                end < len(questions)
                and gridded(questions[end])
                and questions[end].item.options == questions[index].item.options
            ):
                end += 1
        run = questions[index:end]
        if len(run) > 1:
            marked.extend(
                dataclasses.replace(q, grid=True, grid_start=position == 0)
                for position, q in enumerate(run)
            )
        else:
            marked.extend(run)
        index = end
    return tuple(marked)


def _variables_of(item: Item, form: FormKind) -> list[tuple[str, Moment]]:
    return [(variable_code(item.code, moment), moment) for moment in item.moments(form)]


def entry_variable(
    item: Item,
    code: str,
    moment: Moment,
    values: Values,
    errors: Mapping[str, Sequence[str]],
) -> EntryVariable:
    given = tuple(values.get(code, ()))
    no_answer = NO_ANSWER in given
    keys = item.type.entry_keys(item)
    options = tuple(_entry_option(item, code, key, value, given) for key, value in keys)
    text = "" if keys else next((value for value in given if value != NO_ANSWER), "")
    return EntryVariable(
        code=code,
        moment=moment,
        options=options,
        text=text,
        no_answer=no_answer,
        errors=tuple(errors.get(code, ())),
    )


def _entry_option(
    item: Item, code: str, key: int, value: str, given: tuple[str, ...]
) -> EntryOption:
    option = item.option(value)
    return EntryOption(
        key=key,
        code=value,
        label=option.label if option is not None else "",
        heading=(option.label_short or option.label) if option is not None else "",
        input_id=input_id(code, value),
        checked=value in given,
        exclusive=option.exclusive if option is not None else True,
    )
