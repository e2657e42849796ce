"""What an export job holds, in the order it holds it (docs/performance.md, "The export's
memory, every process counted"): the codebook PDF before the plan (a child process that
renders it then runs beside the job worker at its smallest); the evaluator's memory read in
one streamed pass (`joins._scan`) gives what the whole dict gave."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from selfcheck.evaluation import anonymise, bundle, codebook, joins
from selfcheck.evaluation.export import Shape
from selfcheck.evaluation.scope import parse_filters
from selfcheck.platform.models import StaffUser
from selfcheck.questionnaire.model import Definition

K = 5
SECRET = "s"


@pytest.mark.slow  # two exports of 40 people: seconds on 2 busy cores
@pytest.mark.usefixtures("request_context")
def test_the_codebook_pdf_comes_before_the_plan(
    populated: Session,
    admin: StaffUser,
    definition: Definition,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps: list[str] = []

    def render(book: codebook.Codebook) -> bytes:
        steps.append("codebook pdf")
        return b"%PDF-1.7\n%%EOF\n"  # WeasyPrint's seconds are not what this is about

    monkeypatch.setattr(codebook, "_pdf_cache", {})  # kept here, then forgotten

    planned = anonymise.plan_records

    def plan_records(*args: Any, **kwargs: Any) -> anonymise.Plan:
        steps.append("plan")
        return planned(*args, **kwargs)

    monkeypatch.setattr(codebook, "_render_pdf", render)
    monkeypatch.setattr(anonymise, "plan_records", plan_records)
    filters = parse_filters(populated, admin, {})
    request = bundle.ExportRequest("csv", Shape.WIDE)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        result = bundle.run_export(
            populated, definition, admin, filters, request, K, tmp_path / name, SECRET
        )
        populated.commit()
        assert result.rows > 0
    # The PDF first, while nothing of the data is held; then the plan. The second export
    # finds it kept (in the folder of rendered files, or this process without one).
    assert steps == ["codebook pdf", "plan", "plan"]


@pytest.mark.usefixtures("request_context")
def test_the_memory_read_streamed_gives_the_digests_sizes_and_a_stamp_that_moves(
    populated: Session, admin: StaffUser
) -> None:
    empty = joins.load(populated, admin, [1, 2, 3], SECRET)
    assert (empty.previous, empty.sizes) == ({}, {})
    joins.record(populated, admin, {1: "d1", 2: "d1", 7: "d2"}, SECRET, expected=empty.stamp)
    populated.flush()
    memory = joins.load(populated, admin, [1, 2, 3], SECRET)
    assert memory.previous == {1: "d1", 2: "d1"}  # people in scope only; 3 has none
    assert memory.sizes == {"d1": 2, "d2": 1}  # every person remembered, in scope or not
    assert memory.stamp != empty.stamp
    assert joins.load(populated, admin, [7], SECRET).stamp == memory.stamp
    # Recorded since it was read: refused.
    joins.record(populated, admin, {2: "d3"}, SECRET, expected=memory.stamp)
    populated.flush()
    with pytest.raises(joins.MemoryChanged):
        joins.record(populated, admin, {1: "d4"}, SECRET, expected=memory.stamp)
    after = joins.load(populated, admin, [1, 2, 7], SECRET)
    assert after.previous == {1: "d1", 2: "d3", 7: "d2"}
    assert after.sizes == {"d1": 1, "d2": 1, "d3": 1}
