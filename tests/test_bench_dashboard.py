"""The dashboard benchmark's bulk builder (`bench_dashboard.py --bulk`, the 1,000,000-person
PostgreSQL case) writes the facts without reading the answers back: they must be exactly
what `facts.rebuild` computes from those answers, and the population that of the ordinary
builder. Runs on SQLite (rows inserted instead of COPY) and PostgreSQL."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.evaluation import facts
from selfcheck.platform.db import Database
from selfcheck.platform.models import Answer, FactFollowup, FactTally, Response, ResponseFact
from selfcheck.questionnaire.model import Definition

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"
if str(BENCH_DIR) not in sys.path:  # the benchmarks are scripts, not a package
    sys.path.insert(0, str(BENCH_DIR))

import bench_dashboard  # noqa: E402


def followup_cells(session: Session) -> dict[Any, tuple[int, ...]]:
    return {
        tuple(getattr(c, name) for name in facts.FOLLOWUP_KEY): tuple(
            getattr(c, name) for name in facts.CELL_SUMS
        )
        for c in session.scalars(select(FactFollowup))
    }


def stored(session: Session) -> tuple[dict[int, dict[str, Any]], Counter[Any]]:
    rows = {
        row.response_id: {column: getattr(row, column) for column in facts.COLUMNS}
        for row in session.scalars(select(ResponseFact))
    }
    tally: Counter[Any] = Counter(
        {
            (t.structure_id, t.month, t.form, t.channel, t.key, t.value): t.n
            for t in session.scalars(select(FactTally))
        }
    )
    return rows, tally


@pytest.mark.slow  # about 3 s: the demo's templates, then the facts computed twice
def test_bulk_facts_equal_a_rebuild(database: Database, definition: Definition) -> None:
    db_engine = database.engine
    answers, steps = bench_dashboard.populate_bulk(db_engine, definition, 150, templates=8)
    assert answers > 150 * 20 and set(steps) >= {"facts", "answers"}
    with Session(db_engine, info={facts.CELL_KEY_INFO: bench_dashboard.CELL_KEY}) as session:
        forms = Counter(session.scalars(select(Response.form)))
        assert forms["followup"] > 0 and forms["retro"] > 0 and forms["after"] > 0
        assert session.scalar(select(Answer.id).limit(1)) is not None
        bulk = stored(session)
        bulk_followup = followup_cells(session)
        facts.rebuild(session, definition)
        session.flush()
        rebuilt = stored(session)
        rebuilt_followup = followup_cells(session)
        session.rollback()
    assert bulk[0] == rebuilt[0]
    assert bulk[1] == rebuilt[1]
    assert bulk_followup == rebuilt_followup != {}
    assert any(row["kept"] for row in bulk[0].values())
