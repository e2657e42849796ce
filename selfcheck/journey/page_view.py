"""What a questionnaire page shows: questions, their inputs, values and errors.

Pure functions from (definition, response answers, posted values, errors) to small view
objects, so templates stay dumb and this logic is tested without HTTP.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from selfcheck.journey.operations import Answers, page_variables, visible_pages
from selfcheck.journey.page_cache import BLOCK_END, block_start, checked_marker, value_marker
from selfcheck.questionnaire.model import (
    NO_ANSWER,
    Definition,
    FormKind,
    Item,
    Moment,
    Page,
    Variable,
    variable_code,
)


@dataclass(frozen=True)
class OptionView:
    code: str
    label: str
    input_id: str
    checked: bool
    exclusive: bool
    placeholder: bool = False
    pictogram: str | None = None  # the item bank's, drawn beside the label (decoration)

    @property
    def checked_attr(self) -> str:
        if self.placeholder:
            return checked_marker(self.input_id)
        return " checked" if self.checked else ""


@dataclass(frozen=True)
class EarlierView:
    """The person's "before" answer, shown beside the same question about today.

    `label` is None for no answer. With placeholders, one view per possible answer, each
    wrapped in markers that `fill_state` keeps for the stored one only.
    """

    label: str | None
    pictogram: str | None = None
    key: str | None = None  # VARIABLE=VALUE when rendered with placeholders

    @property
    def open(self) -> str:
        return block_start(self.key) if self.key is not None else ""

    @property
    def close(self) -> str:
        return BLOCK_END if self.key is not None else ""


@dataclass(frozen=True)
class VariableView:
    code: str
    moment: Moment
    options: tuple[OptionView, ...]
    value: str
    errors: tuple[str, ...]
    earlier: tuple[EarlierView, ...] = ()

    @property
    def earlier_id(self) -> str:
        return "earlier-" + self.code

    @property
    def first_input_id(self) -> str:
        return self.options[0].input_id if self.options else input_id(self.code)


@dataclass(frozen=True)
class QuestionView:
    item: Item
    number: int
    widget: str
    variables: tuple[VariableView, ...]
    # On a screen that joins several pages: the title of the page this question opens.
    part_title: str | None = None

    @property
    def paired(self) -> bool:
        """Asked twice (before / today) in the retrospective form."""
        return len(self.variables) > 1

    @property
    def errors(self) -> tuple[tuple[VariableView, str], ...]:
        return tuple((v, message) for v in self.variables for message in v.errors)

    @property
    def hint_id(self) -> str:
        return "hint-" + self.item.code

    @property
    def describedby(self) -> str:
        """Ids of the hint and error messages, for aria-describedby ("" when none)."""
        ids = [self.hint_id] if self.item.hint else []
        ids += [v.earlier_id for v in self.variables if v.earlier]
        ids += ["err-" + v.code for v in self.variables if v.errors]
        return " ".join(ids)


def _typed_text(given: Sequence[str]) -> str:
    """A number or text answer as typed; "" when none, or left blank on paper (NO_ANSWER)."""
    return given[0] if given and given[0] != NO_ANSWER else ""


def input_id(variable_code: str, option_code: str | None = None) -> str:
    base = "f-" + variable_code
    return f"{base}-{option_code}" if option_code is not None else base


def question_numbers(definition: Definition, form: FormKind) -> dict[str, int]:
    """Stable question numbers for a form (also printed on paper)."""
    return {item.code: index for index, item in enumerate(definition.items(form), start=1)}


def build_questions(
    definition: Definition,
    form: FormKind,
    page: Page,
    answers: Answers,
    shown: Mapping[str, Sequence[str]] | None = None,
    errors: Mapping[str, Sequence[str]] | None = None,
    placeholders: bool = False,
) -> list[QuestionView]:
    """Questions of `page`; `shown` (posted values) overrides saved answers on a re-display.

    With `placeholders`, checked states and typed values are markers (`page_cache`), filled
    per request from `state_values`, so the rendered block is the same for everyone and can be
    cached.
    """
    numbers = question_numbers(definition, form)
    values = shown if shown is not None else answers
    errors = errors or {}
    by_item: dict[str, list[VariableView]] = {}
    items: dict[str, Item] = {}
    for variable in page_variables(page, form, answers):
        items[variable.item.code] = variable.item
        view = _variable_view(variable, tuple(values.get(variable.code, ())), errors, placeholders)
        if page.shows_earlier(variable.item, form):
            view = replace(view, earlier=_earlier(variable.item, answers, placeholders))
        by_item.setdefault(variable.item.code, []).append(view)
    questions = []
    titled: set[str] = set()
    # A part of one question needs no title of its own: its question says it.
    sizes = Counter(item.page for item in items.values())
    for code, views in by_item.items():
        part = page.part_title(items[code]) if sizes[items[code].page] > 1 else None
        questions.append(
            QuestionView(
                item=items[code],
                number=numbers[code],
                widget=items[code].type.web_widget,
                variables=tuple(views),
                part_title=part if items[code].page not in titled else None,
            )
        )
        titled.add(items[code].page)
    return questions


def _earlier(item: Item, answers: Answers, placeholders: bool) -> tuple[EarlierView, ...]:
    """The "before" answer to `item` (every possible one, marked, with placeholders)."""
    code = variable_code(item.code, Moment.PRE)
    if placeholders:
        return (
            *(EarlierView(o.label, o.pictogram, f"{code}={o.code}") for o in item.options),
            EarlierView(None, key=f"{code}="),
        )
    given = item.option(next(iter(answers.get(code, ())), ""))
    return (EarlierView(given.label if given else None, given.pictogram if given else None),)


def _variable_view(
    variable: Variable,
    given: tuple[str, ...],
    errors: Mapping[str, Sequence[str]],
    placeholders: bool = False,
) -> VariableView:
    options = tuple(
        OptionView(
            code=option.code,
            label=option.label,
            input_id=input_id(variable.code, option.code),
            checked=option.code in given,
            exclusive=option.exclusive,
            placeholder=placeholders,
            pictogram=option.pictogram,
        )
        for option in variable.item.options
    )
    if placeholders:
        value = "" if options else value_marker(variable.code)
    else:
        value = _typed_text(given) if not options else ""
    return VariableView(
        code=variable.code,
        moment=variable.moment,
        options=options,
        value=value,
        errors=tuple(errors.get(variable.code, ())),
    )


@dataclass(frozen=True)
class AnswerLine:
    """One line of the check-your-answers page."""

    item: Item
    number: int
    moment: Moment
    labels: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class PageAnswers:
    page: Page
    lines: tuple[AnswerLine, ...]


def answers_by_page(definition: Definition, form: FormKind, answers: Answers) -> list[PageAnswers]:
    numbers = question_numbers(definition, form)
    result = []
    for page in visible_pages(definition, form, answers):
        lines = []
        for variable in page_variables(page, form, answers):
            given = answers.get(variable.code, ())
            item = variable.item
            labels = tuple(o.label for o in item.options if o.code in given)
            text = _typed_text(given) if not item.options else ""
            lines.append(AnswerLine(item, numbers[item.code], variable.moment, labels, text))
        result.append(PageAnswers(page, tuple(lines)))
    return result


def state_values(
    page: Page,
    form: FormKind,
    answers: Answers,
    variables: tuple[Variable, ...] | None = None,
) -> dict[str, str]:
    """One person's answers as the values of the markers of a question block rendered with
    placeholders (for `page_cache.fill`): checked options and typed texts. `variables`: the
    page's, if the caller has them (`page_variables`), so that they are not found twice."""
    values: dict[str, str] = {}
    earlier: set[str] = set()
    for variable in page_variables(page, form, answers) if variables is None else variables:
        if page.shows_earlier(variable.item, form):
            code = variable_code(variable.item.code, Moment.PRE)
            said = variable.item.option(next(iter(answers.get(code, ())), ""))
            earlier.add(f"{code}={said.code if said else ''}")
        given = answers.get(variable.code, ())
        if variable.item.options:
            for code in given:
                values[checked_marker(input_id(variable.code, code))] = " checked"
        elif _typed_text(given):
            values[value_marker(variable.code)] = given[0]
    # The "before" answer shown beside a "today" question: the block of the stored one only.
    values.update(dict.fromkeys(map(block_start, earlier), "1"))
    return values
