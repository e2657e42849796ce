"""A synthetic population drawn like the reference survey, for the anonymity engine.

Shares (ANCT 2023): 75 % aged 60+, 70 % retired, 72 % women, 59 % below the baccalauréat,
43 % urban; 79 % online and 21 % on paper. Status depends on age (retired people are
mostly 60+), as in the survey. People live in a few structures of one department; each
record also carries the months of its forms, the channel, the wording and the pattern of
forms present: every column of an export that can single someone out. The values are the
engine's own test codes, not the item bank's.
"""

from __future__ import annotations

import random
from typing import Any

from selfcheck.evaluation.anonymity import QuasiIdentifier

DEMOGRAPHICS = ("age", "gender", "diploma", "status", "area")
AGES = {
    "12_17": 0.01,
    "18_24": 0.03,
    "25_39": 0.07,
    "40_59": 0.14,
    "60_69": 0.33,
    "70_plus": 0.42,
}
BROAD_AGE = {
    "12_17": "under_25",
    "18_24": "under_25",
    "25_39": "25_59",
    "40_59": "25_59",
    "60_69": "60_plus",
    "70_plus": "60_plus",
}
STATUS_60_PLUS = {"retired": 0.9, "employed": 0.03, "unemployed": 0.03, "other": 0.04}
STATUS_UNDER_60 = {
    "retired": 0.1,
    "employed": 0.35,
    "unemployed": 0.35,
    "student": 0.1,
    "other": 0.1,
}
GENDERS = {"woman": 0.72, "man": 0.27, "other": 0.01}
DIPLOMAS = {"none": 0.2, "brevet": 0.14, "cap_bep": 0.25, "bac": 0.2, "higher": 0.21}
BELOW_BAC = {"none", "brevet", "cap_bep"}
AREAS = {"urban": 0.43, "periurban": 0.3, "rural": 0.27}
CHANNELS = {"web": 0.77, "paper": 0.21, "phone": 0.02}
WORDINGS = {"standard": 0.85, "easy": 0.15}
FORMS = {"before_only": 0.4, "pair": 0.35, "retro": 0.25}
MISSING = 0.01  # share of "no answer" per demographic question


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def population(
    people: int, seed: int, structures: int = 3, missing: float = MISSING
) -> list[dict[str, Any]]:
    """`people` records from a seeded generator; `missing`: share of no answer per question."""
    rng = random.Random(seed)

    def _maybe(rng: random.Random, weights: dict[str, float]) -> str | None:
        return None if rng.random() < missing else _pick(rng, weights)

    records = []
    for person in range(people):
        age = _maybe(rng, AGES)
        senior = age in {"60_69", "70_plus"} if age else rng.random() < 0.75
        forms = _pick(rng, FORMS)
        first = rng.randint(1, 12)
        records.append(
            {
                "person": person,
                "structure": f"s{rng.choices(range(structures), range(structures, 0, -1))[0]}",
                "department": "29",
                "region": "bretagne",
                "age": age,
                "gender": _maybe(rng, GENDERS),
                "diploma": _maybe(rng, DIPLOMAS),
                "status": _maybe(rng, STATUS_60_PLUS if senior else STATUS_UNDER_60),
                "area": _maybe(rng, AREAS),
                "channel": _pick(rng, CHANNELS),
                "wording": _pick(rng, WORDINGS),
                "first_month": f"2026-{first:02d}",
                "after_month": (
                    f"2026-{min(12, first + rng.randint(1, 4)):02d}" if forms == "pair" else None
                ),
                "forms": forms,
            }
        )
    return records


def quarter(month: str) -> str:
    return f"{month[:4]}-Q{(int(month[5:]) - 1) // 3 + 1}"


def year(month: str) -> str:
    return month[:4]


def quasi_identifiers(focus: dict[str, float] | None = None) -> list[QuasiIdentifier]:
    """Every identifying column, with ladders; demographics weigh more than the rest."""
    weights = dict.fromkeys(DEMOGRAPHICS, 1.0) | (focus or {})
    other = 0.5
    return [
        QuasiIdentifier(
            "structure",
            ({"s0": "29", "s1": "29", "s2": "29", "s3": "29", "s4": "29"},),
            other,
            ("department",),
        ),
        QuasiIdentifier("department", ({"29": "bretagne"},), other, ("region",)),
        QuasiIdentifier("region", (), other),
        QuasiIdentifier("age", (BROAD_AGE,), weights["age"], ("broad",)),
        QuasiIdentifier("gender", (), weights["gender"]),
        QuasiIdentifier(
            "diploma",
            ({d: "below_bac" if d in BELOW_BAC else "bac_or_more" for d in DIPLOMAS},),
            weights["diploma"],
            ("bac",),
        ),
        QuasiIdentifier(
            "status",
            (
                {
                    s: "retired" if s == "retired" else "not_retired"
                    for s in {*STATUS_60_PLUS, *STATUS_UNDER_60}
                },
            ),
            weights["status"],
            ("retired",),
        ),
        QuasiIdentifier(
            "area",
            ({"urban": "urban", "periurban": "not_urban", "rural": "not_urban"},),
            weights["area"],
            ("urban",),
        ),
        QuasiIdentifier("channel", (), weights.get("channel", other)),
        QuasiIdentifier("wording", (), weights.get("wording", other)),
        QuasiIdentifier(
            "first_month", (quarter, year), weights.get("first_month", other), ("quarter", "year")
        ),
        QuasiIdentifier(
            "after_month", (quarter, year), weights.get("after_month", other), ("quarter", "year")
        ),
        QuasiIdentifier("forms", (), weights.get("forms", other)),
    ]
