"""Typed, immutable view of the questionnaire definition.

The YAML file is parsed and validated once by `loader`; everything else (forms, pages,
summary, exports, codebook) reads these objects and never the file itself.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selfcheck.questionnaire.answer_types import AnswerType


class FormKind(enum.StrEnum):
    """The questionnaires built from the one definition.

    FOLLOWUP is the third time point: the same comfort and task items as the end forms,
    answered months after the accompaniment ended (issue 15). FOLLOWUP_LATE is the optional
    second follow-up (12 months by default, set per structure): the items of FOLLOWUP.
    """

    BEFORE = "before"
    AFTER = "after"
    RETRO = "retro"
    FOLLOWUP = "followup"
    FOLLOWUP_LATE = "followup_late"


# A form that asks exactly the items of another (the loader adds it wherever that one is).
SAME_ITEMS_AS: Mapping[FormKind, FormKind] = {FormKind.FOLLOWUP_LATE: FormKind.FOLLOWUP}
# The follow-ups, in the order they open.
FOLLOWUP_FORMS: tuple[FormKind, ...] = (FormKind.FOLLOWUP, FormKind.FOLLOWUP_LATE)


# The forms that describe the person at the end of the accompaniment: the after form of a
# before/after pair, or the retrospective form. The follow-up is compared with them.
END_FORMS: frozenset[FormKind] = frozenset({FormKind.AFTER, FormKind.RETRO})


@dataclass(frozen=True)
class FormRule:
    """When a form may be opened for a person (the one table the journey, paper printing and
    data entry consult instead of naming form kinds in if/elif chains).

    `opens_code`: it may be the first form of a fresh code. `needs_any`: one of these forms
    must exist for the person first (`needs_sent`: and be sent). `excludes`: the person
    must have none of these.
    """

    opens_code: bool = False
    needs_any: frozenset[FormKind] = frozenset()
    needs_sent: bool = False
    excludes: frozenset[FormKind] = frozenset()

    def refusal(self, present: Mapping[FormKind, bool]) -> str | None:
        """Why this form cannot open for someone with `present` forms (form -> sent), or None.

        The reasons are stable words the screens translate: "needs_earlier" (the form it
        follows is missing or not sent), "excluded" (another design was used).
        """
        if self.excludes & set(present):
            return "excluded"
        if self.needs_any:
            found = [form for form in self.needs_any if form in present]
            if not found or (self.needs_sent and not any(present[f] for f in found)):
                return "needs_earlier"
        return None


FORM_RULES: Mapping[FormKind, FormRule] = {
    FormKind.BEFORE: FormRule(opens_code=True, excludes=frozenset({FormKind.RETRO})),
    FormKind.AFTER: FormRule(
        needs_any=frozenset({FormKind.BEFORE}), excludes=frozenset({FormKind.RETRO})
    ),
    FormKind.RETRO: FormRule(
        opens_code=True, excludes=frozenset({FormKind.BEFORE, FormKind.AFTER})
    ),
    FormKind.FOLLOWUP: FormRule(needs_any=END_FORMS, needs_sent=True),
    FormKind.FOLLOWUP_LATE: FormRule(needs_any=END_FORMS, needs_sent=True),
}


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

# The two scales every item bank defines (schema.json): the options of the first are the
# competences, those of the second the Coop's topics. An item answered on one of them names a
# competence or a topic with each of its options.
COMPETENCE_SCALE = "competence"
COOP_TOPIC_SCALE = "coop_topic"

# The stored value of a question the person left blank on a paper form ("Sans réponse", typed
# as 0 on the entry screen), as opposed to a question not typed in yet (no answer row at all).
# It can never be a real answer: option codes match ^[a-z0-9][a-z0-9_]*$ (no leading
# underscore), numbers are digits only, and the online journey never stores it. Everything
# that reads answers (summary, exports, codebook) must treat it as missing: unknown values
# already are, since they match no option. See services/entry.py.
NO_ANSWER = "_no_answer"


class Role(enum.StrEnum):
    """What an item's answers mean to the code that reads them (`role:` in the definition).

    Python code finds items by role (`Definition.item_with_role`), never by item code, so an
    item can be renamed or added by editing the definition alone. Every role but DEVICE_USE
    (one item per device) belongs to one item at most. The value of a role that feeds a
    plain distribution table of the dashboard is also that table's key.
    """

    ASSISTANCE = "assistance"  # who fills the form in (data quality)
    AGE = "age"
    GENDER = "gender"
    STATUS = "status"
    DIPLOMA = "diploma"
    AREA = "area"
    INTERNET_HOME = "internet_home"
    DEVICES = "devices"
    DEVICE_USE = "device_use"  # how often one device is used
    REASONS = "reasons"
    PRESCRIBER = "prescribed"  # who advised the person to come
    MODALITY = "modality"
    SESSIONS = "sessions"  # number of sessions
    SESSION_LENGTH = "session_length"
    TOPICS = "topics"
    COMFORT = "comfort"  # comfort with digital tools (summary, evolution, typology)
    NEW_THINGS = "new_things"
    NEW_THINGS_WHICH = "new_things_which"
    PROGRESS = "progress"  # feeling of progress (summary, dashboard)
    PROGRESS_DOMAINS = "progress_domains"
    CHANGES = "changes"
    COMMENT = "comment"
    BASIC_TASK = "basic_task"  # a task of the very basics (switch on, connect): typology
    # The follow-up, months later (issue 15).
    STILL_USE = "still_use"  # does the person still use what they learnt
    HELP_AGAIN = "help_again"  # did they need help again since the end
    LOST = "lost"  # what they lost or forgot (an exclusive "nothing" option)


SHARED_ROLES = frozenset({Role.DEVICE_USE, Role.BASIC_TASK})


class Indicator(enum.StrEnum):
    """A headline figure of the dashboard that reads one particular item (`indicator:`).

    Where a role says what kind of item it is (`basic_task`), an indicator picks the one item
    a figure is about; each belongs to one item at most.
    """

    SWITCH_DEVICE = "switch_device"  # the task "switch the device on and off"


class Tag(enum.StrEnum):
    """What one option means to the typology and the dashboard (`tags:` on an option)."""

    SENIOR = "senior"  # an age band of 60 or over
    SEEKING_INTEGRATION = "seeking_integration"  # looking for work, or in training
    EMPLOYED = "employed"
    REFERRED_BY_SERVICE = "referred_by_service"  # sent by a public or social service
    EASE_LOW = "ease_low"  # not (or not very) at ease
    EASE_FAIR = "ease_fair"  # rather at ease
    EASE_HIGH = "ease_high"  # very much at ease
    PROGRESS_YES = "progress_yes"  # felt some progress
    PROGRESS_NO = "progress_no"
    BELOW_BACCALAUREATE = "below_baccalaureate"  # a diploma below the baccalauréat, or none
    ONE_OFF = "one_off"  # a quick one-off help (modality), as opposed to a path of sessions
    FEMININE = "feminine"  # the person is a woman: the summary's sentences agree with her
    MASCULINE = "masculine"
    DECLINED = "declined"  # "I'd rather not say": left out of the headline shares' base
    YES = "yes"  # the "yes" answer of a yes/no question (internet at home, new things)
    PROCEDURES = "procedures"  # the topic "administrative procedures online"


# The roles an item may have for its options to carry each tag (checked by the loader).
TAG_ROLES: Mapping[Tag, tuple[Role, ...]] = {
    Tag.SENIOR: (Role.AGE,),
    Tag.SEEKING_INTEGRATION: (Role.STATUS,),
    Tag.EMPLOYED: (Role.STATUS,),
    Tag.REFERRED_BY_SERVICE: (Role.PRESCRIBER,),
    Tag.EASE_LOW: (Role.COMFORT,),
    Tag.EASE_FAIR: (Role.COMFORT,),
    Tag.EASE_HIGH: (Role.COMFORT,),
    Tag.PROGRESS_YES: (Role.PROGRESS,),
    Tag.PROGRESS_NO: (Role.PROGRESS,),
    Tag.BELOW_BACCALAUREATE: (Role.DIPLOMA,),
    Tag.ONE_OFF: (Role.MODALITY,),
    Tag.FEMININE: (Role.GENDER,),
    Tag.MASCULINE: (Role.GENDER,),
    Tag.DECLINED: (Role.GENDER, Role.DIPLOMA),
    Tag.YES: (Role.INTERNET_HOME, Role.NEW_THINGS),
    Tag.PROCEDURES: (Role.TOPICS,),
}


@dataclass(frozen=True)
class Option:
    code: str
    label: str
    # Ordered scales rank options; "does not concern me" has no rank.
    rank: int | None = None
    exclusive: bool = False
    tags: frozenset[Tag] = frozenset()
    # A shorter wording of the same answer, for a column heading where many questions share
    # the answers (the paper form's grids): "Avec de l'aide" for "Je le fais avec de l'aide".
    label_short: str | None = None
    # A local SVG (static/img/pictograms/<name>.svg) drawn beside the answer, on screen and on
    # paper: decoration only (aria-hidden), the words always say the meaning.
    pictogram: str | None = None


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
class OptionGroup:
    """Options merged into one released value at a generalisation step (60_plus)."""

    code: str
    label: str
    options: tuple[str, ...]


@dataclass(frozen=True)
class LadderStep:
    """One rung of a quasi-identifier's generalisation ladder."""

    name: str
    groups: tuple[OptionGroup, ...] = ()
    masked: bool = False

    def release(self, value: str | None) -> str | None:
        """The value as released at this step: as answered, its group's code, or None."""
        if value is None or self.masked:
            return None
        if not self.groups:
            return value
        return next((group.code for group in self.groups if value in group.options), None)


