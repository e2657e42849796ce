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
from dataclasses import dataclass
from functools import cached_property

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import ngettext as babel_ngettext

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


class SummaryWords:
    """Every sentence of the summary, in the person's wording and the current language.

    Figures are always written inside a sentence (never only in a chart), so a screen reader
    and a printed copy say them.
    """

    def __init__(self, summary: Summary) -> None:
        self.s = summary
        self.easy = summary.easy

    def _pick(self, standard: str, easy: str) -> str:
        return _typeset(easy if self.easy else standard)

    # headings

    @property
    def title(self) -> str:
        if self.s.has_before:
            return self._pick(_("Vos progrès"), _("Vos progrès"))
        return self._pick(_("Votre point de départ"), _("Ce que vous savez faire aujourd'hui"))

    @property
    def counts_title(self) -> str:
        return self._pick(_("En bref"), _("En résumé"))

    @property
    def comfort_title(self) -> str:
        return self._pick(_("Votre aisance avec le numérique"), _("Vous et internet"))

    @property
    def comfort_before(self) -> str:
        return self._pick(_("Avant votre accompagnement :"), _("Avant :"))

    @property
    def comfort_now(self) -> str:
        return self._pick(_("Aujourd'hui :"), _("Aujourd'hui :"))

    @property
    def progress_label(self) -> str:
        return self._pick(
            _("Votre sentiment de progrès :"),
            _("Savez-vous faire plus de choses ? Vous avez dit :"),
        )

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
    def comfort_today(self) -> str:
        return self._pick(
            _("Votre aisance avec le numérique aujourd'hui :"),
            _("Avec internet et les appareils, aujourd'hui, vous êtes :"),
        )

    # the comfort and feeling-of-progress message: one message that never contradicts itself

    @property
    def comfort_message(self) -> str | None:
        s = self.s
        if not s.has_before:
            return None
        climbed = len(s.progressed)
        if s.feels_no_progress and climbed:
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
            return _typeset(
                ngettext(
                    "Vous avez le sentiment de ne pas avoir vraiment progressé. Pourtant, "
                    "vos réponses montrent %(num)s chose qui a avancé d'au moins une marche.",
                    "Vous avez le sentiment de ne pas avoir vraiment progressé. Pourtant, "
                    "vos réponses montrent %(num)s choses qui ont avancé d'au moins une marche.",
                    climbed,
                )
            )
        if s.comfort_lower:
            return self._pick(
                _(
                    "Vous vous sentez moins à l'aise qu'avant. Cela arrive quand on découvre "
                    "tout ce que l'on peut faire : parlez-en à votre médiateur ou médiatrice."
                ),
                _(
                    "Vous êtes moins à l'aise avec internet. Cela arrive. "
                    "Parlez-en à la personne qui vous aide."
                ),
            )
        if s.praise and s.comfort_improved:
            return self._pick(
                _("Vous êtes plus à l'aise qu'avant. Bravo !"),
                _("Vous êtes plus à l'aise qu'avant. Bravo !"),
            )
        if s.praise:
            return self._pick(_("Vous avez progressé. Bravo !"), _("Vous avez progressé. Bravo !"))
        return None

    # the counts, each in a sentence

    @property
    def progressed(self) -> str:
        n, total = len(self.s.progressed), len(self.s.concerned)
        if self.easy:
            return _typeset(
                ngettext(
                    "Vous avez progressé pour %(num)s chose sur %(total)s.",
                    "Vous avez progressé pour %(num)s choses sur %(total)s.",
                    n,
                    total=total,
                )
            )
        return _typeset(
            ngettext(
                "Vous avez progressé d'au moins une marche pour %(num)s chose sur %(total)s.",
                "Vous avez progressé d'au moins une marche pour %(num)s choses sur %(total)s.",
                n,
                total=total,
            )
        )

    @property
    def alone(self) -> str:
        n, total = len(self.s.alone), len(self.s.concerned)
        if self.s.has_before:
            before = sum(task.alone_before for task in self.s.tasks)
            return self._pick(
                ngettext(
                    "Vous faites %(num)s chose sans aide sur %(total)s aujourd'hui, "
                    "contre %(before)s avant.",
                    "Vous faites %(num)s choses sans aide sur %(total)s aujourd'hui, "
                    "contre %(before)s avant.",
                    n,
                    total=total,
                    before=before,
                ),
                ngettext(
                    "Aujourd'hui, vous faites %(num)s chose sans aide. Avant : %(before)s.",
                    "Aujourd'hui, vous faites %(num)s choses sans aide. Avant : %(before)s.",
                    n,
                    before=before,
                ),
            )
        return self._pick(
            ngettext(
                "Vous faites déjà %(num)s chose sans aide sur %(total)s.",
                "Vous faites déjà %(num)s choses sans aide sur %(total)s.",
                n,
                total=total,
            ),
            ngettext(
                "Vous faites déjà %(num)s chose sans aide.",
                "Vous faites déjà %(num)s choses sans aide.",
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

    @property
    def already_done(self) -> str:
        """The starting point: what the person already does, with or without help."""
        n, total = len(self.s.already_done), len(self.s.concerned)
        if n == 0:
            return self._pick(
                _(
                    "Vous commencez : c'est le bon moment. Votre médiateur ou votre médiatrice "
                    "vous aidera pas à pas pour les choses ci-dessous."
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

    # section headings with a count

    @property
    def progressed_title(self) -> str:
        n = len(self.s.progressed)
        return self._pick(
            ngettext(
                "La chose où vous avez progressé",
                "Les %(num)s choses où vous avez progressé",
                n,
            ),
            ngettext(
                "Vous avez progressé pour %(num)s chose",
                "Vous avez progressé pour %(num)s choses",
                n,
            ),
        )

    @property
    def alone_title(self) -> str:
        n = len(self.s.alone)
        return self._pick(
            ngettext(
                "Une chose que vous faites sans aide",
                "%(num)s choses que vous faites sans aide",
                n,
            ),
            ngettext(
                "Vous le faites sans aide : %(num)s chose",
                "Vous le faites sans aide : %(num)s choses",
                n,
            ),
        )

    @property
    def with_help_title(self) -> str:
        n = len(self.s.with_help)
        return self._pick(
            ngettext(
                "Une chose que vous faites avec de l'aide",
                "%(num)s choses que vous faites avec de l'aide",
                n,
            ),
            ngettext(
                "Vous le faites avec de l'aide : %(num)s chose",
                "Vous le faites avec de l'aide : %(num)s choses",
                n,
            ),
        )

    @property
    def can_help_title(self) -> str:
        n = len(self.s.can_help)
        return self._pick(
            ngettext(
                "Une chose où vous pouvez aider quelqu'un",
                "%(num)s choses où vous pouvez aider quelqu'un",
                n,
            ),
            ngettext(
                "Vous pouvez aider une autre personne : %(num)s chose",
                "Vous pouvez aider une autre personne : %(num)s choses",
                n,
            ),
        )

    @property
    def step_back_title(self) -> str:
        n = len(self.s.stepped_back)
        return self._pick(
            ngettext(
                "Une chose moins facile qu'avant",
                "%(num)s choses moins faciles qu'avant",
                n,
            ),
            ngettext("%(num)s chose est plus difficile", "%(num)s choses sont plus difficiles", n),
        )

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

    @property
    def tasks_title(self) -> str:
        return self._pick(
            _("Chose par chose, avant et aujourd'hui"), _("Chaque chose, avant et aujourd'hui")
        )

    @property
    def task_column(self) -> str:
        return self._pick(_("Ce que vous faites"), _("La chose"))

    @property
    def before_column(self) -> str:
        return self._pick(_("Avant"), _("Avant"))

    @property
    def now_column(self) -> str:
        return self._pick(_("Aujourd'hui"), _("Aujourd'hui"))

    @property
    def change_column(self) -> str:
        return self._pick(_("Ce qui a changé"), _("Le changement"))

    def change(self, task: TaskProgress) -> str:
        """A task's move on the ladder, in words."""
        if not task.answered:
            return self._pick(_("Pas de réponse"), _("Pas de réponse"))
        steps = task.steps_up
        if steps > 0:
            return self._pick(
                ngettext("Une marche de plus", "%(num)s marches de plus", steps),
                ngettext(
                    "Vous avez monté %(num)s marche", "Vous avez monté %(num)s marches", steps
                ),
            )
        if steps < 0:
            return self._pick(
                ngettext("Une marche de moins", "%(num)s marches de moins", -steps),
                ngettext("%(num)s marche plus bas", "%(num)s marches plus bas", -steps),
            )
        return self._pick(_("Pareil qu'avant"), _("Pareil"))

    def answer(self, option: Option | None) -> str:
        return _label(option)

    # the chart

    @property
    def chart_title(self) -> str:
        if self.s.has_before:
            return self._pick(
                _("Vos marches sur l'échelle, avant et aujourd'hui"),
                _("Vos progrès sur l'échelle, avant et aujourd'hui"),
            )
        return self._pick(
            _("Vos marches sur l'échelle aujourd'hui"), _("Où vous en êtes sur l'échelle")
        )

    @property
    def chart_key(self) -> str:
        ladder = self.s.ladder
        if len(ladder) < 2:
            return ""
        steps = len(ladder) - 1
        first, last = _label(ladder[0]), _label(ladder[-1])
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
    def chart_summary(self) -> str:
        possible, before, now = self.s.points
        if self.s.has_before:
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

    def bar_before(self, bar: CompetenceBar) -> str:
        return _typeset(
            ngettext(
                "Avant : %(num)s marche sur %(total)s",
                "Avant : %(num)s marches sur %(total)s",
                bar.points_before,
                total=bar.points_max,
            )
        )

    def bar_now(self, bar: CompetenceBar) -> str:
        return _typeset(
            ngettext(
                "Aujourd'hui : %(num)s marche sur %(total)s",
                "Aujourd'hui : %(num)s marches sur %(total)s",
                bar.points_now,
                total=bar.points_max,
            )
        )

    # the other sections

    @property
    def domains_title(self) -> str:
        return self._pick(_("Les domaines où vous avez progressé"), _("Où vous avez progressé"))

    @property
    def changes_title(self) -> str:
        return self._pick(_("Ce qui a changé pour vous"), _("Ce qui a changé pour vous"))

    @property
    def next_title(self) -> str:
        return self._pick(
            _("Ce que vous pouvez apprendre ensuite"), _("Ce que vous pouvez apprendre")
        )

    @property
    def next_lead(self) -> str:
        return self._pick(
            _("Les plus proches d'abord, à votre rythme :"),
            _("Commencez par le début de la liste :"),
        )

    def next_step(self, step: NextStep) -> str:
        if step.task.rung_now > 1:
            return self._pick(_("aujourd'hui avec de l'aide"), _("vous le faites avec de l'aide"))
        return self._pick(_("pas encore"), _("pas encore"))

    def topic(self, step: NextStep) -> str | None:
        if step.topic is None:
            return None
        return _typeset(_("Thème : %(topic)s", topic=_(step.topic.label)))

    @property
    def suggestions_title(self) -> str:
        return self._pick(_("Pour la suite"), _("Pour la suite"))

    @property
    def suggestions_lead(self) -> str:
        return self._pick(
            _("Vous pouvez en parler à votre médiateur ou médiatrice numérique :"),
            _("Parlez de ces thèmes à la personne qui vous aide :"),
        )

    @property
    def unanswered_title(self) -> str:
        n = len(self.s.unanswered)
        return _typeset(
            ngettext(
                "Une chose sans réponse",
                "%(num)s choses sans réponse",
                n,
            )
        )

    @property
    def unanswered_lead(self) -> str:
        return self._pick(
            _(
                "Vous n'avez pas répondu pour ces choses : elles ne comptent pas dans "
                "les nombres ci-dessus."
            ),
            _("Vous n'avez pas répondu pour ces choses. Elles ne sont pas comptées."),
        )


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
