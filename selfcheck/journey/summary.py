"""A person's progress summary, from a linked before/after pair or a retrospective form.

The one view-model of the web page (templates/journey/summary.html) and of the PDF
(paper/templates/summary.html): every count, list and sentence comes from here, so the page
and the paper say the same thing. Progress is counted in rungs of the autonomy ladder, not
only in tasks now done alone: a beginner who moves every task from "not yet" to "with help"
has progressed on every task. Sentences are translated when a template reads them (`words`),
so the PDF gets them in the copy's language; they follow the wording the person chose
(standard or easy-read) and agree with the person's gender when their answers say it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import ngettext as babel_ngettext
from markupsafe import Markup, escape

from selfcheck.journey.operations import Answers, answers_of
from selfcheck.platform.i18n import french_typography
from selfcheck.platform.models import Beneficiary, Response
from selfcheck.questionnaire.model import (
    PRE_SUFFIX,
    Definition,
    FormKind,
    Item,
    Option,
    Role,
    Tag,
    Wording,
)

ALONE_RANK = 3  # "on my own" and above on the autonomy ladder
MAX_SUGGESTIONS = 3


class SummaryKind(enum.StrEnum):
    PRE_POST = "pre_post"
    RETROSPECTIVE = "retro"
    START_ONLY = "start_only"


class Gender(enum.StrEnum):
    """How the summary's few gendered words agree (« sûre », « sûr », or both forms)."""

    FEMININE = "feminine"
    MASCULINE = "masculine"
    UNKNOWN = "unknown"


class Move(enum.StrEnum):
    """What happened to one task between before and today (each task is in one move only)."""

    UP = "up"  # at least one rung higher
    DOWN = "down"  # at least one rung lower
    SAME = "same"  # the same answer
    CHANGED = "changed"  # another answer, not comparable ("does not concern me" and back)
    UNANSWERED = "unanswered"
    NOW = "now"  # no "before" yet: where the person is today


MOVES_ORDER = (Move.UP, Move.DOWN, Move.CHANGED, Move.SAME, Move.NOW, Move.UNANSWERED)


def _rank(option: Option | None) -> int:
    return option.rank if option is not None and option.rank is not None else 0


@dataclass(frozen=True)
class TaskProgress:
    """One task: its rung before (None in a 'before' alone) and its rung today."""

    item: Item
    before: Option | None
    now: Option | None
    has_before: bool = True

    @property
    def top_rank(self) -> int:
        return max((o.rank for o in self.item.options if o.rank is not None), default=0)

    @property
    def rung_before(self) -> int:
        return _rank(self.before)

    @property
    def rung_now(self) -> int:
        return _rank(self.now)

    @property
    def answered(self) -> bool:
        """An answer today and, when there is a 'before', an answer before too."""
        return self.now is not None and (self.before is not None or not self.has_before)

    @property
    def concerned(self) -> bool:
        return self.rung_before > 0 or self.rung_now > 0

    @property
    def steps_up(self) -> int:
        """Rungs climbed (negative: a step back); 0 when either end is missing."""
        if not (self.has_before and self.rung_before and self.rung_now):
            return 0
        return self.rung_now - self.rung_before

    @property
    def went_up(self) -> bool:
        return self.steps_up > 0

    @property
    def went_down(self) -> bool:
        return self.steps_up < 0

    @property
    def alone_before(self) -> bool:
        return self.rung_before >= ALONE_RANK

    @property
    def alone_now(self) -> bool:
        return self.rung_now >= ALONE_RANK

    @property
    def helps_others(self) -> bool:
        return self.rung_now >= self.top_rank > ALONE_RANK

    @property
    def newly_alone(self) -> bool:
        return self.alone_now and 0 < self.rung_before < ALONE_RANK

    @property
    def needs_help_now(self) -> bool:
        return 0 < self.rung_now < ALONE_RANK

    @property
    def improved(self) -> bool:
        return self.went_up

    @property
    def move(self) -> Move:
        if not self.answered:
            return Move.UNANSWERED
        if not self.has_before:
            return Move.NOW
        if self.went_up:
            return Move.UP
        if self.went_down:
            return Move.DOWN
        before = self.before.code if self.before else None
        return Move.SAME if before == (self.now.code if self.now else None) else Move.CHANGED

    @property
    def points_before(self) -> int:
        """Rungs above the first one: 0 for "not yet", top_rank - 1 for "I can help"."""
        return max(self.rung_before - 1, 0)

    @property
    def points_now(self) -> int:
        return max(self.rung_now - 1, 0)


