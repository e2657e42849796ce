"""What lasted: the person's three points (before, at the end, months later), issue 15.

Kept apart from `summary` (the before/after view-model, reshaped elsewhere): this module
reads the same answers and adds the follow-up. For each task of the autonomy ladder it
compares the end of the accompaniment with the follow-up: kept (same rung), grew (higher),
or lost (lower); and the comfort at the three points. The web summary and its PDF show it in
their own partials (templates/journey/_lasting.html, paper/templates/_lasting.html).
Sentences are translated when a template reads them, in the person's wording; losing a skill
is said kindly, with what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _

from selfcheck.journey.operations import Answers, answers_of
from selfcheck.journey.summary import _rank, _typeset, ngettext, wording_of
from selfcheck.platform.models import Beneficiary
from selfcheck.questionnaire.model import (
    END_FORMS,
    FOLLOWUP_FORMS,
    PRE_SUFFIX,
    Definition,
    FormKind,
    Item,
    Option,
    Role,
    Wording,
)


@dataclass(frozen=True)
class TaskPoints:
    """One task at the three points (None: not answered then)."""

    item: Item
    before: Option | None
    end: Option | None
    later: Option | None

    @property
    def compared(self) -> bool:
        """Ranked answers at the end and later (not "does not concern me")."""
        return _rank(self.end) > 0 and _rank(self.later) > 0

    @property
    def change(self) -> int:
        """Rungs between the end and months later (negative: lost)."""
        return _rank(self.later) - _rank(self.end) if self.compared else 0

    @property
    def gained_during(self) -> bool:
        """It went up during the accompaniment (before -> end)."""
        return _rank(self.before) > 0 and _rank(self.end) > _rank(self.before)


@dataclass(frozen=True)
class Lasting:
    tasks: tuple[TaskPoints, ...]
    comfort_before: Option | None
    comfort_end: Option | None
    comfort_later: Option | None
    followup: FormKind
    wording: Wording = Wording.STANDARD

    @property
    def easy(self) -> bool:
        return self.wording is Wording.EASY

    @property
    def kept(self) -> tuple[TaskPoints, ...]:
        return tuple(t for t in self.tasks if t.compared and t.change == 0)

    @property
    def grew(self) -> tuple[TaskPoints, ...]:
        return tuple(t for t in self.tasks if t.change > 0)

    @property
    def lost(self) -> tuple[TaskPoints, ...]:
        return tuple(t for t in self.tasks if t.change < 0)

    @property
    def gains(self) -> tuple[TaskPoints, ...]:
        """Tasks that went up during the accompaniment (and were answered months later)."""
        return tuple(t for t in self.tasks if t.gained_during and t.compared)

    @property
    def gains_kept(self) -> tuple[TaskPoints, ...]:
        return tuple(t for t in self.gains if t.change >= 0)

    def words(self) -> LastingWords:
        return LastingWords(self)


def build_lasting(
    definition: Definition, beneficiary: Beneficiary, wording: Wording | None = None
) -> Lasting | None:
    """The three points, or None without a sent end form and a sent follow-up (the latest)."""
    definition = definition.in_wording(wording or wording_of(beneficiary))
    done = {FormKind(r.form): r for r in beneficiary.responses if r.is_submitted}
    end_form = next((form for form in (FormKind.AFTER, FormKind.RETRO) if form in done), None)
    later_form = next((form for form in reversed(FOLLOWUP_FORMS) if form in done), None)
    if end_form is None or later_form is None:
        return None
    assert end_form in END_FORMS
    end = answers_of(done[end_form])
    later = answers_of(done[later_form])
    if end_form is FormKind.RETRO:
        before = {
            code.removesuffix(PRE_SUFFIX): values
            for code, values in end.items()
            if code.endswith(PRE_SUFFIX)
        }
    else:
        before = answers_of(done[FormKind.BEFORE]) if FormKind.BEFORE in done else {}

    def pick(item: Item, answers: Answers) -> Option | None:
        given = answers.get(item.code, ())
        return item.option(given[0]) if given else None

    tasks = tuple(
        TaskPoints(item, pick(item, before), pick(item, end), pick(item, later))
        for item in definition.task_items()
        if item.in_form(later_form)
    )
    comfort = definition.item_with_role(Role.COMFORT)
    return Lasting(
        tasks=tasks,
        comfort_before=pick(comfort, before) if comfort else None,
        comfort_end=pick(comfort, end) if comfort else None,
        comfort_later=pick(comfort, later) if comfort else None,
        followup=later_form,
        wording=definition.wording,
    )


def _label(option: Option | None) -> str:
    return _typeset(_(option.label)) if option is not None else _typeset(_("Pas de réponse"))


class LastingWords:
    """The sentences of the three points, in the person's wording and the current language."""

    def __init__(self, lasting: Lasting) -> None:
        self.s = lasting
        self.easy = lasting.easy

    def _pick(self, standard: str, easy: str) -> str:
        return _typeset(easy if self.easy else standard)

    def answer(self, option: Option | None) -> str:
        return _label(option)

    def task(self, task: TaskPoints) -> str:
        return _typeset(_(task.item.label))

    @property
    def title(self) -> str:
        return self._pick(_("Quelques mois après"), _("Quelques mois après"))

    @property
    def lead(self) -> str:
        return self._pick(
            _(
                "Vous avez répondu une troisième fois, quelques mois après la fin de votre "
                "accompagnement. Voici ce qui est resté."
            ),
            _("Vous avez répondu encore une fois, après la fin. Voici ce qui est resté."),
        )

    @property
    def comfort_title(self) -> str:
        return self._pick(_("Votre aisance, en trois temps"), _("Vous et internet, 3 fois"))

    @property
    def point_before(self) -> str:
        return self._pick(_("Avant l'accompagnement :"), _("Avant :"))

    @property
    def point_end(self) -> str:
        return self._pick(_("À la fin :"), _("À la fin :"))

    @property
    def point_later(self) -> str:
        return self._pick(_("Quelques mois après :"), _("Après quelques mois :"))

    @property
    def kept(self) -> str:
        n = len(self.s.kept)
        if self.easy:
            return _typeset(
                ngettext(
                    "Vous savez toujours faire %(num)s chose comme à la fin.",
                    "Vous savez toujours faire %(num)s choses comme à la fin.",
                    n,
                )
            )
        return _typeset(
            ngettext(
                "Ce qui a tenu : %(num)s chose au même niveau qu'à la fin de l'accompagnement.",
                "Ce qui a tenu : %(num)s choses au même niveau qu'à la fin de l'accompagnement.",
                n,
            )
        )

    @property
    def grew(self) -> str:
        n = len(self.s.grew)
        if self.easy:
            return _typeset(
                ngettext(
                    "Vous faites encore mieux %(num)s chose. Bravo !",
                    "Vous faites encore mieux %(num)s choses. Bravo !",
                    n,
                )
            )
        return _typeset(
            ngettext(
                # Plain words, not the ladder's "marche" (a metaphor a beginner does not
                # follow; docs/accessibility.md, round 23).
                "Ce qui a encore grandi : %(num)s chose que vous faites mieux qu'à la fin "
                "de l'accompagnement. Bravo !",
                "Ce qui a encore grandi : %(num)s choses que vous faites mieux qu'à la fin "
                "de l'accompagnement. Bravo !",
                n,
            )
        )

    @property
    def lost(self) -> str:
        n = len(self.s.lost)
        if self.easy:
            return _typeset(
                ngettext(
                    "Vous avez un peu oublié %(num)s chose.",
                    "Vous avez un peu oublié %(num)s choses.",
                    n,
                )
            )
        return _typeset(
            ngettext(
                "Ce qui s'est un peu perdu : %(num)s chose que vous faites moins bien qu'à "
                "la fin de l'accompagnement.",
                "Ce qui s'est un peu perdu : %(num)s choses que vous faites moins bien qu'à "
                "la fin de l'accompagnement.",
                n,
            )
        )

    @property
    def lost_kindly(self) -> str:
        return self._pick(
            _(
                "C'est normal d'oublier ce que l'on ne fait pas souvent. Votre lieu "
                "d'accompagnement peut vous aider à le retrouver, sans rendez-vous long."
            ),
            _("C'est normal d'oublier. Le lieu qui vous a aidé peut vous aider encore."),
        )

    @property
    def gains_kept(self) -> str | None:
        gains, kept = len(self.s.gains), len(self.s.gains_kept)
        if not gains:
            return None
        if self.easy:
            return _typeset(
                ngettext(
                    "Vous aviez appris %(num)s chose. Vous l'avez gardée : %(kept)s sur %(num)s.",
                    "Vous aviez appris %(num)s choses. Vous en avez gardé %(kept)s sur %(num)s.",
                    gains,
                    kept=kept,
                )
            )
        return _typeset(
            ngettext(
                "Pendant l'accompagnement, vous aviez progressé sur %(num)s chose ; "
                "%(kept)s sur %(num)s est restée au moins à ce niveau.",
                "Pendant l'accompagnement, vous aviez progressé sur %(num)s choses ; "
                "%(kept)s sur %(num)s sont restées au moins à ce niveau.",
                gains,
                kept=kept,
            )
        )
