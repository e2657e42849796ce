"""k-anonymity of the quasi-identifiers of an export: generalise, then suppress.

Quasi-identifiers (QI) of a person: structure (and so department, region), and the items the
definition marks `quasi_identifier:` (age band, gender, diploma, status, area today).
Direct identifiers (beneficiary code, response ids, staff) never leave; the person is named
by `pseudonym`, an HMAC of their id under a key drawn for one export and thrown away (linked
inside one export, not across).

The rule (documented in docs/evaluation.md and in each export's report):
1. Count people per raw QI combination in SQL (`profile_counts`): bounded by the number of
   combinations, not the number of rows.
2. Try the generalisation steps of the definition's `disclosure.steps` in order (geography:
   structure, then department, then region, then national; each QI item at the step of its
   own ladder of that name, e.g. age: 7 bands, then 3 broad bands, then none) and
   keep the first where at most `MAX_SUPPRESSED_SHARE` of the people sit in a group smaller
   than k (the last level otherwise).
3. People still in a group smaller than k lose their personal QI values (age, gender,
   diploma, status, area become missing); people still in a group smaller than k after that
   are left out of the export. Every exported QI combination then holds at least k people.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from selfcheck.evaluation.regions import region_of
from selfcheck.evaluation.scope import EvaluationFilters, response_conditions
from selfcheck.platform.models import Answer, Response, Structure
from selfcheck.questionnaire.model import (
    NO_ANSWER,
    Definition,
    DisclosureStep,
    FormKind,
    Geography,
    Item,
    QuasiIdentifier,
)

GEOGRAPHY_ORDER = tuple(Geography)

# The forms that describe the person (the 'after' form does not ask again).
PROFILE_FORMS = (FormKind.BEFORE.value, FormKind.RETRO.value)
MAX_SUPPRESSED_SHARE = 0.05


@dataclass(frozen=True, init=False)
class Profile:
    """The raw quasi-identifiers of one person (as stored, before generalisation).

    `values` follows `Definition.quasi_identifiers()`; missing trailing values are None.
    """

    structure_id: int | None
    values: tuple[str | None, ...]

    def __init__(self, structure_id: int | None, *values: str | None) -> None:
        object.__setattr__(self, "structure_id", structure_id)
        object.__setattr__(self, "values", tuple(values))

    def value(self, index: int) -> str | None:
        return self.values[index] if index < len(self.values) else None


@dataclass(frozen=True)
class Released:
    """The quasi-identifiers as exported (None = missing), `values` as in `Profile`."""

    structure: str | None
    department: str | None
    region: str | None
    values: tuple[str | None, ...]

    def blanked(self) -> Released:
        return Released(self.structure, self.department, self.region, (None,) * len(self.values))


@dataclass
class Plan:
    """What to do with each raw profile: its released QIs, or None (left out)."""

    k: int
    geography: str
    # The step of the quasi-identifier ladders released (bands, broad_bands, removed).
    age: str
    decisions: dict[Profile, Released | None]
    people: int
    values_suppressed: int
    people_suppressed: int
    group_sizes: Counter[Released] = field(default_factory=Counter)
    quasi_identifiers: tuple[str, ...] = ()

    def release(self, profile: Profile) -> Released | None:
        # A profile the SQL count did not see (should not happen) is left out: safe side.
        return self.decisions.get(profile)

    @property
    def people_exported(self) -> int:
        return self.people - self.people_suppressed

    def report(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "people_in_scope": self.people,
            "geography": self.geography,
            "age": self.age,
            "people_with_values_suppressed": self.values_suppressed,
            "people_left_out": self.people_suppressed,
            "people_exported": self.people_exported,
            "smallest_group": min(self.group_sizes.values(), default=0),
            "quasi_identifiers": ["structure", "department", "region", *self.quasi_identifiers],
        }


def qi_items(definition: Definition) -> tuple[Item, ...]:
    return definition.quasi_identifiers()


def qi_columns(definition: Definition) -> tuple[str, ...]:
    """The exported column of each quasi-identifier item (age_band, gender, ...)."""
    return tuple(
        item.quasi_identifier.column
        for item in definition.quasi_identifiers()
        if item.quasi_identifier is not None
    )


def steps(definition: Definition) -> tuple[DisclosureStep, ...]:
    """The generalisation steps to try, least information lost first (never empty)."""
    declared = definition.disclosure.steps
    if declared:
        return declared
    return tuple(DisclosureStep(g, "") for g in definition.disclosure.geography)


def new_key() -> bytes:
    return secrets.token_bytes(32)


def pseudonym(key: bytes, beneficiary_id: int) -> str:
    """Stable inside one export (same key), unlinkable across exports (fresh key each time)."""
    return hmac.new(key, str(beneficiary_id).encode(), hashlib.sha256).hexdigest()[:16]


def profile_counts(
    db: Session, filters: EvaluationFilters, definition: Definition
) -> Counter[Profile]:
    """People per raw QI combination, counted in SQL (one row per combination comes back)."""
    codes = [item.code for item in definition.quasi_identifiers()]
    labels = [f"qi_{index}" for index in range(len(codes))]
    qi_columns = [
        func.max(
            case(
                (
                    and_(
                        Answer.variable == code,
                        Response.form.in_(PROFILE_FORMS),
                        Answer.value != NO_ANSWER,
                    ),
                    Answer.value,
                ),
            )
        ).label(label)
        for code, label in zip(codes, labels, strict=True)
    ]
    people = (
        select(func.max(Response.structure_id).label("structure_id"), *qi_columns)
        .select_from(Response)
        .outerjoin(Answer, and_(Answer.response_id == Response.id, Answer.variable.in_(codes)))
        .where(*response_conditions(filters))
        .group_by(Response.beneficiary_id)
        .subquery()
    )
    keys = [people.c.structure_id, *(people.c[label] for label in labels)]
    rows = db.execute(select(*keys, func.count()).group_by(*keys))
    return Counter({Profile(*row[:-1]): int(row[-1]) for row in rows})


def structure_places(db: Session, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """Structure id -> (slug, department), for the structures in scope."""
    rows = db.execute(
        select(Structure.id, Structure.slug, Structure.department).where(
            Structure.id.in_(list(ids))
        )
    )
    return {row.id: (row.slug, row.department) for row in rows}


def generalise(
    profile: Profile,
    step: DisclosureStep,
    places: Mapping[int, tuple[str, str]],
    ladders: Sequence[QuasiIdentifier | None],
) -> Released:
    """The profile as released at `step` (each QI at its ladder's step of that name)."""
    geography = GEOGRAPHY_ORDER.index(step.geography)
    slug, department = places.get(profile.structure_id or -1, (None, None))
    region = region_of(department)
    values = tuple(
        ladder.step(step.personal).release(profile.value(index))
        if ladder is not None
        else profile.value(index)
        for index, ladder in enumerate(ladders)
    )
    return Released(
        structure=slug if geography < 1 else None,
        department=department if geography < 2 else None,
        region=region if geography < 3 else None,
        values=values,
    )


def plan(
    counts: Mapping[Profile, int],
    k: int,
    places: Mapping[int, tuple[str, str]],
    definition: Definition,
) -> Plan:
    """Choose the generalisation level, then suppress values, then people (see module doc)."""
    ladders = [item.quasi_identifier for item in definition.quasi_identifiers()]
    tried = steps(definition)
    total = sum(counts.values())
    level = tried[-1]
    for candidate in tried:
        groups = _group(counts, {p: generalise(p, candidate, places, ladders) for p in counts})
        small = sum(n for n in groups.values() if n < k)
        if small <= MAX_SUPPRESSED_SHARE * total:
            level = candidate
            break
    released: dict[Profile, Released | None] = {
        p: generalise(p, level, places, ladders) for p in counts
    }
    groups = _group(counts, released)
    values_suppressed = 0
    for profile, values in released.items():
        if values is not None and groups[values] < k:
            released[profile] = values.blanked()
            values_suppressed += counts[profile]
    groups = _group(counts, released)
    people_suppressed = 0
    for profile, values in released.items():
        if values is not None and groups[values] < k:
            released[profile] = None
            people_suppressed += counts[profile]
            values_suppressed -= counts[profile]
    final = _group(counts, released)
    return Plan(
        k=k,
        geography=level.geography.value,
        age=level.personal,
        decisions=released,
        people=total,
        values_suppressed=values_suppressed,
        people_suppressed=people_suppressed,
        group_sizes=final,
        quasi_identifiers=qi_columns(definition),
    )


def _group(
    counts: Mapping[Profile, int], released: Mapping[Profile, Released | None]
) -> Counter[Released]:
    groups: Counter[Released] = Counter()
    for profile, n in counts.items():
        values = released[profile]
        if values is not None:
            groups[values] += n
    return groups