@dataclass(frozen=True)
class CompetenceBar:
    """One domain of the chart, in rungs: every task counts from 0 to `points_max`."""

    competence: Option
    total: int  # tasks concerned
    points_max: int
    points_before: int
    points_now: int
    alone_before: int
    alone_now: int

    @property
    def share_before(self) -> float:
        return self.points_before / self.points_max if self.points_max else 0.0

    @property
    def share_now(self) -> float:
        return self.points_now / self.points_max if self.points_max else 0.0


@dataclass(frozen=True)
class TaskGroup:
    """Tasks that made the same move between the same two answers (one line of the summary:
    « from "not yet" to "with help": these 15 tasks »)."""

    move: Move
    before: Option | None
    now: Option | None
    tasks: tuple[TaskProgress, ...]


@dataclass(frozen=True)
class NextStep:
    task: TaskProgress
    topic: Option | None


@dataclass(frozen=True)
class Summary:
    kind: SummaryKind
    comfort_before: Option | None
    comfort_now: Option | None
    progress: Option | None
    tasks: tuple[TaskProgress, ...]
    bars: tuple[CompetenceBar, ...]
    domains: tuple[Option, ...]
    next_steps: tuple[NextStep, ...]
    changes: tuple[Option, ...]
    wording: Wording = Wording.STANDARD
    gender: Gender = Gender.UNKNOWN

    @property
    def easy(self) -> bool:
        return self.wording is Wording.EASY

    @property
    def has_before(self) -> bool:
        return self.kind is not SummaryKind.START_ONLY

    @property
    def concerned(self) -> tuple[TaskProgress, ...]:
        return tuple(task for task in self.tasks if task.concerned)

    @property
    def progressed(self) -> tuple[TaskProgress, ...]:
        """Tasks that went up at least one rung."""
        return tuple(task for task in self.tasks if task.went_up)

    @property
    def stepped_back(self) -> tuple[TaskProgress, ...]:
        return tuple(task for task in self.tasks if task.went_down)

    @property
    def alone(self) -> tuple[TaskProgress, ...]:
        """Tasks done alone today (with or without helping others)."""
        return tuple(task for task in self.tasks if task.alone_now)

    @property
    def can_help(self) -> tuple[TaskProgress, ...]:
        return tuple(task for task in self.tasks if task.helps_others)

    @property
    def with_help(self) -> tuple[TaskProgress, ...]:
        return tuple(task for task in self.tasks if task.needs_help_now and task.rung_now > 1)

    @property
    def already_done(self) -> tuple[TaskProgress, ...]:
        """Tasks done today with or without help (the starting point)."""
        return tuple(task for task in self.tasks if task.rung_now > 1)

    @property
    def newly_alone(self) -> tuple[TaskProgress, ...]:
        return tuple(task for task in self.tasks if task.newly_alone)

    @property
    def needs_help(self) -> tuple[TaskProgress, ...]:
        return tuple(task for task in self.tasks if task.needs_help_now)

    @property
    def unanswered(self) -> tuple[TaskProgress, ...]:
        return tuple(task for task in self.tasks if not task.answered)

    def groups(self, move: Move) -> tuple[TaskGroup, ...]:
        """The tasks of one move, grouped by their answers before and today, highest answer
        today first (then the highest before); "does not concern me" last."""
        found: dict[tuple[str | None, str | None], list[TaskProgress]] = {}
        ends: dict[tuple[str | None, str | None], tuple[Option | None, Option | None]] = {}
        for task in self.tasks:
            if task.move is not move:
                continue
            key = (
                task.before.code if task.before and move is not Move.NOW else None,
                task.now.code if task.now and move is not Move.UNANSWERED else None,
            )
            found.setdefault(key, []).append(task)
            ends[key] = (
                task.before if key[0] is not None else None,
                task.now if key[1] is not None else None,
            )

        def order(key: tuple[str | None, str | None]) -> tuple[int, int]:
            before, now = ends[key]
            return (-_rank(now), -_rank(before))

        return tuple(
            TaskGroup(move, *ends[key], tuple(found[key])) for key in sorted(found, key=order)
        )

    @property
    def moves(self) -> tuple[tuple[Move, tuple[TaskGroup, ...]], ...]:
        """Every task once: the moves that have tasks, in the order the summary says them."""
        grouped = ((move, self.groups(move)) for move in MOVES_ORDER)
        return tuple((move, groups) for move, groups in grouped if groups)

    def count(self, move: Move) -> int:
        return sum(1 for task in self.tasks if task.move is move)

    @property
    def suggestions(self) -> tuple[Option, ...]:
        """The Coop topics of the next steps, nearest rung first, each once."""
        topics: list[Option] = []
        for step in self.next_steps:
            if step.topic is not None and step.topic not in topics:
                topics.append(step.topic)
        return tuple(topics[:MAX_SUGGESTIONS])

    @property
    def comfort_improved(self) -> bool:
        return _rank(self.comfort_now) > _rank(self.comfort_before) > 0

    @property
    def comfort_lower(self) -> bool:
        return 0 < _rank(self.comfort_now) < _rank(self.comfort_before)

    @property
    def feels_no_progress(self) -> bool:
        return self.progress is not None and Tag.PROGRESS_NO in self.progress.tags

    @property
    def praise(self) -> bool:
        """« Bravo » only when nothing the person said contradicts it."""
        return (
            self.has_before
            and (self.comfort_improved or bool(self.progressed))
            and not self.feels_no_progress
            and not self.comfort_lower
        )

    @property
    def points(self) -> tuple[int, int, int]:
        """(rungs possible, rungs before, rungs today) over the chart's bars."""
        return (
            sum(bar.points_max for bar in self.bars),
            sum(bar.points_before for bar in self.bars),
            sum(bar.points_now for bar in self.bars),
        )

    @cached_property
    def ladder(self) -> tuple[Option, ...]:
        """The ranked answers of the tasks' ladder, lowest first."""
        for task in self.tasks:
            ranked = [o for o in task.item.options if o.rank is not None]
            if ranked:
                return tuple(sorted(ranked, key=_rank))
        return ()

    def words(self) -> SummaryWords:
        """The summary's sentences, translated now (call it while rendering)."""
        return SummaryWords(self)


