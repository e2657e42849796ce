"""The faster plan (issue 18, part 4, round 14) releases exactly what the plan released before.

Digests recorded with the code of main at c542661, before the plan was made faster: the raw
quasi-identifier records of drawn people (`anonymise.qi_record`), and the whole plan of
drawn populations (`anonymise.plan_records`: what each person is released as, the order,
the report and its shares). A change of the plan's output is then a change of a digest:
on purpose only, with the new digest and the reason in the commit.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest

from selfcheck.evaluation import anonymise
from selfcheck.questionnaire.model import Definition
from tests.evaluation.plan_population import STRUCTURES, population
from tests.services.evaluation.test_export_speed import _drawn_person

K = 5


def _digest(value: Any) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def _plan_facts(plan: anonymise.Plan) -> Any:
    return (
        plan.order,
        sorted((person, sorted(values.items())) for person, values in plan.decisions.items()),
        sorted(plan.patterns.items()),
        json.dumps(plan.report(), sort_keys=True, default=repr),
        sorted(plan.release.levels.items()),
        plan.left_out_after_check,
    )


def test_qi_records_are_unchanged(definition: Definition) -> None:
    rng = random.Random(14)
    people = [_drawn_person(definition, rng, number) for number in range(60)]
    for index, person in enumerate(people):
        person.structure_id = index % 3 + 1
    places = {1: ("accueil-nord", "44"), 2: ("espace-sud", "44"), 3: ("accueil-est", "35")}
    records = [anonymise.qi_record(person, places, definition) for person in people]
    assert [list(record) for record in records[:1]] == [list(anonymise_columns(definition))]
    assert _digest(records) == "a135c59e08d6f0aa"


def anonymise_columns(definition: Definition) -> list[str]:
    """The plan's columns in the order of `qi_record` (place, forms, items, then per form
    its month, channel, wording and version)."""
    return [
        anonymise.PLACE,
        anonymise.FORMS_PRESENT,
        *(item.quasi_identifier.column for item in definition.quasi_identifiers()),  # type: ignore[union-attr]
        *(
            anonymise.detail_column(form, detail)
            for form in anonymise.FORMS
            for detail in anonymise.DETAILS
        ),
    ]


@pytest.mark.parametrize(
    ("people", "seed", "expected"), [(120, 1, "6c320d473c11502c"), (160, 2, "05ea01af551c84b6")]
)
def test_plans_are_unchanged(definition: Definition, people: int, seed: int, expected: str) -> None:
    records = population(definition, people, seed)
    ids = list(range(1, people + 1))
    plan = anonymise.plan_records(ids, records, STRUCTURES, K, definition, rng=random.Random(seed))
    assert _digest(_plan_facts(plan)) == expected
