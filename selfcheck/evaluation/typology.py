"""The four profiles of the reference survey (Asdo études for ANCT, 2023), by a written rule.

The survey's typology came from a statistical clustering; ours is a deterministic rule on a
person's own answers, so that anyone can recompute it from an export and the same person is
always classified the same way. The rule is written once, as data (`RULES`), and used both
in SQL (the dashboard counts profiles with one GROUP BY) and in Python (`classify`, for tests
and for anyone reading answers one person at a time). docs/evaluation.md ("The typology
rule") documents it in words.

The facts used, from the person's 'before' form or retrospective form, are the answers of
the items with these roles (`FACT_ROLES`); which options count comes from their tags in the
definition, so a new option only needs its tag there:
- `age`: the age item; 60 and over is any option tagged `senior`, under 60 any other option.
- `status`: the status item (`seeking_integration`, `employed`).
- `prescribed`: who advised to come (`referred_by_service`: a public or social service).
- `comfort_before`: the comfort item of the 'before' form, or its "before" answer in the
  retrospective form (`ease_low`, `ease_fair`, `ease_high`).

The first rule that matches gives the profile; a person matching none (a missing age, status
or comfort) is "not classified" and counted as such.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, case, false, or_

from selfcheck.questionnaire.model import Definition, Role, Tag

# Each fact and the role of the item it is read from.
FACT_ROLES: Mapping[str, Role] = {
    "age": Role.AGE,
    "status": Role.STATUS,
    "prescribed": Role.PRESCRIBER,
    "comfort_before": Role.COMFORT,
}
FACTS = tuple(FACT_ROLES)


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
class AllOf:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Condition, ...]


Condition = In | AllOf | AnyOf


@dataclass(frozen=True)
class Rule:
    profile: Profile
    when: Condition


@lru_cache(maxsize=8)
def rules(definition: Definition) -> tuple[Rule, ...]:
    """The rule, with the option codes the definition's tags give (in order; first match)."""

    def tagged(fact: str, *tags: Tag) -> tuple[str, ...]:
        item = definition.item_with_role(FACT_ROLES[fact])
        if item is None:
            return ()
        return tuple(option.code for option in item.options if option.tags & set(tags))

    age = definition.item_with_role(Role.AGE)
    sixty_plus = tagged("age", Tag.SENIOR)
    under_60 = tuple(c for c in (age.option_codes if age else ()) if c not in sixty_plus)
    return (
        # Under 60, looking for work or in training, or sent by a service.
        Rule(
            Profile.INTEGRATION_PATH,
            AllOf(
                (
                    In("age", under_60),
                    AnyOf(
                        (
                            In("status", tagged("status", Tag.SEEKING_INTEGRATION)),
                            In("prescribed", tagged("prescribed", Tag.REFERRED_BY_SERVICE)),
                        )
                    ),
                )
            ),
        ),
        # Everyone else under 60, and people of 60+ who work or were already very much at ease.
        Rule(
            Profile.IMPROVEMENT_PATH,
            AnyOf(
                (
                    In("age", under_60),
                    AllOf(
                        (
                            In("age", sixty_plus),
                            AnyOf(
                                (
                                    In("status", tagged("status", Tag.EMPLOYED)),
                                    In("comfort_before", tagged("comfort_before", Tag.EASE_HIGH)),
                                )
                            ),
                        )
                    ),
                )
            ),
        ),
        # 60 and over, not (or not very) at ease before.
        Rule(
            Profile.BEGINNER_SENIORS,
            AllOf(
                (
                    In("age", sixty_plus),
                    In("comfort_before", tagged("comfort_before", Tag.EASE_LOW)),
                )
            ),
        ),
        # 60 and over, rather at ease before.
        Rule(
            Profile.INITIATED_SENIORS,
            AllOf(
                (
                    In("age", sixty_plus),
                    In("comfort_before", tagged("comfort_before", Tag.EASE_FAIR)),
                )
            ),
        ),
    )


def _holds(condition: Condition, facts: Mapping[str, str | None]) -> bool:
    if isinstance(condition, In):
        return facts.get(condition.fact) in condition.values
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