def _typeset(text: str) -> str:
    locale = get_locale()
    return french_typography(text) if locale is None or str(locale).startswith("fr") else text


def ngettext(singular: str, plural: str, num: int, **variables: object) -> str:
    """Flask-Babel's ngettext, with French's own rule in the source language: 0 is singular
    (« 0 chose »), where gettext's fallback without a catalog would say « 0 choses »."""
    locale = get_locale()
    if (locale is None or str(locale).startswith("fr")) and num == 0:
        return str(_(singular, num=num, **variables))
    return str(babel_ngettext(singular, plural, num, **variables))


def _label(option: Option | None) -> str:
    return _typeset(_(option.label)) if option is not None else _typeset(_("Pas de réponse"))


def _inner_label(option: Option | None) -> str:
    """An answer quoted inside a sentence: without its own final full stop, which the sentence
    already gives (« …Je peux aider. ». said it twice)."""
    return _label(option).removesuffix(".")


class SummaryWords:
    """Every sentence of the summary, in the person's wording and the current language.

    Figures are always written inside a sentence (never only in a chart), so a screen reader
    and a printed copy say them. A count of nothing is never said (« 0 chose »): the sentence
    changes instead.
    """

    def __init__(self, summary: Summary) -> None:
        self.s = summary
        self.easy = summary.easy

    def _pick(self, standard: str, easy: str) -> str:
        return _typeset(easy if self.easy else standard)

    # the title and the first lines

    @property
    def title(self) -> str:
        if self.s.has_before:
            return self._pick(_("Vos progrès"), _("Vos progrès"))
        return self._pick(_("Votre point de départ"), _("Ce que vous savez faire aujourd'hui"))

    @property
    def headline(self) -> str:
        """The one message about progress, agreeing with what the person said they feel."""
        s = self.s
        if not s.has_before:
            return self.start_lead
        climbed, total = len(s.progressed), len(s.concerned)
        if climbed and s.feels_no_progress:
            if self.easy:
                return _typeset(
                    ngettext(
                        "Vous pensez ne pas avoir beaucoup progressé. Mais vos réponses "
                        "montrent %(num)s chose en progrès.",
                        "Vous pensez ne pas avoir beaucoup progressé. Mais vos réponses "
                        "montrent %(num)s choses en progrès.",
                        climbed,
                    )
                )
            # Plain words, not the ladder's "marche": the headline comes first, before the
            # chart says what a step is (docs/accessibility.md, round 21).
            return _typeset(
                ngettext(
                    "Vous avez le sentiment de ne pas avoir vraiment progressé. Pourtant, "
                    "vos réponses montrent %(num)s chose que vous faites mieux qu'avant.",
                    "Vous avez le sentiment de ne pas avoir vraiment progressé. Pourtant, "
                    "vos réponses montrent %(num)s choses que vous faites mieux qu'avant.",
                    climbed,
                )
            )
        if climbed:
            said = self._pick(
                ngettext(
                    "Vous faites mieux qu'avant pour %(num)s chose sur %(total)s.",
                    "Vous faites mieux qu'avant pour %(num)s choses sur %(total)s.",
                    climbed,
                    total=total,
                ),
                ngettext(
                    "Vous avez progressé pour %(num)s chose sur %(total)s.",
                    "Vous avez progressé pour %(num)s choses sur %(total)s.",
                    climbed,
                    total=total,
                ),
            )
            if not s.praise:
                return said
            # Not inside the f-string: Babel does not extract a gettext call from there.
            bravo = _typeset(_("Bravo !"))
            return f"{bravo} {said}"
        if s.stepped_back:
            return self._pick(
                _(
                    "Cette fois, vos réponses ne montrent pas de progrès. Cela arrive : "
                    "on voit mieux ce qui reste à apprendre."
                ),
                _("Cette fois, vos réponses ne montrent pas de progrès. Cela arrive."),
            )
        return self._pick(
            _(
                "Vos réponses sont les mêmes qu'avant. C'est normal : apprendre prend du temps, "
                "et chaque petit pas compte."
            ),
            _("Vos réponses sont les mêmes qu'avant. C'est normal. Apprendre prend du temps."),
        )

    @property
    def highlights(self) -> tuple[str, ...]:
        """Short facts worth saying, each only when it is not nothing."""
        s = self.s
        said: list[str] = []
        if s.has_before:
            new = len(s.newly_alone)
            if new:
                said.append(
                    self._pick(
                        ngettext(
                            "Vous faites maintenant %(num)s chose de plus sans aide.",
                            "Vous faites maintenant %(num)s choses de plus sans aide.",
                            new,
                        ),
                        ngettext(
                            "Sans aide, vous faites %(num)s chose de plus.",
                            "Sans aide, vous faites %(num)s choses de plus.",
                            new,
                        ),
                    )
                )
        else:
            said.append(self.already_done)
        if s.can_help:
            said.append(self.can_help)
        return tuple(said)

    @property
    def start_lead(self) -> str:
        return self._pick(
            _(
                "Voici où vous en êtes aujourd'hui. À la fin de votre accompagnement, "
                "vous pourrez comparer."
            ),
            _("Voici ce que vous savez faire aujourd'hui. À la fin, vous pourrez comparer."),
        )

    @property
    def already_done(self) -> str:
        """The starting point: what the person already does, with or without help."""
        n, total = len(self.s.already_done), len(self.s.concerned)
        if n == 0:
            return self._pick(
                _(
                    "Vous commencez : c'est le bon moment. Votre médiateur ou votre médiatrice "
                    "vous aidera pas à pas."
                ),
                _("Vous commencez. C'est le bon moment. Vous allez apprendre pas à pas."),
            )
        return self._pick(
            ngettext(
                "Vous faites déjà %(num)s chose sur %(total)s, avec ou sans aide.",
                "Vous faites déjà %(num)s choses sur %(total)s, avec ou sans aide.",
                n,
                total=total,
            ),
            ngettext(
                "Vous savez déjà faire %(num)s chose, avec ou sans aide.",
                "Vous savez déjà faire %(num)s choses, avec ou sans aide.",
                n,
            ),
        )

    @property
    def can_help(self) -> str:
        n = len(self.s.can_help)
        return self._pick(
            ngettext(
                "Vous pouvez aider quelqu'un pour %(num)s chose.",
                "Vous pouvez aider quelqu'un pour %(num)s choses.",
                n,
            ),
            ngettext(
                "Vous pouvez aider une autre personne pour %(num)s chose.",
                "Vous pouvez aider une autre personne pour %(num)s choses.",
                n,
            ),
        )

    # comfort, in the person's own words

    @property
    def comfort(self) -> str | None:
        s = self.s
        if s.comfort_now is None:
            return None
        now = _inner_label(s.comfort_now)
        if not s.has_before or s.comfort_before is None:
            return self._pick(
                _("Avec le numérique, aujourd'hui, vous vous sentez : « %(now)s ».", now=now),
                _("Avec internet, aujourd'hui, vous êtes : « %(now)s ».", now=now),
            )
        if s.comfort_before.code == s.comfort_now.code:
            return self._pick(
                _("Avec le numérique, vous vous sentez comme avant : « %(now)s ».", now=now),
                _("Avec internet, vous êtes comme avant : « %(now)s ».", now=now),
            )
        before = _inner_label(s.comfort_before)
        return self._pick(
            _(
                "Avec le numérique, vous vous sentiez « %(before)s ». Aujourd'hui : « %(now)s ».",
                before=before,
                now=now,
            ),
            _(
                "Avec internet, avant, vous étiez : « %(before)s ». Aujourd'hui : « %(now)s ».",
                before=before,
                now=now,
            ),
        )

    @property
    def comfort_message(self) -> str | None:
        """Only when comfort went down: said kindly (more at ease needs no second « Bravo »)."""
        if not self.s.comfort_lower:
            return None
        return self._pick(
            _(
                "Cela arrive quand on découvre tout ce que l'on peut faire : parlez-en à votre "
                "médiateur ou médiatrice."
            ),
            _("Cela arrive. Parlez-en à la personne qui vous aide."),
        )

    # each task once, grouped by what happened

    @property
    def tasks_title(self) -> str:
        if self.s.has_before:
            return self._pick(_("Chose par chose"), _("Chaque chose"))
        return self._pick(_("Chose par chose, aujourd'hui"), _("Chaque chose, aujourd'hui"))

    def move_title(self, move: Move) -> str:
        n = self.s.count(move)
        if move is Move.UP:
            return self._pick(
                ngettext("En progrès : %(num)s chose", "En progrès : %(num)s choses", n),
                ngettext(
                    "Vous avez progressé : %(num)s chose", "Vous avez progressé : %(num)s choses", n
                ),
            )
        if move is Move.DOWN:
            return self._pick(
                ngettext(
                    "Moins facile qu'avant : %(num)s chose",
                    "Moins facile qu'avant : %(num)s choses",
                    n,
                ),
                ngettext(
                    "Plus difficile qu'avant : %(num)s chose",
                    "Plus difficile qu'avant : %(num)s choses",
                    n,
                ),
            )
        if move is Move.CHANGED:
            return self._pick(
                ngettext(
                    "Une autre réponse qu'avant : %(num)s chose",
                    "Une autre réponse qu'avant : %(num)s choses",
                    n,
                ),
                ngettext(
                    "Une autre réponse : %(num)s chose", "Une autre réponse : %(num)s choses", n
                ),
            )
        if move is Move.SAME:
            return self._pick(
                ngettext("Comme avant : %(num)s chose", "Comme avant : %(num)s choses", n),
                ngettext("Pareil qu'avant : %(num)s chose", "Pareil qu'avant : %(num)s choses", n),
            )
        if move is Move.UNANSWERED:
            return self._pick(
                ngettext("Sans réponse : %(num)s chose", "Sans réponse : %(num)s choses", n),
                ngettext("Sans réponse : %(num)s chose", "Sans réponse : %(num)s choses", n),
            )
        return self.tasks_title

    def move_lead(self, move: Move) -> str | None:
        if move is Move.DOWN:
            return self.step_back_lead
        if move is Move.UNANSWERED:
            return self._pick(
                _("Vous n'avez pas répondu pour ces choses : elles ne sont pas comptées."),
                _("Vous n'avez pas répondu pour ces choses. Elles ne sont pas comptées."),
            )
        return None

    def move_note(self, move: Move) -> str | None:
        if move is Move.DOWN:
            return self.step_back_comfort
        return None

    @property
    def step_back_lead(self) -> str:
        """Said plainly and kindly, agreeing with the person when their answers say how."""
        gender = self.s.gender
        if self.easy:
            if gender is Gender.FEMININE:
                return _typeset(_("Vous êtes moins sûre qu'avant pour :"))
            if gender is Gender.MASCULINE:
                return _typeset(_("Vous êtes moins sûr qu'avant pour :"))
            return _typeset(_("Vous êtes moins sûr ou moins sûre qu'avant pour :"))
        if gender is Gender.FEMININE:
            return _typeset(_("Vous vous sentez moins sûre qu'avant pour :"))
        if gender is Gender.MASCULINE:
            return _typeset(_("Vous vous sentez moins sûr qu'avant pour :"))
        return _typeset(_("Vous vous sentez moins sûr ou moins sûre qu'avant pour :"))

    @property
    def step_back_comfort(self) -> str:
        return self._pick(
            _(
                "C'est normal : ce qu'on fait peu s'oublie, et on voit mieux ce qui reste "
                "à apprendre. Parlez-en à votre médiateur ou médiatrice."
            ),
            _("C'est normal. On oublie ce qu'on fait peu. Parlez-en à la personne qui vous aide."),
        )

    def group_line(self, group: TaskGroup, draw: Callable[[str | None], Markup]) -> Markup:
        """The answers of a group, in words, each beside its pictogram (`draw`: the web's
        inline SVG or the paper's background)."""

        def said(option: Option | None, inner: bool = True) -> Markup:
            picture = draw(option.pictogram if option is not None else None)
            label = _inner_label(option) if inner else _label(option)
            return picture + Markup("<strong>{}</strong>").format(label)

        if group.move in (Move.UP, Move.DOWN, Move.CHANGED):
            text = self._pick(
                # Not « De %(before)s à %(now)s »: the answers are first-person sentences
                # (« De Je le fais avec de l'aide à Je le fais seul·e… » read badly).
                _("Avant : %(before)s. Aujourd'hui : %(now)s."),
                _("Avant : %(before)s. Maintenant : %(now)s."),
            )
            return Markup(escape(text)) % {"before": said(group.before), "now": said(group.now)}
        if group.move is Move.UNANSWERED:
            return Markup("")
        return said(group.now, inner=False)

    def answer(self, option: Option | None) -> str:
        return _label(option)

    # the rungs, by domain

    @property
    def chart_title(self) -> str:
        return self._pick(_("Par domaine"), _("Par thème"))

    @property
    def chart_key(self) -> str:
        ladder = self.s.ladder
        if len(ladder) < 2:
            return ""
        steps = len(ladder) - 1
        first, last = _inner_label(ladder[0]), _inner_label(ladder[-1])
        return self._pick(
            ngettext(
                "Chaque chose compte pour %(num)s marche, de « %(first)s » à « %(last)s ».",
                "Chaque chose compte pour %(num)s marches, de « %(first)s » à « %(last)s ».",
                steps,
                first=first,
                last=last,
            ),
            ngettext(
                "Une chose, c'est %(num)s marche. En bas : « %(first)s ». En haut : « %(last)s ».",
                "Une chose, c'est %(num)s marches. En bas : « %(first)s ». En haut : « %(last)s ».",
                steps,
                first=first,
                last=last,
            ),
        )

    @property
    def domains(self) -> str | None:
        """How many domains went up (at least one task a rung higher), when any did."""
        n = len(self.s.domains)
        if not self.s.has_before or not n:
            return None
        return self._pick(
            ngettext(
                "Vous avez progressé dans %(num)s domaine sur %(total)s.",
                "Vous avez progressé dans %(num)s domaines sur %(total)s.",
                n,
                total=len(self.s.bars),
            ),
            ngettext(
                "Vous avez progressé dans %(num)s thème sur %(total)s.",
                "Vous avez progressé dans %(num)s thèmes sur %(total)s.",
                n,
                total=len(self.s.bars),
            ),
        )

    @property
    def chart_summary(self) -> str:
        possible, before, now = self.s.points
        if self.s.has_before and before:
            return self._pick(
                ngettext(
                    "En tout : %(num)s marche sur %(total)s aujourd'hui, contre %(before)s avant.",
                    "En tout : %(num)s marches sur %(total)s aujourd'hui, contre %(before)s avant.",
                    now,
                    total=possible,
                    before=before,
                ),
                ngettext(
                    "En tout : %(num)s marche sur %(total)s aujourd'hui. Avant : %(before)s.",
                    "En tout : %(num)s marches sur %(total)s aujourd'hui. Avant : %(before)s.",
                    now,
                    total=possible,
                    before=before,
                ),
            )
        return self._pick(
            ngettext(
                "En tout : %(num)s marche sur %(total)s aujourd'hui.",
                "En tout : %(num)s marches sur %(total)s aujourd'hui.",
                now,
                total=possible,
            ),
            ngettext(
                "En tout : %(num)s marche sur %(total)s.",
                "En tout : %(num)s marches sur %(total)s.",
                now,
                total=possible,
            ),
        )

    def bar_text(self, bar: CompetenceBar) -> str:
        """A domain's rungs in words: today, and before when there is a before."""
        now = ngettext(
            "Aujourd'hui : %(num)s marche sur %(total)s.",
            "Aujourd'hui : %(num)s marches sur %(total)s.",
            bar.points_now,
            total=bar.points_max,
        )
        if not bar.points_now:
            now = _("Aujourd'hui : pas encore de marche sur %(total)s.", total=bar.points_max)
        if not self.s.has_before:
            return _typeset(now)
        before = ngettext("Avant : %(num)s marche.", "Avant : %(num)s marches.", bar.points_before)
        if not bar.points_before:
            before = _("Avant : pas encore de marche.")
        return _typeset(f"{before} {now}")

    # what comes next

    @property
    def changes_title(self) -> str:
        return self._pick(_("Ce qui a changé pour vous"), _("Ce qui a changé pour vous"))

    @property
    def next_title(self) -> str:
        return self._pick(_("Pour la suite"), _("Pour la suite"))

    @property
    def next_lead(self) -> str:
        return self._pick(
            _("À voir avec votre médiateur ou médiatrice :"),
            _("Parlez de ces thèmes à la personne qui vous aide :"),
        )


