"""Findings of an attack on the join memory and the dashboard's table guard (round 13)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from selfcheck.evaluation import anonymise, bundle, codebook, differencing, export, joins
from selfcheck.evaluation.export import Shape
from selfcheck.evaluation.scope import parse_filters
from selfcheck.platform.db import Database
from selfcheck.platform.models import (
    Beneficiary,
    ExportLog,
    ExportSelection,
    Response,
    StaffUser,
    Status,
    Structure,
)
from selfcheck.privacy import operations as privacy
from selfcheck.questionnaire.model import Definition
from tests.conftest import is_postgres
from tests.services.evaluation.support import hold_back_a_last_form

K = 5
REQUEST = bundle.ExportRequest("csv", Shape.WIDE)


@pytest.fixture(autouse=True)
def _quick_codebook_pdf(monkeypatch: pytest.MonkeyPatch) -> None:
    # The codebook's PDF (WeasyPrint, seconds) is not what these tests are about.
    monkeypatch.setattr(codebook, "pdf", lambda book: b"%PDF-1.7\n")


def _rows(zip_path: Path) -> list[dict[str, str]]:
    with zipfile.ZipFile(zip_path) as bundled:
        text = bundled.read("data.csv").decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.slow  # one export of 40 people: 3 to 5 s on 2 busy cores
@pytest.mark.usefixtures("request_context")
def test_a_form_sent_while_the_export_runs_is_not_written_outside_the_plan(
    populated: Session, admin: StaffUser, definition: Definition, tmp_path: Path
) -> None:
    # The plan and the file are read by different statements: on PostgreSQL (READ
    # COMMITTED) a form submitted in between was written into the file although the plan
    # never saw it: the person's row then showed a form its "forms present" column and its
    # class do not have (blank month, channel, wording), a row like no other.
    _person, last = hold_back_a_last_form(populated)
    lines = differencing.selection_records  # called between the plan and the file

    def submitted_meanwhile(*args: object, **kwargs: object) -> object:
        # What another session's commit looks like to the next statement of this one.
        populated.execute(
            update(Response).where(Response.id == last).values(status=Status.SUBMITTED.value)
        )
        return lines(*args, **kwargs)  # type: ignore[arg-type]

    filters = parse_filters(populated, admin, {})
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(differencing, "selection_records", submitted_meanwhile)
        result = bundle.run_export(
            populated,
            definition,
            admin,
            filters,
            bundle.ExportRequest("csv", Shape.WIDE),
            K,
            tmp_path,
            "s",
        )
    rows = _rows(result.zip_path)
    assert len(rows) == result.report["people_exported"] > 0
    # Every quasi-identifying column, and which forms the row actually fills in.
    form_names = ("before", "after", "retro", "followup_late", "followup")
    detail = ("_month", "_channel", "_wording", "_version")
    demographics = [
        item.quasi_identifier.column
        for item in definition.quasi_identifiers()
        if item.quasi_identifier is not None
    ]
    head = ["structure", "department", "region", *demographics, "forms"]
    qi = [*head, *(n for n in rows[0] if n.endswith(detail))]
    assert set(head) <= set(rows[0])

    def filled(row: dict[str, str], form: str) -> bool:
        own = [n for n in row if n.startswith(form + "_") and not n.endswith(detail)]
        if form == "followup":
            own = [n for n in own if not n.startswith("followup_late_")]
        return any(row[n] for n in own)

    classes = Counter(
        (*(row[n] for n in qi), *(filled(row, f) for f in form_names)) for row in rows
    )
    assert min(classes.values()) >= K, sorted(classes.values())[:5]


def test_a_planned_form_gone_while_the_export_runs_fails_it() -> None:
    sent = export.SentForm("web", "standard", "1", None, {})
    person = export.PersonAnswers(1, 1, {"before": sent, "after": sent})
    # A form sent since the plan is not written; one erased since fails the export.
    assert set(export.as_planned(person, 1).forms) == {"before"}
    assert export.as_planned(person, 3) is person
    with pytest.raises(export.DataChanged):
        export.as_planned(person, 5)
    with pytest.raises(export.DataChanged):
        export.as_planned(None, 1)


def _classes(plans: list[anonymise.Plan]) -> Counter[tuple[str, ...]]:
    """The outer join of these exports' releases: per person, their vector in each."""
    vectors = [
        {
            person: joins.vector(plan.patterns[person], values, anonymise.FORMS_PRESENT)
            for person, values in plan.decisions.items()
        }
        for plan in plans
    ]
    people = set().union(*vectors)
    return Counter(tuple(v.get(person, "absent") for v in vectors) for person in people)


