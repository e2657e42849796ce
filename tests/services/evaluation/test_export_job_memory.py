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


def test_people_showing_the_same_values_share_one_dict_and_unlike_values_stay_apart() -> None:
    names = ["age", "place"]
    combinations = [
        (1, "a"),
        (1, "a"),  # the same as the first: the same dict
        (True, "a"),  # equal to 1, shown otherwise: its own dict
        (1.0, "a"),
        (0.0, "a"),
        (-0.0, "a"),
        (anonymise.MASKED, "a"),
        (anonymise.MASKED, "a"),
        (None, "a"),
    ]
    ids = [100 + index for index in range(len(combinations))]
    columns = {
        name: list(values)
        for name, values in zip(names, zip(*combinations, strict=True), strict=True)
    }
    decisions = anonymise._shared_decisions(ids, range(len(ids)), names, columns)
    # Each person shows exactly their own values (the dict built for each, before).
    assert all(
        [(type(v), repr(v)) for v in decisions[person].values()]
        == [(type(v), repr(v)) for v in combination]
        for person, combination in zip(ids, combinations, strict=True)
    )
    assert decisions[100] is decisions[101]
    assert decisions[106] is decisions[107]
    assert len({id(d) for d in decisions.values()}) == 7


@pytest.mark.usefixtures("request_context")
def test_the_memory_written_a_few_rows_at_a_time_is_the_same(
    populated: Session, admin: StaffUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(joins, "WRITTEN_AT_ONCE", 2)
    joins.record(populated, admin, {1: "d1", 2: "d1", 3: "d2"}, SECRET)
    populated.flush()
    # Updates and inserts mixed in each part of 2.
    joins.record(populated, admin, {1: "d5", 4: "d5", 2: "d6", 5: "d6", 6: "d7"}, SECRET)
    populated.flush()
    memory = joins.load(populated, admin, [1, 2, 3, 4, 5, 6], SECRET)
    assert memory.previous == {1: "d5", 2: "d6", 3: "d2", 4: "d5", 5: "d6", 6: "d7"}
    assert memory.sizes == {"d2": 1, "d5": 2, "d6": 2, "d7": 1}