@dataclass(frozen=True)
class QuasiIdentifier:
    """An item whose answer, combined with others, could single a person out.

    `column` names it in exports; `ladder` lists its generalisation steps, finest first (the
    first one releases the answer as given). An item without a ladder is only ever released
    as given or blanked by suppression.
    """

    column: str
    ladder: tuple[LadderStep, ...] = ()

    def step(self, name: str) -> LadderStep:
        """The step called `name`; the finest (as answered) when this ladder has none."""
        return next((s for s in self.ladder if s.name == name), LadderStep(name))

    def groups(self) -> tuple[OptionGroup, ...]:
        """Every group of every step, in ladder order (each code once)."""
        seen: dict[str, OptionGroup] = {}
        for step in self.ladder:
            for group in step.groups:
                seen.setdefault(group.code, group)
        return tuple(seen.values())


class Geography(enum.StrEnum):
    """Where a response comes from, finest first (computed from the structure)."""

    STRUCTURE = "structure"
    DEPARTMENT = "department"
    REGION = "region"
    NATIONAL = "national"


class Period(enum.StrEnum):
    """When a response was sent, finest first."""

    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


@dataclass(frozen=True)
class DisclosureStep:
    """One generalisation level tried by the anonymiser: geography and personal step."""

    geography: Geography
    personal: str


