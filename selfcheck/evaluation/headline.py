"""The dashboard's headline figures, each beside the 2023 reference survey's figure.

One figure per line of issue 14: people, pairs completed, aged 60+, women, below the bac,
internet at home, could not switch a device on and off alone before, procedures among the
topics and as the only topic, new things, feeling of progress, comfort before -> now (pairs)
and the paper share, counted in people.

Who is counted (every share is of *people*, counted once each, `COUNT(DISTINCT person)`):
- profile figures (age, gender, diploma, internet, switching on before) read the 'before' and
  retrospective forms; the path and evolution figures read the 'after' and retrospective forms;
- a share's base is the people who answered, leaving out "I'd rather not say" (options tagged
  `declined`) and, for a task, "does not concern me";
- which options count comes from the item bank's roles and tags, never from codes.

The reference is shown only where the definitions match (`SPECS[...].comparable`): the survey's
"procedures" figures count accompaniments, not people, and are not shown beside ours. Small
counts follow the dashboard's rule: a share whose count, or whose complement, is from 1 to
k - 1, or whose base is under k, is hidden; intervals (Wilson, `statistics.share`) are computed
only on what is shown.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from selfcheck.evaluation import facts, indicators, paired, statistics
from selfcheck.evaluation.disclosure import Hidden, any_small, shown_share
from selfcheck.evaluation.references import Reference, References, load_references
from selfcheck.evaluation.scope import EvaluationFilters
from selfcheck.platform.models import Channel, ResponseFact
from selfcheck.questionnaire.model import (
    Definition,
    FormKind,
    Indicator,
    Item,
    Role,
    Tag,
)

PROFILE_FORMS = (FormKind.BEFORE, FormKind.RETRO)
PATH_FORMS = (FormKind.AFTER, FormKind.RETRO)


@dataclass(frozen=True)
class Spec:
    key: str
    label: object
    reference: str | None = None  # key in references.yaml `figures`
    comparable: bool = False  # the reference's definition matches ours
    note: object | None = None  # how we count, or why the reference is not shown
    caveat: object | None = None  # where the survey's definition is unclear (sources list)


SPECS: tuple[Spec, ...] = (
    Spec("people", _l("Personnes")),
    Spec(
        "pairs",
        _l("Parcours complets (départ et fin)"),
        note=_l("Parmi celles qui ont rempli un questionnaire de départ."),
    ),
    Spec(
        "aged_60_plus",
        _l("60 ans ou plus"),
        "aged_60_plus",
        True,
        _l("L'enquête dit « plus de 60 ans »."),
    ),
    Spec("women", _l("Femmes"), "women", True),
    Spec("below_bac", _l("Sans le baccalauréat"), "below_bac", True),
    Spec("internet_at_home", _l("Internet à la maison"), "internet_at_home", True),
    Spec(
        "switch_device",
        _l("N'allumaient pas seules leur appareil avant"),
        "cannot_switch_device_on_off",
        True,
        _l("« Pas encore » ou « avec de l'aide », au départ."),
        _l(
            "L'enquête ne dit pas si c'est avant l'accompagnement ou au moment de répondre, "
            "ni si « avec de l'aide » compte comme « ne maîtrise pas »."
        ),
    ),
    Spec(
        "procedures_among_topics",
        _l("Démarches administratives parmi les sujets"),
        "procedures_among_topics",
        False,
        _l("L'enquête compte des accompagnements, pas des personnes."),
    ),
    Spec(
        "procedures_only_topic",
        _l("Démarches administratives, seul sujet"),
        "procedures_only_topic",
        False,
        _l("L'enquête compte des accompagnements, pas des personnes."),
    ),
    Spec("new_things", _l("Font des choses qu'elles ne savaient pas faire"), "new_tasks", True),
    Spec(
        "progress",
        _l("Ont le sentiment d'avoir progressé"),
        "feeling_of_progress",
        True,
        _l("« Oui, un peu » ou « oui, tout à fait »."),
        _l("Les réponses proposées par l'enquête ne sont pas publiées."),
    ),
    Spec(
        "at_ease",
        _l("À l'aise avec le numérique, avant → maintenant"),
        note=_l("Plutôt ou très à l'aise ; mêmes personnes, départ puis fin."),
    ),
    Spec(
        "paper",
        _l("Ont répondu sur papier"),
        "paper_share",
        True,
        _l("Au moins un questionnaire sur papier."),
    ),
)


@dataclass(frozen=True)
class Figure:
    key: str
    label: object
    note: object | None
    count: int | None  # None when hidden
    base: int | None  # None when hidden (or for a plain count)
    hidden: Hidden | None
    interval: statistics.Share | statistics.TooFew | None
    reference: Reference | None  # shown only when the definitions match
    unshown_reference: Reference | None = None  # a reference whose definition differs
    caveat: object | None = None
    change: paired.Result | None = None  # comfort before -> now (pairs)

    @property
    def share(self) -> float | None:
        return shown_share(self.count, self.base, self.hidden)


@dataclass(frozen=True)
class Headline:
    people: int
    k: int
    figures: tuple[Figure, ...]
    references: References

    def figure(self, key: str) -> Figure:
        return next(f for f in self.figures if f.key == key)


# --- counting ---------------------------------------------------------------------------------


Tally = indicators.Tally


def _count(tally: Tally, key: str, forms: Sequence[FormKind], keep: Callable[[str], bool]) -> int:
    """The sum of the facts' lines of `key` in these forms whose value `keep` keeps."""
    wanted = {form.value for form in forms}
    return sum(
        number
        for (form, _channel, name, value), number in tally.items()
        if name == key and form in wanted and keep(value)
    )


