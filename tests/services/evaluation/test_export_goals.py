"""Goal figures of issue 17 on a population drawn from the reference survey's marginals.

300 people typed in or answered online through the real services (`demo.generate_demo`),
spread over 3 structures of one department, k = 5. Every format and layout is read back
with its own reader and checked from outside: pycanon over every quasi-identifying column,
and the shares of each demographic against the raw answers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pycanon import anonymity  # type: ignore[import-untyped]
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from selfcheck import demo
from selfcheck.accounts.structures import create_structure
from selfcheck.evaluation import anonymise, bundle
from selfcheck.evaluation.export import Shape, qi_values
from selfcheck.evaluation.scope import parse_filters
from selfcheck.platform.db import Database
from selfcheck.platform.models import Beneficiary, Response, Role, StaffUser
from selfcheck.questionnaire.model import NO_ANSWER, Definition, Item
from tests.demo_once import write_once
from tests.services.evaluation.kanon_check import (
    QUASI_IDENTIFIERS,
    group_sizes,
    person_table,
    read_rows,
)
from tests.staff import add_staff

pytestmark = pytest.mark.slow  # PDFs or populations through the real services

K = 5
MASKED = -7
NO_ANSWER_CODE = -8
FORMATS = [
    ("csv", Shape.WIDE),
    ("csv", Shape.LONG),
    ("csv-excel", Shape.WIDE),
    ("xlsx", Shape.WIDE),
    ("xlsx", Shape.LONG),
    ("sav", Shape.WIDE),
    ("sav", Shape.LONG),
    ("dta", Shape.WIDE),
    ("dta", Shape.LONG),
]


def three_structures(db: Session, definition: Definition, people: int) -> None:
    """The people, a third of them in each structure. Written through the real journey once
    per test process, then copied into the next test's empty database (tests/demo_once.py):
    the three tests of this module start from the same people."""

    def write() -> None:
        demo.generate_demo(db, definition, respondents=people, seed=2023)
        home = demo.demo_structure(db)
        others = [
            create_structure(db, "Espace numérique Sud", "rural", home.department, "espace-sud"),
            create_structure(db, "Point d'accueil Est", "urbain", home.department, "accueil-est"),
        ]
        ids = list(db.scalars(select(Beneficiary.id).order_by(Beneficiary.id)))
        for index, other in enumerate(others):
            chosen = ids[index::3]  # a third of the people in each structure
            db.execute(
                update(Beneficiary).where(Beneficiary.id.in_(chosen)).values(structure_id=other.id)
            )
            db.execute(
                update(Response)
                .where(Response.beneficiary_id.in_(chosen))
                .values(structure_id=other.id)
            )
        db.commit()

    write_once(db, ("three_structures", people, 2023), write)


def evaluator(db: Session, database: Database, name: str) -> StaffUser:
    db.commit()  # end this session's read: add_staff writes through another connection
    account = add_staff(database, Role.PLATFORM_ADMIN, email=f"{name}@example.org")
    user = db.get(StaffUser, account.id)
    assert user is not None
    return user


def truth(db: Session, definition: Definition, database: Database) -> list[dict[str, Any]]:
    """The raw quasi-identifiers of every person, as answered (what the file must reflect)."""
    user_filters = parse_filters(db, evaluator(db, database, "truth"), {})
    _ids, records, _places = anonymise.collect(db, user_filters, definition)
    return records


def released_shares(
    item: Item, values: list[Any], raw: list[Any]
) -> tuple[dict[str, float], dict[str, float]]:
    """(true, released) shares per category at the level the file releases the column."""
    assert item.quasi_identifier is not None
    numbers = qi_values(item)
    codes = {number: code for code, number in numbers.items()}
    released = [codes[v] for v in values if v not in (None, MASKED, NO_ANSWER_CODE)]
    groups = {g.code: g for g in item.quasi_identifier.groups()}
    mapping: dict[str, str] = {}
    if any(code in groups for code in released):
        for step in item.quasi_identifier.ladder:
            if any(g.code in released for g in step.groups):
                mapping = {o: g.code for g in step.groups for o in g.options}
    true = [mapping.get(v, v) for v in raw if v not in (None, NO_ANSWER)]
    return _shares(true), _shares(released)


def _shares(values: list[str]) -> dict[str, float]:
    counts = Counter(values)
    total = sum(counts.values()) or 1
    return {code: 100 * n / total for code, n in counts.items()}


def largest_shift(true: Mapping[str, float], released: Mapping[str, float]) -> float:
    return max(abs(released.get(c, 0.0) - share) for c, share in true.items())


def demographic_items(definition: Definition) -> list[Item]:
    return list(definition.quasi_identifiers())


@pytest.mark.usefixtures("request_context")
def test_goal_figures_at_300_people(
    db_session: Session, definition: Definition, database: Database, tmp_path: Path
) -> None:
    three_structures(db_session, definition, 300)
    raw = truth(db_session, definition, database)
    assert len(raw) == 300
    items = demographic_items(definition)
    shifted: list[tuple[object, ...]] = []
    for index, (fmt, shape) in enumerate(FORMATS):
        user = evaluator(db_session, database, f"analyst{index}")
        filters = parse_filters(db_session, user, {})
        folder = tmp_path / f"{fmt}-{shape.value}"
        folder.mkdir()
        result = bundle.run_export(
            db_session,
            definition,
            user,
            filters,
            bundle.ExportRequest(fmt, shape),
            K,
            folder,
            secret="test",
        )
        # The outside check over every column, and pycanon on one row per person.
        sizes = group_sizes(result.zip_path)
        assert min(sizes.values()) >= K, (fmt, shape, min(sizes.values()))
        columns, people = person_table(result.zip_path)
        frame = pd.DataFrame(people, columns=columns).fillna("(empty)").astype(str)
        assert anonymity.k_anonymity(frame, columns) >= K, (fmt, shape)
        assert set(QUASI_IDENTIFIERS) <= set(columns)
        exported = len(people)
        assert exported == result.report["people_exported"]
        assert exported + result.report["people_left_out"] == 300
        # Shares of each demographic within 5 points; at most 25 % with any masked.
        names, rows = read_rows(result.zip_path)
        by_person = {row["pseudonym"]: row for row in rows}
        for item in items:
            assert item.quasi_identifier is not None
            column = item.quasi_identifier.column
            values = [row[column] for row in by_person.values()]
            if all(v in (None, MASKED) for v in values):
                continue  # the whole column withheld: no share is shown wrong
            true, released = released_shares(item, values, [r[column] for r in raw])
            shift = largest_shift(true, released)
            if shift > 5.0:
                shifted.append((fmt, shape.value, column, round(shift, 2)))
        # Row order is drawn for each export: not the order of the people in the database.
        assert names[0] == "pseudonym"
    assert not shifted, f"shares shifted by more than 5 points: {shifted}"


@pytest.mark.usefixtures("request_context")
def test_analysis_focus_keeps_its_columns_within_two_points(
    db_session: Session, definition: Definition, database: Database, tmp_path: Path
) -> None:
    three_structures(db_session, definition, 300)
    raw = truth(db_session, definition, database)
    focus = definition.disclosure.focus_named("status_diploma")
    assert focus is not None
    user = evaluator(db_session, database, "focused")
    filters = parse_filters(db_session, user, {})
    request = bundle.ExportRequest("csv", Shape.WIDE, focus.code)
    result = bundle.run_export(
        db_session, definition, user, filters, request, K, tmp_path, secret="test"
    )
    assert min(group_sizes(result.zip_path).values()) >= K
    _names, rows = read_rows(result.zip_path)
    focused = [
        item
        for item in definition.quasi_identifiers()
        if item.quasi_identifier is not None and item.quasi_identifier.column in focus.columns
    ]
    assert len(focused) == 2
    for item in focused:
        assert item.quasi_identifier is not None
        column = item.quasi_identifier.column
        values = [row[column] for row in rows]
        assert sum(1 for v in values if v == MASKED) <= 0.1 * len(values), column
        true, released = released_shares(item, values, [r[column] for r in raw])
        assert largest_shift(true, released) <= 2.0, (column, true, released)


@pytest.mark.usefixtures("request_context")
def test_at_most_a_quarter_of_people_lose_a_demographic_value(
    db_session: Session, definition: Definition, database: Database, tmp_path: Path
) -> None:
    three_structures(db_session, definition, 300)
    user = evaluator(db_session, database, "quarter")
    filters = parse_filters(db_session, user, {})
    request = bundle.ExportRequest("csv", Shape.WIDE)
    result = bundle.run_export(
        db_session, definition, user, filters, request, K, tmp_path, secret="test"
    )
    _names, rows = read_rows(result.zip_path)
    columns = [
        i.quasi_identifier.column for i in definition.quasi_identifiers() if i.quasi_identifier
    ]
    masked = sum(1 for row in rows if any(row[c] == MASKED for c in columns))
    assert masked <= 0.25 * 300
