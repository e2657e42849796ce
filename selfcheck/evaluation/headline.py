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
from collections.abc import Sequence
from dataclasses import dataclass, replace

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, case, distinct, func, or_, select
from sqlalchemy.orm import Session, aliased

from selfcheck.evaluation import paired, statistics
from selfcheck.evaluation.disclosure import Hidden, any_small
from selfcheck.evaluation.references import Reference, References, load_references
from selfcheck.evaluation.scope import EvaluationFilters, count_people, response_conditions
from selfcheck.platform.models import Answer, Channel, Response, Status
from selfcheck.questionnaire.model import (
    NO_ANSWER,
    PRE_SUFFIX,
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
        if self.hidden is not None or self.count is None or not self.base:
            return None
        return 100.0 * self.count / self.base


@dataclass(frozen=True)
class Headline:
    people: int
    k: int
    figures: tuple[Figure, ...]
    references: References

    def figure(self, key: str) -> Figure:
        return next(f for f in self.figures if f.key == key)


# --- counting ---------------------------------------------------------------------------------


def _forms(forms: Sequence[FormKind]) -> ColumnElement[bool]:
    return Response.form.in_([form.value for form in forms])


def _people(db: Session, filters: EvaluationFilters, *where: ColumnElement[bool]) -> int:
    query = (
        select(func.count(distinct(Response.beneficiary_id)))
        .join(Answer, Answer.response_id == Response.id)
        .where(*response_conditions(filters), *where)
    )
    return int(db.scalar(query) or 0)


def _answered(item: Item, forms: Sequence[FormKind]) -> list[ColumnElement[bool]]:
    """People who gave the item a real answer (not blank, not "I'd rather not say")."""
    return [
        _forms(forms),
        Answer.variable == item.code,
        Answer.value != NO_ANSWER,
        Answer.value.not_in(item.tagged(Tag.DECLINED)),
    ]


def _tagged(
    db: Session,
    filters: EvaluationFilters,
    item: Item | None,
    tags: Sequence[Tag],
    forms: Sequence[FormKind],
) -> tuple[int, int] | None:
    """(people with an option tagged with one of `tags`, people who answered)."""
    if item is None:
        return None
    codes = [code for tag in tags for code in item.tagged(tag)]
    base = _people(db, filters, *_answered(item, forms))
    return _people(db, filters, *_answered(item, forms), Answer.value.in_(codes)), base


def _switch_before(
    db: Session, filters: EvaluationFilters, item: Item | None
) -> tuple[int, int] | None:
    """People below "on my own" on the task before (first form or retrospective "before")."""
    if item is None:
        return None
    ranks = {o.code: o.rank for o in item.options if o.rank is not None}
    before = or_(
        and_(Response.form == FormKind.BEFORE.value, Answer.variable == item.code),
        and_(Response.form == FormKind.RETRO.value, Answer.variable == item.code + PRE_SUFFIX),
    )
    base = _people(db, filters, before, Answer.value.in_(list(ranks)))
    below = [code for code, rank in ranks.items() if rank < paired.ALONE_RANK]
    return _people(db, filters, before, Answer.value.in_(below)), base


def _only_topic(
    db: Session, filters: EvaluationFilters, item: Item | None
) -> tuple[int, int] | None:
    """People whose only topic ticked is tagged `procedures`, among those who ticked any."""
    if item is None:
        return None
    procedures = list(item.tagged(Tag.PROCEDURES))
    per_response = (
        select(
            Response.beneficiary_id.label("person"),
            func.count().label("topics"),
            func.sum(case((Answer.value.in_(procedures), 1), else_=0)).label("procedures"),
        )
        .join(Answer, Answer.response_id == Response.id)
        .where(*response_conditions(filters), *_answered(item, PATH_FORMS))
        .group_by(Response.id, Response.beneficiary_id)
        .subquery()
    )
    only = select(func.count(distinct(per_response.c.person))).where(
        per_response.c.topics == 1, per_response.c.procedures == 1
    )
    base = _people(db, filters, *_answered(item, PATH_FORMS))
    return int(db.scalar(only) or 0), base


def _pairs(db: Session, filters: EvaluationFilters) -> tuple[int, int]:
    """(people with a 'before' in scope and their 'after' submitted, people with a 'before')."""
    after = aliased(Response)
    has_after = (
        select(after.id)
        .where(
            after.beneficiary_id == Response.beneficiary_id,
            after.form == FormKind.AFTER.value,
            after.status == Status.SUBMITTED.value,
        )
        .exists()
    )
    befores = select(func.count(distinct(Response.beneficiary_id))).where(
        *response_conditions(filters), Response.form == FormKind.BEFORE.value
    )
    completed = befores.where(has_after)
    return int(db.scalar(completed) or 0), int(db.scalar(befores) or 0)


def _paper(db: Session, filters: EvaluationFilters, people: int) -> tuple[int, int]:
    query = select(func.count(distinct(Response.beneficiary_id))).where(
        *response_conditions(filters), Response.channel == Channel.PAPER.value
    )
    return int(db.scalar(query) or 0), people


def counts(
    db: Session, definition: Definition, filters: EvaluationFilters, people: int
) -> dict[str, tuple[int, int] | None]:
    """(count, base) of every share figure; None where the questionnaire lacks the item."""
    item = definition.item_with_role
    return {
        "pairs": _pairs(db, filters),
        "aged_60_plus": _tagged(db, filters, item(Role.AGE), [Tag.SENIOR], PROFILE_FORMS),
        "women": _tagged(db, filters, item(Role.GENDER), [Tag.FEMININE], PROFILE_FORMS),
        "below_bac": _tagged(
            db, filters, item(Role.DIPLOMA), [Tag.BELOW_BACCALAUREATE], PROFILE_FORMS
        ),
        "internet_at_home": _tagged(
            db, filters, item(Role.INTERNET_HOME), [Tag.YES], PROFILE_FORMS
        ),
        "switch_device": _switch_before(
            db, filters, definition.item_with_indicator(Indicator.SWITCH_DEVICE)
        ),
        "procedures_among_topics": _tagged(
            db, filters, item(Role.TOPICS), [Tag.PROCEDURES], PATH_FORMS
        ),
        "procedures_only_topic": _only_topic(db, filters, item(Role.TOPICS)),
        "new_things": _tagged(db, filters, item(Role.NEW_THINGS), [Tag.YES], PATH_FORMS),
        "progress": _progress(db, filters, item(Role.PROGRESS)),
        "paper": _paper(db, filters, people),
    }


def _progress(db: Session, filters: EvaluationFilters, item: Item | None) -> tuple[int, int] | None:
    """People who felt some progress, among those who said yes or no (tags)."""
    if item is None:
        return None
    yes, no = item.tagged(Tag.PROGRESS_YES), item.tagged(Tag.PROGRESS_NO)
    where = [_forms(PATH_FORMS), Answer.variable == item.code]
    base = _people(db, filters, *where, Answer.value.in_([*yes, *no]))
    return _people(db, filters, *where, Answer.value.in_(yes)), base


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
) -> Headline:
    """Every headline figure, protected; the caller has checked that k people are in scope."""
    references = references or load_references()
    people = count_people(db, filters)
    found = counts(db, definition, filters, people)
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
