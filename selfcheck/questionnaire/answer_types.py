"""One class per answer type: everything that depends on how a question is answered.

The YAML `type:` of an item (single, scale, multiple, number, text) names one of these
classes; the loader puts the shared instance in `Item.type`. Every part of the application
asks the class instead of comparing type names: which stored values are valid, which web
macro and paper macro draw it, how the entry screen reads it, which export columns it gives,
how long it takes to answer and what a demo person answers.

Core module: no Flask. Texts here are msgids or codes; callers translate. Adding an answer
type means one class here, its name in schema.json, one macro per renderer (web, paper,
entry) and its WTForms field in `journey/registry.py`.
"""

from __future__ import annotations

import abc
import enum
import random
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from selfcheck.questionnaire.model import NO_ANSWER, Option

if TYPE_CHECKING:
    from selfcheck.questionnaire.model import Item


# A choice answered again about the other moment, the same answers read on the screen before
# (a task's "today" after its "before"): re-read the question (about 6 words, 3 s for a slow
# reader), glance at the "before" answer shown beside it, choose (2 s). A planning figure.
SECONDS_AGAIN = 5


class Problem(enum.StrEnum):
    """Why a set of stored values is not a valid answer (callers word the message)."""

    SEVERAL = "several"  # more than one value where one is expected
    NOT_AN_OPTION = "not_an_option"
    REPEATED = "repeated"  # the same option twice
    EXCLUSIVE_NOT_ALONE = "exclusive_not_alone"  # "none of these" with other options
    TOO_MANY = "too_many"  # more options than max_choices
    NOT_A_NUMBER = "not_a_number"
    OUT_OF_RANGE = "out_of_range"
    TOO_LONG = "too_long"
    WRONG_CHARACTERS = "wrong_characters"
    NO_ANSWER_NOT_ALONE = "no_answer_not_alone"  # entry: "Sans réponse" with another value


class PaperLayout(enum.StrEnum):
    """How the options of one printed question are laid out."""

    LIST = "list"  # one option per line
    COLUMNS = "columns"  # one option per line, two columns
    INLINE = "inline"  # a few short options on one line (Yes / No / I don't know)
    ROW = "row"  # options side by side, each box above its label (a scale)


class EntryKind(enum.StrEnum):
    """The input of the entry screen (staff typing in a paper form): its HTML `type`."""

    RADIO = "radio"
    CHECKBOX = "checkbox"
    NUMBER = "number"
    TEXT = "text"

    @property
    def has_options(self) -> bool:
        """Numbered options to tick, rather than a box to type in."""
        return self in (EntryKind.RADIO, EntryKind.CHECKBOX)

    @property
    def is_number(self) -> bool:
        return self is EntryKind.NUMBER


class ExportKind(enum.StrEnum):
    INT = "int"
    STR = "str"


# Choices with this many options or more, and short labels, print in two columns (long
# lists always do); with at most INLINE_MAX options, all very short, on one line.
COLUMNS_FROM = 4
COLUMNS_MAX_LABEL = 42
COLUMNS_ALWAYS_FROM = 8
INLINE_MAX = 4
INLINE_MAX_LABEL = 24

MAX_DIGITS = 9  # a stored number has at most this many digits


def option_values(options: Sequence[Option]) -> dict[str, int]:
    """Option code -> exported number (digit codes kept, else position from 1)."""
    if all(option.code.isdigit() for option in options):
        return {option.code: int(option.code) for option in options}
    return {option.code: index + 1 for index, option in enumerate(options)}


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" and char not in "\n\r\t" for char in text)


@dataclass(frozen=True)
class Typed:
    """What the entry screen read for one variable, before the field checks its values.

    `final`: nothing more to check (nothing typed, "Sans réponse" alone, or a `problem`).
    """

    values: tuple[str, ...]
    problem: Problem | None = None
    final: bool = False