def _tagged(
    tally: Tally, item: Item | None, tag: Tag, forms: Sequence[FormKind]
) -> tuple[int, int] | None:
    """(people with an option tagged `tag`, people who answered, "declined" left out)."""
    if item is None:
        return None
    if item.type.several:  # the facts' lines of the choices (facts.REAL, TAGGED)
        base = _count(tally, facts.REAL, forms, lambda value: value == item.code)
        marked = f"{item.code}:{tag.value}"
        return _count(tally, facts.TAGGED, forms, lambda value: value == marked), base
    declined = frozenset(item.tagged(Tag.DECLINED))
    codes = frozenset(item.tagged(tag))
    base = _count(tally, item.code, forms, lambda value: value not in declined)
    return _count(tally, item.code, forms, lambda value: value in codes), base


def _switch_before(tally: Tally, item: Item | None) -> tuple[int, int] | None:
    """People below "on my own" on the task before (first form or retrospective "before")."""
    if item is None:
        return None
    ranks = {o.rank for o in item.options if o.rank is not None}
    prefix = f"{item.code}:"

    def rung(value: str) -> int | None:
        found = value.removeprefix(prefix) if value.startswith(prefix) else None
        return int(found) if found is not None and int(found) in ranks else None

    def placed(value: str) -> bool:
        return rung(value) is not None

    def below(value: str) -> bool:
        found = rung(value)
        return found is not None and found < paired.ALONE_RANK

    base = _count(tally, facts.THEN, PROFILE_FORMS, placed)
    return _count(tally, facts.THEN, PROFILE_FORMS, below), base


def _only_topic(tally: Tally, item: Item | None) -> tuple[int, int] | None:
    """People whose only topic ticked is tagged `procedures`, among those who ticked any."""
    if item is None:
        return None
    base = _count(tally, facts.REAL, PATH_FORMS, lambda value: value == item.code)
    marked = f"{item.code}:{Tag.PROCEDURES.value}"
    return _count(tally, facts.ONLY, PATH_FORMS, lambda value: value == marked), base