# --- drawing: the two media draw the same bars their own way ---------------------------------


def web_bars(before: float | None, now: float, rtl: bool = False) -> Markup:
    """A domain's rungs before (grey, thin) and today (blue) as one inline SVG: decoration, the
    words above say the figures. Right-to-left pages fill the bars from the right."""
    width = 300
    rows = []
    y = 0
    if before is not None:
        size = round(width * before, 1)
        start = round(width - size, 1) if rtl else 0
        rows.append(
            f'<rect class="chart__track" x="0.5" y="0.5" width="{width - 1}" height="9" '
            f'fill="#f0f0f0" stroke="#666666"/>'
            f'<rect class="chart__before" x="{start}" y="0" width="{size}" height="10" '
            f'fill="#6b6b6b"/>'
        )
        y = 14
    size = round(width * now, 1)
    start = round(width - size, 1) if rtl else 0
    rows.append(
        f'<rect class="chart__track" x="0.5" y="{y + 0.5}" width="{width - 1}" height="17" '
        f'fill="#f0f0f0" stroke="#666666"/>'
        f'<rect class="chart__now" x="{start}" y="{y}" width="{size}" height="18" fill="#000091"/>'
    )
    return Markup(
        f'<svg class="rungs__bar" viewBox="0 0 {width} {y + 18}" aria-hidden="true" '
        f'focusable="false">{"".join(rows)}</svg>'
    )