@dataclass(frozen=True)
class AnalysisFocus:
    """Columns an evaluator may ask to keep finest: they weigh `weight` times more."""

    code: str
    label: str
    columns: tuple[str, ...]
    weight: float


@dataclass(frozen=True)
class Disclosure:
    """The ladders of the columns that are not items (`disclosure:` in the definition)."""

    geography: tuple[Geography, ...] = tuple(Geography)
    period: tuple[Period, ...] = tuple(Period)
    # Export column order of the quasi-identifier items (their `quasi_identifier.column`).
    columns: tuple[str, ...] = ()
    # Former fixed steps (geography, personal step); the anonymiser no longer uses them.
    steps: tuple[DisclosureStep, ...] = ()
    # Share of people whose cells may be masked one by one, at most (at the smallest
    # selection of `suppression_limits`, or always when that is empty).
    max_suppressed: float = 0.05
    # (people, share) points, people increasing, share decreasing: the limit for a selection
    # of that many people, interpolated between points on log scales (a power law), the end
    # points holding beyond them (`suppression_limit`).
    suppression_limits: tuple[tuple[int, float], ...] = ()
    # Cost of coarsening or masking a column relative to 1 (`place`, `month`, item columns,
    # context columns); a column not listed weighs 1.
    weights: tuple[tuple[str, float], ...] = ()
    # Quasi-identifying columns that are not items (forms present, channel, wording...),
    # their ladder's groups naming stored values.
    context: tuple[QuasiIdentifier, ...] = ()
    focus: tuple[AnalysisFocus, ...] = ()

    def weight(self, column: str) -> float:
        return dict(self.weights).get(column, 1.0)

    def suppression_limit(self, people: int) -> float:
        """The share of `people` whose cells may be masked one by one, at most.

        Between two points (n1, s1) and (n2, s2) of `suppression_limits`, s1 * (n / n1) **
        slope with slope = log(s2 / s1) / log(n2 / n1): the share shrinks as the selection
        grows (big groups need little masking, and a masked cell biases shares), while the
        number of people it allows still grows.
        """
        points = self.suppression_limits
        if not points:
            return self.max_suppressed
        if people <= points[0][0]:
            return points[0][1]
        for (n1, s1), (n2, s2) in itertools.pairwise(points):
            if people <= n2:
                slope = math.log(s2 / s1) / math.log(n2 / n1)
                return float(s1 * (people / n1) ** slope)
        return points[-1][1]

    def context_column(self, column: str) -> QuasiIdentifier:
        """The context column named `column` (one without a ladder when not declared)."""
        return next((c for c in self.context if c.column == column), QuasiIdentifier(column))

    def focus_named(self, code: str) -> AnalysisFocus | None:
        return next((f for f in self.focus if f.code == code), None)


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
    role: Role | None = None
    indicator: Indicator | None = None
    # A few words for a table column (staff-facing: dashboard), when the label is too long.
    short_label: str | None = None
    quasi_identifier: QuasiIdentifier | None = None

    def in_form(self, form: FormKind) -> bool:
        return form in self.forms

    def option(self, code: str) -> Option | None:
        return next((option for option in self.options if option.code == code), None)

    @property
    def option_codes(self) -> tuple[str, ...]:
        return tuple(option.code for option in self.options)

    def tagged(self, tag: Tag) -> tuple[str, ...]:
        """The codes of the options that carry `tag`."""
        return tuple(option.code for option in self.options if tag in option.tags)

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
    """One screen of a form: a page of the item bank, or a screen of the retrospective
    form's layout (`retro_layout:`), which may join several pages (`parts`) and ask only
    one moment of their items (`moment`: "before" on one screen, "today" on the next)."""

    code: str
    title: str
    section: str
    items: tuple[Item, ...]
    intro: str | None = None
    # A local SVG (static/img/pictograms/<name>.svg) shown beside the title in easy-read mode.
    pictogram: str | None = None
    # A screen that asks one moment only (None: every moment of its items, as on paper).
    moment: Moment | None = None
    # The heading of that moment («Avant l'accompagnement», «Aujourd'hui»).
    moment_title: str | None = None
    # The item bank's pages a layout screen joins (empty for a page of the item bank).
    parts: tuple[Page, ...] = ()
    _by_form: dict[FormKind, tuple[Item, ...]] = field(
        init=False, repr=False, compare=False, hash=False
    )
    # `variables_for`, found once per form (a question page asks for them on every request).
    _variables: dict[FormKind, tuple[Variable, ...]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        by_form = {form: tuple(i for i in self.items if i.in_form(form)) for form in FormKind}
        object.__setattr__(self, "_by_form", by_form)
        object.__setattr__(self, "_variables", {})

    def items_for(self, form: FormKind) -> tuple[Item, ...]:
        return self._by_form[form]

    def moments_of(self, item: Item, form: FormKind) -> tuple[Moment, ...]:
        """The moments of `item` this screen asks in `form`."""
        moments = item.moments(form)
        return moments if self.moment is None else tuple(m for m in moments if m is self.moment)

    def variables_for(self, form: FormKind) -> tuple[Variable, ...]:
        found = self._variables.get(form)
        if found is None:
            found = self._variables[form] = tuple(
                Variable(variable_code(item.code, moment), item, moment)
                for item in self.items_for(form)
                for moment in self.moments_of(item, form)
            )
        return found

    def shows_earlier(self, item: Item, form: FormKind) -> bool:
        """A "today" screen shows the person's "before" answer beside the question."""
        return self.moment is Moment.NOW and Moment.PRE in item.moments(form)

    def part_title(self, item: Item) -> str | None:
        """The title of the item bank page `item` comes from, on a screen that joins several."""
        if len(self.parts) < 2:
            return None
        return next((part.title for part in self.parts if part.code == item.page), None)


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
    disclosure: Disclosure = field(default_factory=Disclosure)
    # The screens of the retrospective form on the web (`retro_layout:`); empty: its pages.
    retro_screens: tuple[Page, ...] = ()
    _pages: dict[FormKind, tuple[Page, ...]] = field(init=False, repr=False)
    _screens: dict[FormKind, tuple[Page, ...]] = field(init=False, repr=False)
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
        screens = dict(pages)
        if self.retro_screens:
            screens[FormKind.RETRO] = tuple(
                s for s in self.retro_screens if s.variables_for(FormKind.RETRO)
            )
        object.__setattr__(self, "_screens", screens)
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

    def screens(self, form: FormKind) -> tuple[Page, ...]:
        """The screens of `form` on the web, in order: its pages, except for the
        retrospective form when the item bank lays it out (`retro_layout:`). Paper and data
        entry keep `pages` (before and today side by side in a grid)."""
        return self._screens[form]

    def screen(self, form: FormKind, code: str) -> Page | None:
        return next((page for page in self._screens[form] if page.code == code), None)

    def task_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self._items.values() if item.competence is not None)

    def items_with_role(self, role: Role) -> tuple[Item, ...]:
        """The items that play `role`, in definition order."""
        return tuple(item for item in self._items.values() if item.role is role)

    def item_with_indicator(self, indicator: Indicator) -> Item | None:
        """The item a headline figure reads, None when this questionnaire has none."""
        return next((item for item in self._items.values() if item.indicator is indicator), None)

    def item_with_role(self, role: Role) -> Item | None:
        """The item that plays `role`, None when this questionnaire has none."""
        return next((item for item in self._items.values() if item.role is role), None)

    def quasi_identifiers(self) -> tuple[Item, ...]:
        """Items whose answers are quasi-identifiers, in the order of `disclosure.columns`."""
        order = {column: index for index, column in enumerate(self.disclosure.columns)}
        found = [
            (order.get(item.quasi_identifier.column, len(order)), item)
            for item in self._items.values()
            if item.quasi_identifier is not None
        ]
        return tuple(item for _position, item in sorted(found, key=lambda pair: pair[0]))
