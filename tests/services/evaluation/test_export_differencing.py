"""No differencing: exports that differ by fewer than k people, and views whose complement
in the scope holds fewer than k people, are refused (422, nothing released, a log line)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from selfcheck.accounts.structures import create_structure
from selfcheck.evaluation import bundle, differencing
from selfcheck.evaluation.export import Shape
from selfcheck.evaluation.scope import (
    ScopeError,
    parse_filters,
    require_complement_at_least_k,
    wider_selections,
)
from selfcheck.platform.models import (
    Beneficiary,
    ExportLog,
    ExportSelection,
    Response,
    StaffUser,
    Structure,
)
from selfcheck.questionnaire.model import Definition

K = 5
JANUARY = datetime(2025, 1, 15, tzinfo=UTC)


def _move_to_january_2025(db: Session, people: int) -> None:
    ids = list(db.scalars(select(Beneficiary.id).order_by(Beneficiary.id).limit(people)))
    db.execute(
        update(Response)
        .where(Response.beneficiary_id.in_(ids))
        .values(submitted_at=datetime(2025, 1, 15, tzinfo=UTC))
    )
    db.commit()


def _export(db: Session, definition: Definition, user: StaffUser, args: dict[str, str], out: Path):  # type: ignore[no-untyped-def]
    filters = parse_filters(db, user, args)
    out.mkdir()
    request = bundle.ExportRequest("csv", Shape.WIDE)
    return bundle.run_export(db, definition, user, filters, request, K, out, secret="s")


@pytest.mark.usefixtures("request_context")
def test_an_export_differing_by_fewer_than_k_people_is_refused(
    populated: Session,
    admin: StaffUser,
    definition: Definition,
    out_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _move_to_january_2025(populated, 3)
    first = _export(populated, definition, admin, {}, out_dir / "a")
    assert first.report["people_exported"] > 3
    stored = populated.scalars(select(ExportSelection)).one()
    assert stored.count == first.report["people_exported"]
    # Keyed hashes, not ids: binary records (branch dash4), the selection's lines.
    assert stored.people == "" and stored.lines is not None
    assert len(stored.lines) == differencing.RECORD_BYTES * stored.count
    kept = differencing.stored_lines(stored.people, stored.lines)
    assert str(admin.id) not in kept
    filters = parse_filters(populated, admin, {})
    assert kept == differencing.selection_lines(populated, filters, admin, "s")
    # The same selection again: nothing new is learnt.
    _export(populated, definition, admin, {}, out_dir / "b")
    # Without the three people of January 2025: refused, nothing written nor logged.
    with caplog.at_level(logging.WARNING), pytest.raises(ScopeError) as refused:
        _export(populated, definition, admin, {"from": "2025-02"}, out_dir / "c")
    assert refused.value.status == 422
    assert "moins de 5" in str(refused.value.message)
    assert not list((out_dir / "c").iterdir())
    assert populated.scalar(select(func.count()).select_from(ExportLog)) == 2
    assert any("differs from an earlier export" in r.getMessage() for r in caplog.records)


@pytest.mark.usefixtures("request_context")
def test_a_view_whose_complement_has_fewer_than_k_people_is_hidden(
    populated: Session, admin: StaffUser, caplog: pytest.LogCaptureFixture
) -> None:
    _move_to_january_2025(populated, 3)
    narrow = parse_filters(populated, admin, {"from": "2025-02"})
    with caplog.at_level(logging.WARNING), pytest.raises(ScopeError) as hidden:
        require_complement_at_least_k(populated, admin, narrow, K)
    assert hidden.value.status == 422
    assert any("complement" in r.getMessage() for r in caplog.records)
    # No filter, or a complement of at least k: shown.
    require_complement_at_least_k(populated, admin, parse_filters(populated, admin, {}), K)
    _move_to_january_2025(populated, 8)
    require_complement_at_least_k(
        populated, admin, parse_filters(populated, admin, {"from": "2025-02"}), K
    )


def test_dates_finer_than_a_month_are_refused(populated: Session, admin: StaffUser) -> None:
    with pytest.raises(ScopeError) as finer:
        parse_filters(populated, admin, {"from": "2026-03-02"})
    assert finer.value.status == 422
    whole = parse_filters(populated, admin, {"from": "2026-03", "to": "2026-04"})
    assert (whole.date_from.isoformat(), whole.date_to.isoformat()) == (  # type: ignore[union-attr]
        "2026-03-01",
        "2026-04-30",
    )


def _move(db: Session, ids: list[int], **values: object) -> None:
    db.execute(update(Response).where(Response.beneficiary_id.in_(ids)).values(**values))
    if "structure_id" in values:
        db.execute(
            update(Beneficiary)
            .where(Beneficiary.id.in_(ids))
            .values(structure_id=values["structure_id"])
        )
    db.commit()


def _people_of(db: Session, slug: str) -> list[int]:
    structure = db.scalars(select(Structure).where(Structure.slug == slug)).one()
    return list(
        db.scalars(
            select(Beneficiary.id)
            .where(Beneficiary.structure_id == structure.id)
            .order_by(Beneficiary.id)
        )
    )


@pytest.mark.usefixtures("request_context")
def test_a_complement_within_a_sub_scope_is_checked_too(
    populated: Session, admin: StaffUser, caplog: pytest.LogCaptureFixture
) -> None:
    # 3 of the 15 people of centre-nord sent their forms in January 2025: the whole scope
    # minus "centre-nord from February" is 28 people, but "centre-nord" minus it is 3.
    _move(populated, _people_of(populated, "centre-nord")[:3], submitted_at=JANUARY)
    narrow = parse_filters(populated, admin, {"structure": "centre-nord", "from": "2025-02"})
    assert {"structure": "centre-nord"} in wider_selections(populated, admin, narrow)
    with caplog.at_level(logging.WARNING), pytest.raises(ScopeError) as hidden:
        require_complement_at_least_k(populated, admin, narrow, K)
    assert hidden.value.status == 422
    assert "sélection plus large" in str(hidden.value.message)
    assert any("complement in a wider selection" in r.getMessage() for r in caplog.records)
    # With 8 people moved, every complement is at least k: shown.
    _move(populated, _people_of(populated, "centre-nord")[:8], submitted_at=JANUARY)
    require_complement_at_least_k(populated, admin, narrow, K)


@pytest.mark.usefixtures("request_context")
def test_a_structure_is_checked_against_its_department(
    populated: Session, admin: StaffUser
) -> None:
    # A third structure in department 59 with 3 people: "centre-nord" = department 59 - 3.
    other = create_structure(populated, "Point Nord", "urbain", "59", "point-nord")
    populated.commit()
    _move(populated, _people_of(populated, "centre-nord")[:3], structure_id=other.id)
    alone = parse_filters(populated, admin, {"structure": "centre-nord"})
    assert {"department": "59"} in wider_selections(populated, admin, alone)
    with pytest.raises(ScopeError) as hidden:
        require_complement_at_least_k(populated, admin, alone, K)
    assert hidden.value.status == 422
    # The department as a whole is fine (its complement, the first structure, is 25).
    require_complement_at_least_k(
        populated, admin, parse_filters(populated, admin, {"department": "59"}), K
    )
