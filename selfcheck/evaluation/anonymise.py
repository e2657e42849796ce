"""k-anonymity of the quasi-identifiers of an export: generalise, then suppress.

Quasi-identifiers (QI) of a person: structure (and so department, region), age band, gender,
diploma, status and area (urban/periurban/rural). Direct identifiers (beneficiary code,
response ids, staff) never leave; the person is named by `pseudonym`, an HMAC of their id
under a key drawn for one export and thrown away (linked inside one export, not across).

The rule (documented in docs/evaluation.md and in each export's report):
1. Count people per raw QI combination in SQL (`profile_counts`): bounded by the number of
   combinations, not the number of rows.
2. Try the generalisation levels of `LEVELS` in order (geography: structure, then
   department, then region, then national; age: 7 bands, then 3 broad bands, then none) and
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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from selfcheck.evaluation.regions import region_of
from selfcheck.evaluation.scope import EvaluationFilters, response_conditions
from selfcheck.platform.models import Answer, Response, Structure
from selfcheck.questionnaire.model import NO_ANSWER, FormKind

# Items whose answers are quasi-identifiers, in the order of the exported columns.
QI_ITEMS = ("AGE", "GENDER", "DIPLOMA", "STATUS", "AREA")
# The forms that describe the person (the 'after' form does not ask again).
PROFILE_FORMS = (FormKind.BEFORE.value, FormKind.RETRO.value)
MAX_SUPPRESSED_SHARE = 0.05

# Broad age bands: code -> the definition's AGE option codes it merges.
BROAD_AGE = {
    "moins_25": ("moins_de_douze", "douze_dix_huit", "dix_huit_vingt_quatre"),
    "25_59": ("vingt_cinq_trente_neuf", "quarante_cinquante_neuf"),
    "60_plus": ("soixante_soixante_neuf", "soixante_dix_plus"),
}
_AGE_TO_BROAD = {age: broad for broad, ages in BROAD_AGE.items() for age in ages}

GEOGRAPHY = ("structure", "department", "region", "national")
AGE_LEVELS = ("bands", "broad_bands", "removed")
# (geography level, age level), least information lost first.
LEVELS: tuple[tuple[int, int], ...] = (
    (0, 0),
    (0, 1),
    (1, 0),
    (1, 1),
    (2, 1),
    (3, 1),
    (3, 2),
)


@dataclass(frozen=True)
class Profile:
    """The raw quasi-identifiers of one person (as stored, before generalisation)."""

    structure_id: int | None
    age: str | None = None
    gender: str | None = None
    diploma: str | None = None
    status: str | None = None
    area: str | None = None


@dataclass(frozen=True)
class Released:
    """The quasi-identifiers as exported (None = missing)."""

    structure: str | None
    department: str | None
    region: str | None
    age: str | None
    gender: str | None
    diploma: str | None
    status: str | None
    area: str | None

    def blanked(self) -> Released:
        return Released(self.structure, self.department, self.region, *(None,) * 5)


@dataclass
class Plan:
    """What to do with each raw profile: its released QIs, or None (left out)."""

    k: int
    geography: str
    age: str
    decisions: dict[Profile, Released | None]
    people: int
    values_suppressed: int
    people_suppressed: int
    group_sizes: Counter[Released] = field(default_factory=Counter)

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
            "quasi_identifiers": [
                "structure",
                "department",
                "region",
                "age_band",
                "gender",
                "diploma",
                "status",
                "area",
            ],
        }


def new_key() -> bytes:
    return secrets.token_bytes(32)


def pseudonym(key: bytes, beneficiary_id: int) -> str:
    """Stable inside one export (same key), unlinkable across exports (fresh key each time)."""
    return hmac.new(key, str(beneficiary_id).encode(), hashlib.sha256).hexdigest()[:16]


def profile_counts(db: Session, filters: EvaluationFilters) -> Counter[Profile]:
    """People per raw QI combination, counted in SQL (one row per combination comes back)."""
    qi_columns = [
        func.max(
            case(
                (
                    and_(
                        Answer.variable == item,
                        Response.form.in_(PROFILE_FORMS),
                        Answer.value != NO_ANSWER,
                    ),
                    Answer.value,
                ),
            )
        ).label(item.lower())
        for item in QI_ITEMS
    ]
    people = (
        select(func.max(Response.structure_id).label("structure_id"), *qi_columns)
        .select_from(Response)
        .outerjoin(Answer, and_(Answer.response_id == Response.id, Answer.variable.in_(QI_ITEMS)))
        .where(*response_conditions(filters))
        .group_by(Response.beneficiary_id)
        .subquery()
    )
    keys = [people.c.structure_id, *(people.c[item.lower()] for item in QI_ITEMS)]
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
    profile: Profile, level: tuple[int, int], places: Mapping[int, tuple[str, str]]
) -> Released:
    geography, age_level = level
    slug, department = places.get(profile.structure_id or -1, (None, None))
    region = region_of(department)
    age = profile.age
    if age_level == 1:
        age = _AGE_TO_BROAD.get(age) if age else None
    elif age_level == 2:
        age = None
    return Released(
        structure=slug if geography < 1 else None,
        department=department if geography < 2 else None,
        region=region if geography < 3 else None,
        age=age,
        gender=profile.gender,
        diploma=profile.diploma,
        status=profile.status,
        area=profile.area,
    )


def plan(counts: Mapping[Profile, int], k: int, places: Mapping[int, tuple[str, str]]) -> Plan:
    """Choose the generalisation level, then suppress values, then people (see module doc)."""
    total = sum(counts.values())
    level = LEVELS[-1]
    for candidate in LEVELS:
        groups = _group(counts, {p: generalise(p, candidate, places) for p in counts})
        small = sum(n for n in groups.values() if n < k)
        if small <= MAX_SUPPRESSED_SHARE * total:
            level = candidate
            break
    released: dict[Profile, Released | None] = {p: generalise(p, level, places) for p in counts}
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
        geography=GEOGRAPHY[level[0]],
        age=AGE_LEVELS[level[1]],
        decisions=released,
        people=total,
        values_suppressed=values_suppressed,
        people_suppressed=people_suppressed,
        group_sizes=final,
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