class AnswerType(abc.ABC):
    """How one kind of question is answered. One shared, stateless instance per class."""

    name: ClassVar[str]  # the YAML `type:`
    several: ClassVar[bool] = False  # may store more than one value
    free_text: ClassVar[bool] = False  # personal words: left out of exports unless asked for
    web_widget: ClassVar[str]  # macro of templates/macros/questions.html
    paper_widget: ClassVar[str]  # macro of paper/templates/macros.html
    paper_grid: ClassVar[bool] = False  # may join a grid of questions sharing their options
    entry_kind: ClassVar[EntryKind]
    export_kind: ClassVar[ExportKind] = ExportKind.INT
    seconds: ClassVar[int]  # assumed reading-and-answering time, generous for slow readers
    # The same question again at its other moment (retro "today" after "before"): the
    # question and its answers were read a moment ago; only re-reading and choosing remain.
    seconds_again: ClassVar[int | None] = None  # None: as long as the first time
    can_ask_before: ClassVar[bool] = False  # ask_before_in_retro allowed

    def __repr__(self) -> str:
        return f"<answer type {self.name}>"

    # --- stored values ---------------------------------------------------------------------

    def check(self, item: Item, values: Sequence[str]) -> tuple[Problem, ...]:
        """Problems of `values` as the stored answer to `item` (empty: valid, or no answer)."""
        if len(values) > 1 and not self.several:
            return (Problem.SEVERAL,)
        return tuple(problem for value in values for problem in self.check_value(item, value))

    @abc.abstractmethod
    def check_value(self, item: Item, value: str) -> tuple[Problem, ...]:
        """Problems of one stored value."""

    # --- paper -----------------------------------------------------------------------------

    def paper_layout(self, item: Item, large: bool) -> PaperLayout:
        return PaperLayout.LIST

    # --- entry screen ----------------------------------------------------------------------

    def entry_keys(self, item: Item) -> tuple[tuple[int, str], ...]:
        """The key typed for each stored value: 1, 2, 3… for the options, 0 for "no answer".

        Empty when the value is typed itself (a number, a text).
        """
        if not item.options:
            return ()
        return (*((key, o.code) for key, o in enumerate(item.options, start=1)), (0, NO_ANSWER))

    def read_entry(self, posted: Sequence[str]) -> Typed:
        """What was typed for one variable: blanks dropped, "Sans réponse" alone."""
        values = tuple(value for value in posted if value.strip() != "")
        if not values:
            return Typed(values, final=True)
        if NO_ANSWER in values:
            if len(values) > 1:
                return Typed(values, Problem.NO_ANSWER_NOT_ALONE, final=True)
            return Typed((NO_ANSWER,), final=True)
        if len(values) > 1 and not self.several:
            return Typed(values, Problem.SEVERAL, final=True)
        return Typed(values)

    # --- export ----------------------------------------------------------------------------

    def export_options(self, item: Item) -> tuple[Option | None, ...]:
        """One exported column per entry: None for the variable itself, or an option
        (a 0/1 column: ticked or not)."""
        return (None,)

    def value_labels(self, item: Item) -> tuple[tuple[int, str], ...]:
        """Exported number -> untranslated label (msgid) of the variable's column."""
        values = option_values(item.options)
        return tuple((values[option.code], option.label) for option in item.options)

    def export_value(
        self,
        item: Item,
        given: Sequence[str],
        option: Option | None,
        values: Mapping[str, int],
    ) -> int | str | None:
        """The exported cell of a non-empty stored answer; `values` is `option_values`."""
        if option is not None:
            return 1 if option.code in given else 0
        return values.get(given[0])

    # --- planning and demo -----------------------------------------------------------------

    def typical_seconds(self, item: Item) -> int:
        return self.seconds

    def typical_seconds_again(self, item: Item) -> int:
        """Answering `item` a second time, about another moment, just after the first."""
        if self.seconds_again is None:
            return self.typical_seconds(item)
        return min(self.seconds_again, self.typical_seconds(item))

    @abc.abstractmethod
    def demo_value(self, item: Item, rng: random.Random) -> list[str]:
        """A plausible random answer (the demo data), drawn from `rng` only."""


class _Choice(AnswerType):
    def check_value(self, item: Item, value: str) -> tuple[Problem, ...]:
        return () if item.option(value) is not None else (Problem.NOT_AN_OPTION,)

    def demo_value(self, item: Item, rng: random.Random) -> list[str]:
        return [rng.choice(item.option_codes)]

    def _list_layout(self, item: Item) -> PaperLayout:
        longest = max(len(option.label) for option in item.options)
        if len(item.options) >= COLUMNS_ALWAYS_FROM or (
            len(item.options) >= COLUMNS_FROM and longest <= COLUMNS_MAX_LABEL
        ):
            return PaperLayout.COLUMNS
        return PaperLayout.LIST


class SingleChoice(_Choice):
    name = "single"
    web_widget = "radios"
    paper_widget = "choices"
    entry_kind = EntryKind.RADIO
    seconds = 8
    seconds_again = SECONDS_AGAIN
    can_ask_before = True

    def paper_layout(self, item: Item, large: bool) -> PaperLayout:
        if large or not item.options:
            return PaperLayout.LIST
        longest = max(len(option.label) for option in item.options)
        if len(item.options) <= INLINE_MAX and longest <= INLINE_MAX_LABEL:
            return PaperLayout.INLINE
        return self._list_layout(item)