def printed_bars(before: float | None, now: float, rtl: bool = False) -> Markup:
    """The same bars for WeasyPrint: boxes (an SVG would be tagged as a figure without
    alternative text); the page's direction decides where they start."""
    del rtl
    parts = []
    if before is not None:
        parts.append(
            Markup(
                '<span class="rungs__track rungs__track--before"><span class="rungs__fill '
                'rungs__fill--before" style="width: {}%"></span></span>'
            ).format(round(100 * before, 1))
        )
    parts.append(
        Markup(
            '<span class="rungs__track"><span class="rungs__fill" style="width: {}%"></span></span>'
        ).format(round(100 * now, 1))
    )
    return Markup('<span class="rungs__bars">{}</span>').format(Markup("").join(parts))


# --- building ------------------------------------------------------------------------------


def _option(item: Item, answers: Answers, variable: str) -> Option | None:
    given = answers.get(variable, ())
    return item.option(given[0]) if given else None


def _options(item: Item, answers: Answers) -> tuple[Option, ...]:
    given = answers.get(item.code, ())
    return tuple(option for option in item.options if option.code in given)


def submitted_by_form(beneficiary: Beneficiary) -> dict[FormKind, Response]:
    return {FormKind(r.form): r for r in beneficiary.responses if r.is_submitted}


