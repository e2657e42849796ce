"""Typed, immutable view of the questionnaire definition.

The YAML file is parsed and validated once by `loader`; everything else (forms, pages,
summary, exports, codebook) reads these objects and never the file itself.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selfcheck.questionnaire.answer_types import AnswerType


class FormKind(enum.StrEnum):
    """The three questionnaires built from the one definition."""

    BEFORE = "before"
    AFTER = "after"
    RETRO = "retro"


class Moment(enum.StrEnum):
    """When an answer describes the person: at the time of answering, or before mediation."""

    NOW = "now"
    PRE = "pre"


class Wording(enum.StrEnum):
    """Which wording of the same items a person reads (Response.wording).

    EASY is the easy-read (FALC, « facile à lire et à comprendre ») wording: same items, same
    codes, same options, only the texts change, so answers stay comparable.
    """

    STANDARD = "standard"
    EASY = "easy"


PRE_SUFFIX = "_PRE"

# The stored value of a question the person left blank on a paper form ("Sans réponse", typed
# as 0 on the entry screen), as opposed to a question not typed in yet (no answer row at all).
# It can never be a real answer: option codes match ^[a-z0-9][a-z0-9_]*$ (no leading
# underscore), numbers are digits only, and the online journey never stores it. Everything
# that reads answers (summary, exports, codebook) must treat it as missing: unknown values
# already are, since they match no option. See services/entry.py.
NO_ANSWER = "_no_answer"


@dataclass(frozen=True)
class Option:
    code: str
    label: str
    # Ordered scales rank options; "does not concern me" has no rank.
    rank: int | None = None
    exclusive: bool = False


@dataclass(frozen=True)
class Scale:
    code: str
    options: tuple[Option, ...]

    def option(self, code: str) -> Option | None:
        return next((option for option in self.options if option.code == code), None)


@dataclass(frozen=True)
class Condition:
    """Show an item only when an earlier answer matches (if yes, which ones?)."""

    item: str
    equals: str | None = None
    any_of: tuple[str, ...] = ()

    def accepted(self) -> tuple[str, ...]:
        return (self.equals,) if self.equals is not None else self.any_of

    def is_met(self, answers: Mapping[str, tuple[str, ...]]) -> bool:
        given = answers.get(self.item, ())
        return any(value in self.accepted() for value in given)


@dataclass(frozen=True)
class Item:
    code: str
    type: AnswerType  # from the YAML `type:` (answer_types.ANSWER_TYPES); .name is it
    label: str
    forms: frozenset[FormKind]
    hint: str | None = None
    options: tuple[Option, ...] = ()
    scale: str | None = None
    required: bool = False
    show_if: Condition | None = None
    # In the retrospective form, also ask "before the accompaniment" (stored as CODE_PRE).
    ask_before_in_retro: bool = False
    competence: str | None = None
    coop_topic: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    max_choices: int | None = None
    section: str = ""
    page: str = ""

    def in_form(self, form: FormKind) -> bool:
        return form in self.forms

    def option(self, code: str) -> Option | None:
        return next((option for option in self.options if option.code == code), None)

    @property
    def option_codes(self) -> tuple[str, ...]:
        return tuple(option.code for option in self.options)

    def moments(self, form: FormKind) -> tuple[Moment, ...]:
        if form is FormKind.RETRO and self.ask_before_in_retro:
            return (Moment.PRE, Moment.NOW)
        return (Moment.NOW,)


@dataclass(frozen=True)
class Variable:
    """One stored answer column: an item at a moment (T01, or T01_PRE in the retro form)."""

    code: str
    item: Item
    moment: Moment


def variable_code(item_code: str, moment: Moment) -> str:
    return item_code + PRE_SUFFIX if moment is Moment.PRE else item_code


@dataclass(frozen=True)
class Page:
    code: str
    title: str
    section: str
    items: tuple[Item, ...]
    intro: str | None = None
    # A local SVG (static/img/pictograms/<name>.svg) shown beside the title in easy-read mode.
    pictogram: str | None = None
    _by_form: dict[FormKind, tuple[Item, ...]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        by_form = {form: tuple(i for i in self.items if i.in_form(form)) for form in FormKind}
        object.__setattr__(self, "_by_form", by_form)

    def items_for(self, form: FormKind) -> tuple[Item, ...]:
        return self._by_form[form]


@dataclass(frozen=True)
class Section:
    code: str
    title: str
    pages: tuple[Page, ...]


@dataclass(frozen=True)
class Vocabulary:
    code: str
    label: str
    options: tuple[Option, ...]


@dataclass(frozen=True)
class TextPair:
    """One beneficiary-facing text and its easy-read wording (None when not written yet)."""

    where: str
    standard: str
    easy: str | None


@dataclass(frozen=True, eq=False)
class Definition:
    """The whole questionnaire; the single source of truth.

    Compared by identity: one loaded file is one definition. Per-form lookups are computed once
    here, since every page view asks for them.
    """

    id: str
    version: str
    language: str
    source: str
    sections: tuple[Section, ...]
    scales: Mapping[str, Scale]
    competences: Mapping[str, Option]
    coop_topics: Mapping[str, Option]
    titles: Mapping[FormKind, str] = field(default_factory=dict)
    wording: Wording = Wording.STANDARD
    # Every beneficiary-facing text with its easy-read wording (readability, completeness).
    texts: tuple[TextPair, ...] = ()
    _pages: dict[FormKind, tuple[Page, ...]] = field(init=False, repr=False)
    _variables: dict[FormKind, tuple[Variable, ...]] = field(init=False, repr=False)
    _items: dict[str, Item] = field(init=False, repr=False)
    _variants: dict[Wording, Definition] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        every_page = [page for section in self.sections for page in section.pages]
        pages = {form: tuple(p for p in every_page if p.items_for(form)) for form in FormKind}
        variables = {
            form: tuple(
                Variable(variable_code(item.code, moment), item, moment)
                for page in pages[form]
                for item in page.items_for(form)
                for moment in item.moments(form)
            )
            for form in FormKind
        }
        items = {item.code: item for page in every_page for item in page.items}
        object.__setattr__(self, "_pages", pages)
        object.__setattr__(self, "_variables", variables)
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_variants", {self.wording: self})

    def with_variant(self, other: Definition) -> None:
        """Join the other wording of the same file (done once by the loader)."""
        self._variants[other.wording] = other
        other._variants[self.wording] = self

    def in_wording(self, wording: Wording | str) -> Definition:
        """The same questionnaire in `wording`; this one if that wording is not loaded."""
        try:
            return self._variants[Wording(wording)]
        except (ValueError, KeyError):
            return self

    def missing_easy(self) -> tuple[str, ...]:
        """Where a beneficiary-facing text has no easy-read wording yet."""
        return tuple(text.where for text in self.texts if text.easy is None)

    def pages(self, form: FormKind) -> tuple[Page, ...]:
        return self._pages[form]

    def items(self, form: FormKind | None = None) -> Iterator[Item]:
        for item in self._items.values():
            if form is None or item.in_form(form):
                yield item

    def item(self, code: str) -> Item:
        return self._items[code]

    def variables(self, form: FormKind) -> tuple[Variable, ...]:
        return self._variables[form]

    def page(self, form: FormKind, code: str) -> Page | None:
        return next((page for page in self._pages[form] if page.code == code), None)

    def task_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self._items.values() if item.competence is not None)
