"""Exports stream: peak memory does not grow with the number of people exported."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from selfcheck.evaluation import anonymise, bundle, export
from selfcheck.evaluation.export import Layout, Shape, write_rows
from selfcheck.evaluation.scope import parse_filters
from selfcheck.evaluation.writers import WRITERS
from selfcheck.platform.models import StaffUser
from selfcheck.questionnaire.model import Definition
from tests.services.evaluation.support import clone_people

# 800 people exported under tracemalloc, in three formats
pytestmark = pytest.mark.slow  # scripts/test --fast leaves it out (docs/testing.md)


def peak_of_export(
    db: Session, definition: Definition, user: StaffUser, path: Path, fmt: str
) -> tuple[int, int]:
    """(peak bytes allocated while streaming the rows into `fmt`, rows written)."""
    filters = parse_filters(db, user, {})
    plan = bundle.preview(db, filters, 5, definition)
    layout = Layout(definition, Shape.WIDE, False)
    db.expunge_all()
    tracemalloc.start()
    try:
        writer = WRITERS[fmt](path, layout.columns, "test")
        written = write_rows(db, filters, layout, plan, anonymise.new_key(), writer.write)
        writer.close()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, written.people


@pytest.mark.usefixtures("request_context")
@pytest.mark.parametrize("fmt", ["csv", "dta", "sav"])
def test_peak_memory_does_not_grow_with_rows(
    fmt: str,
    populated: Session,
    admin: StaffUser,
    definition: Definition,
    out_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # PostgreSQL holds up to four fetched chunks of PREFETCH_ROWS forms at once: a constant
    # window, but larger than this test's 800 people, so it is made small here to show that
    # what is held does not grow with the people past that window.
    monkeypatch.setattr(export, "PREFETCH_ROWS", 50)
    clone_people(populated, 4)  # 200 people
    small, small_people = peak_of_export(populated, definition, admin, out_dir / "a", fmt)
    clone_people(populated, 3)  # +600 people (800 in all) -- more than 4 times as many rows
    large, large_people = peak_of_export(populated, definition, admin, out_dir / "b", fmt)
    assert large_people >= 3.5 * small_people
    # Linear growth would give about 4x; streaming stays within noise of the small run.
    assert large < small * 1.5 + 256 * 1024, (small, large)