def wording_of(beneficiary: Beneficiary) -> Wording:
    """The wording of the person's latest submitted form (easy-read stays easy-read)."""
    done = [r for r in beneficiary.responses if r.is_submitted]
    if not done:
        return Wording.STANDARD
    latest = max(done, key=lambda r: (r.submitted_at is not None, r.submitted_at, r.id))
    try:
        return Wording(latest.wording)
    except ValueError:
        return Wording.STANDARD


def build_summary(
    definition: Definition, beneficiary: Beneficiary, wording: Wording | None = None
) -> Summary | None:
    """None when nothing is submitted yet. `wording`: the person's own when not given."""
    definition = definition.in_wording(wording or wording_of(beneficiary))
    done = submitted_by_form(beneficiary)
    everything: Answers = {}
    for response in done.values():
        everything.update(answers_of(response))
    gender = _gender(definition, everything)
    if FormKind.RETRO in done:
        answers = answers_of(done[FormKind.RETRO])
        return _summarise(
            definition, SummaryKind.RETROSPECTIVE, _pre_view(answers), answers, gender
        )
    if FormKind.BEFORE in done and FormKind.AFTER in done:
        return _summarise(
            definition,
            SummaryKind.PRE_POST,
            answers_of(done[FormKind.BEFORE]),
            answers_of(done[FormKind.AFTER]),
            gender,
        )
    if FormKind.BEFORE in done:
        return _summarise(
            definition, SummaryKind.START_ONLY, {}, answers_of(done[FormKind.BEFORE]), gender
        )
    return None


