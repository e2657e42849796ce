"""The export plan's goal figures (issue 17) on several seeds, without the database.

The real plan (`anonymise.plan_records`: the item bank's ladders, weights and suppression
limit, every quasi-identifying column) on people drawn like the demo population
(`plan_population`). tests/services/evaluation/test_export_goals.py checks the same goals on
the files of every format, for one population answered through the real services.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pycanon.anonymity
import pytest
from flask import Flask

from selfcheck.evaluation import anonymise, bundle
from selfcheck.questionnaire.model import NO_ANSWER, Definition
from tests.evaluation.plan_population import STRUCTURES, largest_shifts, population

K = 5


def plan_for(definition: Definition, people: int, seed: int) -> tuple[Any, list[dict[str, Any]]]:
    records = population(definition, people, seed)
    ids = list(range(1, people + 1))
    plan = anonymise.plan_records(ids, records, STRUCTURES, K, definition, rng=random.Random(seed))
    return plan, records


def as_shown(plan: Any, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The released values, the forms present as the file shows them (a form's answers
    show it, whatever the plan releases in that column)."""
    return [
        {**values, anonymise.FORMS_PRESENT: records[index - 1][anonymise.FORMS_PRESENT]}
        for index, values in plan.decisions.items()
    ]


def pycanon_k(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> int:
    frame = pd.DataFrame([{c: repr(row[c]) for c in columns} for row in rows])
    return int(pycanon.anonymity.k_anonymity(frame, list(columns)))


@pytest.mark.slow  # about 3 s each on 2 busy cores
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_300_people_keep_every_share_within_five_points(definition: Definition, seed: int) -> None:
    plan, records = plan_for(definition, 300, seed)
    rows = as_shown(plan, records)
    columns = list(plan.columns)
    assert min(Counter(tuple(repr(r[c]) for c in columns) for r in rows).values()) >= K
    assert pycanon_k(rows, columns) >= K
    shifts = largest_shifts(definition, plan, records)
    assert max(shifts.values()) <= 5.0, shifts
    assert plan.people_with_demographic_masked() <= 0.25 * 300
    assert plan.people_left_out <= 0.05 * 300


@pytest.mark.slow  # 10 to 40 s on 2 busy cores
def test_10000_people_keep_every_share_within_one_point(definition: Definition) -> None:
    # The suppression limit shrinks with the selection (item bank: 25 % at 300 people, 2 %
    # at 10,000): few people lose a cell, the shares stay within a point.
    assert definition.disclosure.suppression_limit(10_000) == pytest.approx(0.02)
    plan, records = plan_for(definition, 10_000, 1)
    columns = list(plan.columns)
    rows = as_shown(plan, records)
    assert min(Counter(tuple(repr(r[c]) for c in columns) for r in rows).values()) >= K
    shifts = largest_shifts(definition, plan, records)
    assert max(shifts.values()) <= 1.0, shifts
    lost = plan.people_with_demographic_masked() + plan.people_left_out
    assert lost <= 0.02 * 10_000


def test_the_suppression_limit_shrinks_as_the_selection_grows(definition: Definition) -> None:
    limit = definition.disclosure.suppression_limit
    assert limit(50) == limit(300) == pytest.approx(0.25)
    assert limit(10_000) == limit(100_000) == pytest.approx(0.02)
    sizes = [300, 1_000, 3_000, 10_000]
    assert [limit(n) for n in sizes] == sorted((limit(n) for n in sizes), reverse=True)
    # Fewer in share, more in people: a bigger selection never allows fewer people masked.
    assert [limit(n) * n for n in sizes] == sorted(limit(n) * n for n in sizes)


@pytest.mark.slow  # one plan of 300 people, about 3 s
def test_the_report_compares_the_released_rows_with_the_same_people(
    definition: Definition, app: Flask
) -> None:
    plan, records = plan_for(definition, 300, 4)
    assert plan.people_left_out > 0  # this population leaves a few out
    report = plan.report()
    assert report["shares_compared"] == plan.people_exported
    assert report["people_left_out"] == 300 - plan.people_exported
    specs = {s.column: s for s in anonymise.engine_columns(definition, STRUCTURES)}
    shown = 0
    for column, rows in report["shares"].items():
        spec, level = specs[column], plan.release.levels[column]
        # The truth of the people in the file only (ids are 1-based record positions).
        true = Counter(
            str(spec.apply(level, records[b - 1][column]))
            for b in plan.decisions
            if records[b - 1][column] not in (None, NO_ANSWER)
        )
        total = sum(true.values())
        for row in rows:
            assert row["true_share"] == round(100 * true[row["category"]] / total, 1)
            shown += 1
    assert shown
    with app.test_request_context("/"):
        lines = bundle.report_lines(report)
    compared = [line for line in lines if "personnes exportées, leurs réponses vraies" in line]
    assert len(compared) == 1 and f"({plan.people_left_out})" in compared[0]
