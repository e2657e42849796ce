"""attack11: people released alike share one decision dict (`anonymise._shared_decisions`,
mem18). Whatever runs after the plan (every writer, shape and format; the read-once CSV path;
the plan's report) must only read those dicts: a change in place to one person's would change
the release of everyone sharing it. This pins that nothing does today, so that a future writer
that does (e.g. masking a cell for one person, or adding a column) fails here."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from selfcheck.evaluation import anonymise, bundle
from selfcheck.evaluation.export import Layout, Shape, write_rows
from selfcheck.evaluation.scope import parse_filters
from selfcheck.evaluation.writers import WRITERS
from selfcheck.platform.models import StaffUser
from selfcheck.questionnaire.model import Definition

K = 3
KEY = b"k" * 32


def _frozen(decisions: dict[int, dict[str, Any]]) -> dict[int, tuple[tuple[str, str, str], ...]]:
    return {
        person: tuple((name, type(value).__name__, repr(value)) for name, value in values.items())
        for person, values in decisions.items()
    }


@pytest.mark.usefixtures("request_context")
def test_no_writer_changes_a_shared_decision(
    populated: Session, admin: StaffUser, definition: Definition, tmp_path: Path
) -> None:
    filters = parse_filters(populated, admin, {})
    plan = anonymise.plan(populated, filters, K, definition, rng=random.Random(9))
    shared = len(plan.decisions) - len({id(values) for values in plan.decisions.values()})
    assert shared > 0, "no two people share a dict: this test checks nothing"
    before = _frozen(plan.decisions)
    report = plan.report()
    for fmt in WRITERS:
        for shape in Shape:
            layout = Layout(definition, shape, True)
            writer = WRITERS[fmt](tmp_path / f"{fmt}-{shape}", layout.columns, "t")
            write_rows(populated, filters, layout, plan, KEY, writer.write_prepared, writer.prepare)
            writer.close()
            assert _frozen(plan.decisions) == before, (fmt, shape)
    assert plan.report() == report
    # The read-once CSV path: its own plan, the same way.
    layout = Layout(definition, Shape.WIDE, True)
    fast = WRITERS["csv"](tmp_path / "fast", layout.columns, "t")
    seen: list[anonymise.Plan] = []
    bundle.plan_and_write(
        populated,
        filters,
        K,
        definition,
        None,
        None,
        layout,
        fast,
        KEY,
        before_writing=lambda found: seen.append(found) or None,  # type: ignore[func-returns-value]
        rng=random.Random(9),
    )
    fast.close()
    assert _frozen(seen[0].decisions) == before
