"""The four profiles of the reference survey (Asdo études for ANCT, 2023), by a written rule.

The survey's typology came from a statistical clustering; ours is a deterministic rule on a
person's own answers, so that anyone can recompute it from an export and the same person is
always classified the same way. The rule is written once, as data (`rules`), and used both
in SQL (the dashboard counts profiles with one GROUP BY) and in Python (`classify`, for tests
and for anyone reading answers one person at a time). docs/evaluation.md ("The typology
rule") documents it in words, one paragraph per profile, and how it was calibrated.

The facts (`sources`) are read from the items with these roles, in the person's 'before' or
retrospective form (the profile), and in the 'after' or retrospective form (the path);
which options count comes from their tags in the definition, so a new option only needs its
tag there:
- `age`: 60 and over is any option tagged `senior`, under 60 any other option;
- `status`: `seeking_integration`, `employed`;
- `diploma`: `below_baccalaureate`;
- `prescribed`: `referred_by_service` (a public or social service advised to come);
- `comfort_before`: the comfort item of the 'before' form, or its "before" answer in the
  retrospective form (`ease_low`, `ease_fair`, `ease_high`);
- `basics_before`: `HELP` when a task of the very basics (items with role `basic_task`:
  switch a device on, connect to the internet) was answered below "on my own" in the 'before'
  form or in the retrospective form's "before" answers, `ALONE` when they were all done on
  one's own, unknown when none was answered (or only "does not concern me");
- `modality` (the intensity of the accompaniment): `one_off`, a quick one-off help.

The first rule that matches gives the profile; a person matching none (a missing age, or a
missing comfort for a person of 60 or over) is "not classified" and counted as such.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, case, false, or_

from selfcheck.questionnaire.model import NO_ANSWER, PRE_SUFFIX, Definition, FormKind, Role, Tag

# A task answered below this rank of the autonomy ladder was not done on one's own.
ALONE_RANK = 3
# The values of `basics_before`: a basic task needed help before; else, all were done alone.
# ("help" > "alone": the greatest wins, in SQL's MAX as in Python.)
HELP = "help"
ALONE = "alone"

# The forms a person's profile is read from (one of them is needed to be counted at all).
PROFILE_FORMS = (FormKind.BEFORE, FormKind.RETRO)


@dataclass(frozen=True)
class Source:
    """Where one fact is read: these (form, variable) answers.

    `levels` empty: the fact is the answer itself. Otherwise the fact is the greatest level
    (name, answers that give it) any of the answers reaches, and unknown when none does.
    """

    fact: str
    answers: tuple[tuple[str, str], ...]
    levels: tuple[tuple[str, tuple[str, ...]], ...] = ()


@lru_cache(maxsize=8)
def sources(definition: Definition) -> tuple[Source, ...]:
    """The facts of the rule and where each is read, from the definition's roles."""

    def code(role: Role) -> str:
        item = definition.item_with_role(role)
        return item.code if item is not None else ""

    def profile_item(fact: str, role: Role) -> Source:
        return Source(fact, tuple((form.value, code(role)) for form in PROFILE_FORMS))

    comfort = code(Role.COMFORT)
    basics = definition.items_with_role(Role.BASIC_TASK)

    def ranked(keep: Callable[[int], bool]) -> tuple[str, ...]:
        """The codes of the basic tasks' options whose rank on the ladder is kept."""
        found = {
            option.code
            for item in basics
            for option in item.options
            if option.rank is not None and keep(option.rank)
        }
        return tuple(sorted(found))

    modality = code(Role.MODALITY)
    return (
        profile_item("age", Role.AGE),
        profile_item("status", Role.STATUS),
        profile_item("diploma", Role.DIPLOMA),
        profile_item("prescribed", Role.PRESCRIBER),
        Source(
            "comfort_before",
            ((FormKind.BEFORE.value, comfort), (FormKind.RETRO.value, comfort + PRE_SUFFIX)),
        ),
        Source(
            "basics_before",
            tuple(
                (form, variable)
                for item in basics
                for form, variable in (
                    (FormKind.BEFORE.value, item.code),
                    (FormKind.RETRO.value, item.code + PRE_SUFFIX),
                )
            ),
            (
                (HELP, ranked(lambda rank: rank < ALONE_RANK)),
                (ALONE, ranked(lambda rank: rank >= ALONE_RANK)),
            ),
        ),
        Source(
            "modality",
            ((FormKind.AFTER.value, modality), (FormKind.RETRO.value, modality)),
        ),
    )


def person_facts(
    answers: Iterable[tuple[str, str, str]], definition: Definition
) -> dict[str, str] | None:
    """One person's facts from their (form, variable, value) answers, as the SQL reads them.

    None when the person has no answer in a profile form (they are not counted, as in SQL).
    Where a fact could be read twice, the greatest value wins (SQL's MAX). Python compares
    code points, a database its collation: they agree on the levels ("help" > "alone") and
    on every single answer; a person with two different answers to one profile item (a
    'before' and a retrospective form) could in principle be read differently.
    """
    where: dict[tuple[str, str], list[Source]] = {}
    for source in sources(definition):
        for key in source.answers:
            where.setdefault(key, []).append(source)
    profile_forms = {form.value for form in PROFILE_FORMS}
    counted = False
    facts: dict[str, str] = {}
    for form, variable, value in answers:
        if value == NO_ANSWER:
            continue
        for source in where.get((form, variable), ()):
            counted = counted or form in profile_forms
            if source.levels:
                for level, values in source.levels:
                    if value in values and level > facts.get(source.fact, ""):
                        facts[source.fact] = level
            elif value != NO_ANSWER and value > facts.get(source.fact, ""):
                facts[source.fact] = value
    return facts if counted else None