class OrderedScale(_Choice):
    """One answer on an ordered scale shared by several items (ranks compare moments)."""

    name = "scale"
    web_widget = "radios"
    paper_widget = "choices"
    paper_grid = True
    entry_kind = EntryKind.RADIO
    seconds = 8
    seconds_again = SECONDS_AGAIN
    can_ask_before = True

    def paper_layout(self, item: Item, large: bool) -> PaperLayout:
        if large or not item.options:
            return PaperLayout.LIST
        return PaperLayout.ROW


class MultipleChoice(_Choice):
    """Several options; an exclusive one ("none of these") stands alone."""

    name = "multiple"
    several = True
    web_widget = "checkboxes"
    paper_widget = "choices"
    entry_kind = EntryKind.CHECKBOX
    seconds = 15

    def check(self, item: Item, values: Sequence[str]) -> tuple[Problem, ...]:
        problems = list(super().check(item, values))
        if len(set(values)) != len(values):
            problems.append(Problem.REPEATED)
        if len(values) > 1 and any(
            option.exclusive for option in item.options if option.code in values
        ):
            problems.append(Problem.EXCLUSIVE_NOT_ALONE)
        if item.max_choices is not None and len(values) > item.max_choices:
            problems.append(Problem.TOO_MANY)
        return tuple(problems)

    def paper_layout(self, item: Item, large: bool) -> PaperLayout:
        if large or not item.options:
            return PaperLayout.LIST
        return self._list_layout(item)

    def export_options(self, item: Item) -> tuple[Option | None, ...]:
        return item.options

    def value_labels(self, item: Item) -> tuple[tuple[int, str], ...]:
        return ()  # one 0/1 column per option, labelled by the caller

    def demo_value(self, item: Item, rng: random.Random) -> list[str]:
        plain = [option.code for option in item.options if not option.exclusive]
        most = min(3, len(plain), item.max_choices or 3)
        return rng.sample(plain, k=rng.randint(1, most))


class _Written(AnswerType):
    """What the person writes (digits or words): no options, so no value labels; the column
    holds the value itself."""

    def value_labels(self, item: Item) -> tuple[tuple[int, str], ...]:
        return ()

    def export_value(
        self,
        item: Item,
        given: Sequence[str],
        option: Option | None,
        values: Mapping[str, int],
    ) -> int | str | None:
        return self.column_value(given[0])

    @abc.abstractmethod
    def column_value(self, written: str) -> int | str | None:
        """The export column's value for what was written."""


class Number(_Written):
    """A whole number, stored as its digits, within the item's min and max."""

    name = "number"
    web_widget = "number"
    paper_widget = "digits"
    entry_kind = EntryKind.NUMBER
    seconds = 10

    def check_value(self, item: Item, value: str) -> tuple[Problem, ...]:
        if not (value.isascii() and value.isdigit()) or len(value) > MAX_DIGITS:
            return (Problem.NOT_A_NUMBER,)
        number = int(value)
        low, high = item.minimum, item.maximum
        if (low is not None and number < low) or (high is not None and number > high):
            return (Problem.OUT_OF_RANGE,)
        return ()

    def column_value(self, written: str) -> int | str | None:
        return int(written) if written.isdigit() else None

    def demo_value(self, item: Item, rng: random.Random) -> list[str]:
        return [str(rng.randint(item.minimum or 0, min(item.maximum or 10, 12)))]


class FreeText(_Written):
    """The person's own words: optional ones count as skipped in the typical time."""

    name = "text"
    free_text = True
    web_widget = "textarea"
    paper_widget = "lines"
    entry_kind = EntryKind.TEXT
    export_kind = ExportKind.STR
    seconds = 30

    def check_value(self, item: Item, value: str) -> tuple[Problem, ...]:
        if has_control_characters(value):
            return (Problem.WRONG_CHARACTERS,)
        if item.max_length is not None and len(value) > item.max_length:
            return (Problem.TOO_LONG,)
        return ()

    def column_value(self, written: str) -> int | str | None:
        return written

    def typical_seconds(self, item: Item) -> int:
        return self.seconds if item.required else 0

    def demo_value(self, item: Item, rng: random.Random) -> list[str]:
        return []


SINGLE = SingleChoice()
SCALE = OrderedScale()
MULTIPLE = MultipleChoice()
NUMBER = Number()
TEXT = FreeText()

# The YAML `type:` -> its answer type; the one registry (schema.json lists the same names).
ANSWER_TYPES: Mapping[str, AnswerType] = {
    answer_type.name: answer_type for answer_type in (SINGLE, SCALE, MULTIPLE, NUMBER, TEXT)
}


def answer_type(name: str) -> AnswerType:
    """The answer type named `name` in a definition file (KeyError if there is none)."""
    return ANSWER_TYPES[name]
