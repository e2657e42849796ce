"""People as the export plan sees them (`anonymise.qi_record`), drawn like the demo population.

No database: a few hundred or ten thousand raw quasi-identifier records in a second, with the
item bank's own option codes (taken from the items, by position), so that the real plan
(`anonymise.plan_records`: the item bank's ladders, weights and suppression limit) can be
checked on several seeds and at 10,000 people, which the demo through the real services
(about 40 s per 300 people) cannot afford. Shares follow the reference survey as the demo
draws it (`demo.Marginals`: 75 % aged 60+, 70 % retired, 72 % women, 59 % below the
baccalauréat, 43 % urban; 21 % on paper) and the demo's paths (before and after 55 %,
before only 15 %, retrospective 30 %), over 3 structures of one department and six months.
The area is asked on the "before" form only, as in the item bank.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from selfcheck.evaluation import anonymise
from selfcheck.evaluation.anonymity import MASKED
from selfcheck.questionnaire.model import NO_ANSWER, Definition, FormKind, Item
from selfcheck.questionnaire.model import Role as ItemRole

STRUCTURES = {"accueil-nord": "44", "espace-sud": "44", "accueil-est": "44"}
MONTHS = [f"2026-{m:02d}" for m in range(6, 12)]
VERSION = "1.3.0"
# Weights by option position in the item bank (see the module doc).
AGE = (0.0, 0.01, 0.05, 0.10, 0.09, 0.35, 0.40)
SENIOR_FROM = 5  # options from this position on are 60 or more
GENDER = (0.72, 0.27, 0.01, 0.0)
DIPLOMA = (0.15, 0.17, 0.27, 0.20, 0.21, 0.0)
STATUS_SENIOR = (0.90, 0.03, 0.03, 0.0, 0.04)
STATUS_YOUNGER = (0.10, 0.35, 0.30, 0.15, 0.10)
AREA = (0.43, 0.32, 0.25)
PATHS = {"pre_post": 0.55, "before_only": 0.15, "retro": 0.30}
PAPER = 0.21


def _item(definition: Definition, role: ItemRole) -> Item:
    item = definition.item_with_role(role)
    assert item is not None and item.quasi_identifier is not None, role
    return item


def _options(definition: Definition, role: ItemRole) -> list[str]:
    return [option.code for option in _item(definition, role).options]


def population(definition: Definition, people: int, seed: int) -> list[dict[str, Any]]:
    """`people` raw QI records (the plan's columns), from a seeded generator."""
    rng = random.Random(seed)
    ages = _options(definition, ItemRole.AGE)
    genders = _options(definition, ItemRole.GENDER)
    diplomas = _options(definition, ItemRole.DIPLOMA)
    statuses = _options(definition, ItemRole.STATUS)
    areas = _options(definition, ItemRole.AREA)
    roles = (ItemRole.AGE, ItemRole.GENDER, ItemRole.DIPLOMA, ItemRole.STATUS, ItemRole.AREA)
    column = {role: _item(definition, role).quasi_identifier.column for role in roles}  # type: ignore[union-attr]
    places = list(STRUCTURES)
    records = []
    for _ in range(people):
        path = rng.choices(list(PATHS), list(PATHS.values()))[0]
        age = rng.choices(range(len(ages)), AGE)[0]
        status = STATUS_SENIOR if age >= SENIOR_FROM else STATUS_YOUNGER
        paper = rng.random() < PAPER
        start = rng.randrange(len(MONTHS) - 1)
        forms: dict[FormKind, str] = {}
        if path == "retro":
            forms[FormKind.RETRO] = MONTHS[start]
        else:
            forms[FormKind.BEFORE] = MONTHS[start]
            if path == "pre_post":
                forms[FormKind.AFTER] = MONTHS[min(len(MONTHS) - 1, start + rng.randint(1, 4))]
        record: dict[str, Any] = {
            anonymise.PLACE: rng.choice(places),
            anonymise.FORMS_PRESENT: anonymise.forms_pattern(f.value for f in forms),
            column[ItemRole.AGE]: ages[age],
            column[ItemRole.GENDER]: rng.choices(genders, GENDER)[0],
            column[ItemRole.DIPLOMA]: rng.choices(diplomas, DIPLOMA)[0],
            column[ItemRole.STATUS]: rng.choices(statuses, status)[0],
            column[ItemRole.AREA]: (
                rng.choices(areas, AREA)[0] if FormKind.BEFORE in forms else None
            ),
        }
        for form in anonymise.FORMS:
            month = forms.get(form)
            record[anonymise.detail_column(form, "month")] = month
            record[anonymise.detail_column(form, "channel")] = (
                None if month is None else ("paper" if paper else "online")
            )
            record[anonymise.detail_column(form, "wording")] = None if month is None else "standard"
            record[anonymise.detail_column(form, "version")] = None if month is None else VERSION
        records.append(record)
    return records


def largest_shifts(
    definition: Definition, plan: Any, records: Sequence[Mapping[str, Any]]
) -> dict[str, float]:
    """Per demographic: the largest gap, in points, between a category's share in the
    release and among EVERYONE in scope (people left out included), at the level released."""
    specs = {s.column: s for s in anonymise.engine_columns(definition, STRUCTURES)}
    shifts = {}
    for column in plan.demographic_columns:
        spec, level = specs[column], plan.release.levels[column]
        assert level <= len(spec.ladder), f"{column} masked for everyone"
        true = Counter(
            spec.apply(level, r[column]) for r in records if r[column] not in (None, NO_ANSWER)
        )
        out = Counter(
            v[column]
            for v in plan.decisions.values()
            if v[column] is not None and v[column] is not MASKED and v[column] != NO_ANSWER
        )
        true_total, out_total = sum(true.values()), sum(out.values())
        shifts[column] = max(
            abs(100 * out[c] / out_total - 100 * true[c] / true_total) for c in true
        )
    return shifts