def _pairs(tally: Tally) -> tuple[int, int]:
    """(people with a 'before' in scope and their 'after' submitted, people with a 'before')."""
    before = (FormKind.BEFORE,)
    everything: Callable[[str], bool] = lambda _value: True  # noqa: E731
    return _count(tally, facts.PAIRED, before, everything), _count(
        tally, facts.RESPONSES, before, everything
    )


def _paper(
    db: Session, filters: EvaluationFilters, people: int, paper: int | None = None
) -> tuple[int, int]:
    """People with at least one paper form in scope (distinct people, in the facts).
    `paper`: that number when the caller has it (the differencing check counts it: one
    `COUNT(DISTINCT)` over the facts less, 0.75 s at 1,000,000 people, issue 18)."""
    if paper is not None:
        return paper, people
    query = select(func.count(distinct(ResponseFact.beneficiary_id))).where(
        *indicators.fact_conditions(filters, ResponseFact),
        ResponseFact.channel == Channel.PAPER.value,
    )
    return int(db.scalar(query) or 0), people


def counts(
    db: Session,
    definition: Definition,
    filters: EvaluationFilters,
    people: int,
    paper: int | None = None,
) -> dict[str, tuple[int, int] | None]:
    """(count, base) of every share figure; None where the questionnaire lacks the item.

    From the maintained facts (facts.py): one query over `fact_tally`, one over
    `response_fact` (people with a paper form). Each person answers the profile items once
    (a 'before' or a retrospective form) and the path items once (an 'after' or a
    retrospective form), so counting responses counts people, as the dashboard's tables do.
    """
    item = definition.item_with_role
    roles = (Role.AGE, Role.GENDER, Role.DIPLOMA, Role.INTERNET_HOME, Role.NEW_THINGS)
    codes = [found.code for role in (*roles, Role.PROGRESS) if (found := item(role))]
    keys = [*codes, facts.REAL, facts.TAGGED, facts.ONLY, facts.THEN]
    tally = indicators.read_tally(db, filters, [*keys, facts.PAIRED, facts.RESPONSES])
    return {
        "pairs": _pairs(tally),
        "aged_60_plus": _tagged(tally, item(Role.AGE), Tag.SENIOR, PROFILE_FORMS),
        "women": _tagged(tally, item(Role.GENDER), Tag.FEMININE, PROFILE_FORMS),
        "below_bac": _tagged(tally, item(Role.DIPLOMA), Tag.BELOW_BACCALAUREATE, PROFILE_FORMS),
        "internet_at_home": _tagged(tally, item(Role.INTERNET_HOME), Tag.YES, PROFILE_FORMS),
        "switch_device": _switch_before(
            tally, definition.item_with_indicator(Indicator.SWITCH_DEVICE)
        ),
        "procedures_among_topics": _tagged(tally, item(Role.TOPICS), Tag.PROCEDURES, PATH_FORMS),
        "procedures_only_topic": _only_topic(tally, item(Role.TOPICS)),
        "new_things": _tagged(tally, item(Role.NEW_THINGS), Tag.YES, PATH_FORMS),
        "progress": _progress(tally, item(Role.PROGRESS)),
        "paper": _paper(db, filters, people, paper),
    }


def _progress(tally: Tally, item: Item | None) -> tuple[int, int] | None:
    """People who felt some progress, among those who said yes or no (tags)."""
    if item is None:
        return None
    yes = frozenset(item.tagged(Tag.PROGRESS_YES))
    either = yes | frozenset(item.tagged(Tag.PROGRESS_NO))
    base = _count(tally, item.code, PATH_FORMS, lambda value: value in either)
    return _count(tally, item.code, PATH_FORMS, lambda value: value in yes), base


# --- the figures ------------------------------------------------------------------------------


def hidden_reason(count: int, base: int, k: int) -> Hidden | None:
    """The dashboard's rule for one share: base under k, or count or complement 1 to k - 1."""
    if base < k:
        return Hidden.SMALL_BASE
    if any_small((count, base - count), k):
        return Hidden.SMALL
    return None