class Profile(enum.StrEnum):
    BEGINNER_SENIORS = "beginner_seniors"
    INITIATED_SENIORS = "initiated_seniors"
    IMPROVEMENT_PATH = "improvement_path"
    INTEGRATION_PATH = "integration_path"
    NOT_CLASSIFIED = "not_classified"


PROFILE_LABELS: Mapping[Profile, object] = {
    Profile.BEGINNER_SENIORS: _l("Seniors débutants"),
    Profile.INITIATED_SENIORS: _l("Seniors initiés"),
    Profile.IMPROVEMENT_PATH: _l("Parcours de perfectionnement"),
    Profile.INTEGRATION_PATH: _l("Parcours d'insertion"),
    Profile.NOT_CLASSIFIED: _l("Non classé (réponse manquante)"),
}
# Shares of respondents in the reference survey, for comparison on the dashboard.
REFERENCE_SHARES: Mapping[Profile, float] = {
    Profile.BEGINNER_SENIORS: 0.26,
    Profile.INITIATED_SENIORS: 0.35,
    Profile.IMPROVEMENT_PATH: 0.26,
    Profile.INTEGRATION_PATH: 0.13,
}


# --- a tiny condition language: one definition, two evaluators (SQL and Python) -------------


@dataclass(frozen=True)
class In:
    """The fact has one of these values."""

    fact: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Unknown:
    """The fact is missing."""

    fact: str


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Condition, ...]


Condition = In | Unknown | AllOf | AnyOf


@dataclass(frozen=True)
class Rule:
    profile: Profile
    when: Condition


@lru_cache(maxsize=8)
def rules(definition: Definition) -> tuple[Rule, ...]:
    """The rule, with the option codes the definition's tags give (in order; first match)."""

    def tagged(role: Role, *tags: Tag) -> tuple[str, ...]:
        item = definition.item_with_role(role)
        if item is None:
            return ()
        return tuple(option.code for option in item.options if option.tags & set(tags))

    age = definition.item_with_role(Role.AGE)
    senior = In("age", tagged(Role.AGE, Tag.SENIOR))
    under_60 = In(
        "age", tuple(c for c in (age.option_codes if age else ()) if c not in senior.values)
    )
    at_ease = In("comfort_before", tagged(Role.COMFORT, Tag.EASE_FAIR, Tag.EASE_HIGH))
    not_at_ease = In("comfort_before", tagged(Role.COMFORT, Tag.EASE_LOW))
    needed_help = In("basics_before", (HELP,))
    below_bac = In("diploma", tagged(Role.DIPLOMA, Tag.BELOW_BACCALAUREATE))
    return (
        # Under 60, looking for work or in training, or sent by a service.
        Rule(
            Profile.INTEGRATION_PATH,
            AllOf(
                (
                    under_60,
                    AnyOf(
                        (
                            In("status", tagged(Role.STATUS, Tag.SEEKING_INTEGRATION)),
                            In("prescribed", tagged(Role.PRESCRIBER, Tag.REFERRED_BY_SERVICE)),
                        )
                    ),
                )
            ),
        ),
        # Everyone else under 60; 60 and over, working or already at ease before.
        Rule(
            Profile.IMPROVEMENT_PATH,
            AnyOf(
                (
                    under_60,
                    AllOf(
                        (senior, AnyOf((In("status", tagged(Role.STATUS, Tag.EMPLOYED)), at_ease)))
                    ),
                )
            ),
        ),
        # 60 and over, not at ease, and the very basics needed help before (when the basic
        # tasks were not answered: below the baccalauréat).
        Rule(
            Profile.BEGINNER_SENIORS,
            AllOf(
                (
                    senior,
                    AnyOf(
                        (
                            needed_help,
                            AllOf((Unknown("basics_before"), not_at_ease, below_bac)),
                        )
                    ),
                )
            ),
        ),
        # 60 and over, not at ease but managing the basics, who came for a quick one-off help.
        Rule(
            Profile.IMPROVEMENT_PATH,
            AllOf((senior, In("modality", tagged(Role.MODALITY, Tag.ONE_OFF)))),
        ),
        # 60 and over, not at ease, managing the basics, on a path of several sessions.
        Rule(Profile.INITIATED_SENIORS, AllOf((senior, not_at_ease))),
    )


def _holds(condition: Condition, facts: Mapping[str, str | None]) -> bool:
    if isinstance(condition, In):
        return facts.get(condition.fact) in condition.values
    if isinstance(condition, Unknown):
        return facts.get(condition.fact) is None
    if isinstance(condition, AllOf):
        return all(_holds(part, facts) for part in condition.parts)
    return any(_holds(part, facts) for part in condition.parts)


def classify(facts: Mapping[str, str | None], definition: Definition) -> Profile:
    """The profile of one person from their facts (see the module docstring)."""
    for rule in rules(definition):
        if _holds(rule.when, facts):
            return rule.profile
    return Profile.NOT_CLASSIFIED


def _sql(condition: Condition, columns: Mapping[str, ColumnElement[str]]) -> ColumnElement[bool]:
    if isinstance(condition, In):
        if not condition.values:
            return false()
        return columns[condition.fact].in_(condition.values)
    if isinstance(condition, Unknown):
        return columns[condition.fact].is_(None)
    parts = [_sql(part, columns) for part in condition.parts]
    if not parts:
        return false()
    return and_(*parts) if isinstance(condition, AllOf) else or_(*parts)


def profile_case(
    columns: Mapping[str, ColumnElement[str]], definition: Definition
) -> ColumnElement[str]:
    """The same rule as `classify`, as a SQL CASE over per-person fact columns."""
    return case(
        *((_sql(rule.when, columns), rule.profile.value) for rule in rules(definition)),
        else_=Profile.NOT_CLASSIFIED.value,
    )