@pytest.mark.slow  # two exports of 40 and 25 people: 5 to 10 s on 2 busy cores
@pytest.mark.usefixtures("request_context")
def test_two_exports_of_one_evaluator_at_once_keep_the_join_at_k(
    populated: Session,
    admin: StaffUser,
    definition: Definition,
    database: Database,
    tmp_path: Path,
) -> None:
    # Two export jobs of one evaluator run at once (2 per user by default, worker threads).
    # The memory's lock was a SELECT ... FOR UPDATE, which SQLite ignores: both exports
    # planned on the same (empty) memory, the second to finish overwrote the first's
    # digests, and the join of the two files was never checked.
    plans: list[anonymise.Plan] = []
    preview = bundle.preview

    def kept(*args: Any, **kwargs: Any) -> anonymise.Plan:
        plan = preview(*args, **kwargs)
        plans.append(plan)
        return plan

    everyone = parse_filters(populated, admin, {})
    first_structure = populated.scalars(select(Structure.slug).order_by(Structure.id)).first()
    lines = differencing.selection_records  # called between the plan and the file
    outcomes: list[str] = []

    def the_other_export_meanwhile(*args: Any, **kwargs: Any) -> Any:
        # The second job runs whole (its own session) while the first is between its plan
        # and its file.
        if outcomes:  # the second export's own call
            return lines(*args, **kwargs)
        outcomes.append("second started")
        with database.session() as other:
            user = other.get(StaffUser, admin.id)
            assert user is not None
            narrower = parse_filters(other, user, {"structure": str(first_structure)})
            (tmp_path / "b").mkdir()
            if is_postgres():
                # PostgreSQL: the first export holds the evaluator's row (joins.load), the
                # second waits for it (here, one thread: it gives up after a second).
                other.execute(text("SET LOCAL lock_timeout = '1s'"))
                with pytest.raises(OperationalError):
                    bundle.run_export(
                        other, definition, user, narrower, REQUEST, K, tmp_path / "b", "s"
                    )
                other.rollback()
                outcomes.append("second held")
                return lines(*args, **kwargs)
            bundle.run_export(other, definition, user, narrower, REQUEST, K, tmp_path / "b", "s")
            other.commit()
            outcomes.append("second done")
        return lines(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(bundle, "preview", kept)
        patched.setattr(differencing, "selection_records", the_other_export_meanwhile)
        (tmp_path / "a").mkdir()
        try:
            bundle.run_export(
                populated, definition, admin, everyone, REQUEST, K, tmp_path / "a", "s"
            )
            populated.commit()
            outcomes.append("first done")
        except joins.MemoryChanged:
            populated.rollback()
            outcomes.append("first refused")
    if is_postgres():
        assert outcomes == ["second started", "second held", "first done"]
        assert populated.scalar(select(func.count()).select_from(ExportLog)) == 1
        return
    # Without the check both were released, and their join had classes of 1 (measured:
    # 14, 4, 7, 9, 5, 1). Now the first fails: its job fails, nothing of it is logged nor
    # remembered; run again, it plans on the second's memory.
    assert outcomes == ["second started", "second done", "first refused"]
    assert populated.scalar(select(func.count()).select_from(ExportLog)) == 1
    (tmp_path / "c").mkdir()
    second = plans[1]
    plans.clear()
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(bundle, "preview", kept)
        bundle.run_export(populated, definition, admin, everyone, REQUEST, K, tmp_path / "c", "s")
    populated.commit()
    assert plans[0].memory_stamp is not None
    assert min(_classes([second, plans[0]]).values()) >= K


@pytest.mark.slow  # one export of 40 people: 3 to 5 s on 2 busy cores
@pytest.mark.usefixtures("request_context")
def test_an_erased_person_leaves_no_keyed_hash_in_the_selections_kept(
    populated: Session, admin: StaffUser, definition: Definition, tmp_path: Path
) -> None:
    # Someone holding the database file AND the app secret: person ids are consecutive, so
    # hashing every id up to the largest and keeping those no longer in `beneficiary` finds
    # the erased people, and each selection's filters (export_log) say where and when they
    # were. The docs say erasure deletes everything of the person.
    filters = parse_filters(populated, admin, {})
    bundle.run_export(populated, definition, admin, filters, REQUEST, K, tmp_path, "s")
    populated.commit()
    person, code = populated.execute(
        select(Beneficiary.id, Beneficiary.code).order_by(Beneficiary.id)
    ).first()  # type: ignore[misc]
    privacy.erase_by_code(populated, code, secret="s")
    populated.commit()
    hashed = differencing.Hasher("s", admin.id).persons(np.array([person], dtype=np.int64))[0]
    kept = "\n".join(
        "\n".join(differencing.stored_lines(people, lines))
        for people, lines in populated.execute(
            select(ExportSelection.people, ExportSelection.lines)
        )
    )
    assert hashed not in kept
