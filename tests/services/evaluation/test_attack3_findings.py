"""Findings of an attack on the anonymised exports and the differencing guard (round 12)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

import pytest
from sqlalchemy.orm import Session

from selfcheck.evaluation import anonymise
from selfcheck.evaluation.scope import ScopeError, parse_filters
from selfcheck.platform.models import StaffUser
from selfcheck.questionnaire.model import Definition
from tests.evaluation.plan_population import STRUCTURES, population

K = 5


@pytest.mark.usefixtures("request_context")
def test_a_period_may_end_with_the_current_month(populated: Session, admin: StaffUser) -> None:
    # Whole months only, so `to=2026-12` means 31 December: on 6 December it was refused as
    # "after today", and no period could end in the current month at all.
    today = date(2026, 12, 6)
    filters = parse_filters(populated, admin, {"from": "2026-01", "to": "2026-12"}, today=today)
    assert filters.date_to == date(2026, 12, 31)
    # A month that has not begun is still refused.
    with pytest.raises(ScopeError, match="comprises entre"):
        parse_filters(populated, admin, {"from": "2027-01"}, today=today)
    with pytest.raises(ScopeError, match="comprises entre"):
        parse_filters(populated, admin, {"to": "2027-01"}, today=today)


@pytest.mark.slow  # two plans of 300 and 200 people, about 6 s
@pytest.mark.xfail(
    strict=True,
    reason="OPEN (attack3): two allowed overlapping exports, joined on the answers their "
    "people share, combine their different cell suppressions and single people out",
)
def test_two_overlapping_exports_joined_keep_k(definition: Definition) -> None:
    # Export 1: the three structures; export 2: two of them. They differ by about 100
    # people, so the guard allows both (pairwise and `isolates`). The same person has the
    # same answers in both files (dozens of columns): the rows join. Each release is
    # k-anonymous, but the masked cells differ between them, so a person masked in one is
    # shown in the other: the joined quasi-identifiers leave classes under k.
    records = population(definition, 300, 2)
    ids = list(range(1, 301))
    whole = anonymise.plan_records(ids, records, STRUCTURES, K, definition, rng=random.Random(0))
    dropped = list(STRUCTURES)[1]
    part_ids = [i for i in ids if records[i - 1][anonymise.PLACE] != dropped]
    part = anonymise.plan_records(
        part_ids,
        [records[i - 1] for i in part_ids],
        STRUCTURES,
        K,
        definition,
        rng=random.Random(0),
    )
    assert len(whole.decisions) - len(part.decisions) >= K  # the guard's pairwise test
    columns = list(whole.columns)
    common = [i for i in whole.decisions if i in part.decisions]
    joined = Counter(
        tuple(repr(plan.decisions[i].get(c)) for plan in (whole, part) for c in columns)
        for i in common
    )
    assert min(joined.values()) >= K


def test_a_plan_of_nobody_is_an_empty_release(definition: Definition) -> None:
    # The people counted before the plan can be erased before it reads them: the engine
    # divided by the number of people (ZeroDivisionError, a 500 in the worker).
    plan = anonymise.plan_records([], [], STRUCTURES, K, definition, rng=random.Random(0))
    assert plan.people_exported == 0 and plan.people_left_out == 0
    assert plan.order == []
    report = plan.report()
    assert report["people_exported"] == 0 and report["shares_compared"] == 0