def _share_figure(spec: Spec, found: tuple[int, int], k: int, references: References) -> Figure:
    count, base = found
    hidden = hidden_reason(count, base, k)
    reference = references.figure(spec.reference) if spec.reference else None
    return Figure(
        key=spec.key,
        label=spec.label,
        note=spec.note,
        count=None if hidden else count,
        base=None if hidden is Hidden.SMALL_BASE else base,
        hidden=hidden,
        interval=None if hidden else statistics.share(count, base, k=k),
        reference=reference if spec.comparable else None,
        unshown_reference=None if spec.comparable else reference,
        caveat=spec.caveat,
    )


def build_headline(
    db: Session,
    definition: Definition,
    filters: EvaluationFilters,
    k: int,
    changes: paired.Changes | None = None,
    references: References | None = None,
    people: int | None = None,
    paper: int | None = None,
) -> Headline:
    """Every headline figure, protected; the caller has checked that k people are in scope.
    `people`: the people in scope (indicators.count_people) when the caller has counted them
    (the dashboard's first page: its tables did), else counted here; `paper` the same for
    the people with a paper form (the differencing check counts them, guard_views)."""
    references = references or load_references()
    if people is None:
        people = indicators.count_people(db, filters)
    found = counts(db, definition, filters, people, paper)
    if changes is None:
        changes = paired.changes(db, definition, filters, k)[0]
    figures: list[Figure] = []
    for spec in SPECS:
        if spec.key == "people":
            figures.append(Figure(spec.key, spec.label, spec.note, people, None, None, None, None))
        elif spec.key == "at_ease":
            change = next((c.result for c in changes.pairs if c.key == "at_ease"), None)
            if change is not None:
                figure = Figure(spec.key, spec.label, spec.note, None, None, None, None, None)
                figures.append(replace(figure, change=change))
        else:
            pair = found.get(spec.key)
            if pair is not None:
                figures.append(_share_figure(spec, pair, k, references))
    return Headline(people, k, tuple(figures), references)


# --- CSV ----------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def headline_csv(headline: Headline) -> str:
    """The headline figures as CSV: the same cells as on screen, with interval and reference."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            gettext("code"),
            gettext("Indicateur"),
            gettext("Nombre"),
            gettext("Base (effectif)"),
            gettext("%"),
            gettext("IC 95 % bas"),
            gettext("IC 95 % haut"),
            gettext("Enquête de référence 2023 (%)"),
        ]
    )
    k = headline.k
    for figure in headline.figures:
        if figure.change is not None:
            result = figure.change
            if isinstance(result, statistics.PairedShareChange):
                moments = (
                    ("before", gettext("avant"), result.before),
                    ("after", gettext("maintenant"), result.after),
                )
                for moment, when, value in moments:
                    writer.writerow(
                        [
                            f"{figure.key}_{moment}",
                            f"{figure.label} ({when})",
                            "",
                            str(result.n),
                            _percent(100 * value),
                            "",
                            "",
                            "",
                        ]
                    )
            else:
                writer.writerow([figure.key, str(figure.label), f"< {k}", "", "", "", "", ""])
            continue
        count = "" if figure.count is None else str(figure.count)
        if figure.hidden is not None:
            count = f"< {k}" if figure.hidden is Hidden.SMALL_BASE else gettext("masqué")
        interval = figure.interval
        low = high = ""
        if isinstance(interval, statistics.Share):
            low, high = _percent(100 * interval.low), _percent(100 * interval.high)
        writer.writerow(
            [
                figure.key,
                str(figure.label),
                count,
                "" if figure.base is None else str(figure.base),
                _percent(figure.share),
                low,
                high,
                "" if figure.reference is None else f"{figure.reference.value:g}",
            ]
        )
    return out.getvalue()