def _gender(definition: Definition, answers: Answers) -> Gender:
    item = definition.item_with_role(Role.GENDER)
    option = _option(item, answers, item.code) if item else None
    if option is not None and Tag.FEMININE in option.tags:
        return Gender.FEMININE
    if option is not None and Tag.MASCULINE in option.tags:
        return Gender.MASCULINE
    return Gender.UNKNOWN


def _pre_view(answers: Answers) -> Answers:
    """Retro answers about 'before' (T01_PRE) seen under their item code (T01)."""
    return {
        code.removesuffix(PRE_SUFFIX): values
        for code, values in answers.items()
        if code.endswith(PRE_SUFFIX)
    }


def _summarise(
    definition: Definition,
    kind: SummaryKind,
    before: Answers,
    now: Answers,
    gender: Gender = Gender.UNKNOWN,
) -> Summary:
    has_before = kind is not SummaryKind.START_ONLY
    tasks = tuple(
        TaskProgress(
            item,
            _option(item, before, item.code) if has_before else None,
            _option(item, now, item.code),
            has_before,
        )
        for item in definition.task_items()
    )
    comfort = definition.item_with_role(Role.COMFORT)
    progress = definition.item_with_role(Role.PROGRESS)
    changes_item = definition.item_with_role(Role.CHANGES)
    return Summary(
        kind=kind,
        comfort_before=_option(comfort, before, comfort.code) if comfort else None,
        comfort_now=_option(comfort, now, comfort.code) if comfort else None,
        progress=_option(progress, now, progress.code) if progress else None,
        tasks=tasks,
        bars=_bars(definition, tasks),
        domains=_domains(definition, tasks),
        next_steps=_next_steps(definition, tasks),
        changes=_options(changes_item, now) if changes_item else (),
        wording=definition.wording,
        gender=gender,
    )


def _bars(definition: Definition, tasks: tuple[TaskProgress, ...]) -> tuple[CompetenceBar, ...]:
    bars = []
    for competence in definition.competences.values():
        mine = [t for t in tasks if t.item.competence == competence.code and t.concerned]
        if mine:
            bars.append(
                CompetenceBar(
                    competence,
                    total=len(mine),
                    points_max=sum(max(t.top_rank - 1, 0) for t in mine),
                    points_before=sum(t.points_before for t in mine),
                    points_now=sum(t.points_now for t in mine),
                    alone_before=sum(t.alone_before for t in mine),
                    alone_now=sum(t.alone_now for t in mine),
                )
            )
    return tuple(bars)


def _domains(definition: Definition, tasks: tuple[TaskProgress, ...]) -> tuple[Option, ...]:
    """Domains where at least one task went up a rung."""
    seen = {task.item.competence for task in tasks if task.went_up}
    return tuple(o for code, o in definition.competences.items() if code in seen)


def _next_steps(definition: Definition, tasks: tuple[TaskProgress, ...]) -> tuple[NextStep, ...]:
    """Tasks not yet done alone, the nearest rung first (then definition order)."""
    waiting = [task for task in tasks if task.needs_help_now]
    waiting.sort(key=lambda task: -task.rung_now)  # stable: definition order within a rung
    return tuple(
        NextStep(task, definition.coop_topics.get(task.item.coop_topic or "")) for task in waiting
    )
