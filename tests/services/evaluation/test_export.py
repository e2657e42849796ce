"""Exports re-read with their own readers and checked against the database."""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.evaluation import bundle
from selfcheck.evaluation.export import Shape
from selfcheck.evaluation.scope import ScopeError, parse_filters
from selfcheck.platform.models import Answer, Beneficiary, ExportLog, Response, StaffUser
from selfcheck.questionnaire.model import NO_ANSWER, Definition
from tests.services.evaluation.kanon_check import QUASI_IDENTIFIERS, is_k_anonymous, read_rows

FORMATS = ["csv", "csv-excel", "xlsx", "sav", "dta"]


def export(
    db: Session,
    definition: Definition,
    user: StaffUser,
    folder: Path,
    fmt: str,
    shape: str = "wide",
    k: int = 5,
    args: dict[str, str] | None = None,
) -> bundle.ExportResult:
    filters = parse_filters(db, user, args or {})
    request = bundle.ExportRequest(fmt, Shape(shape))
    target = folder / f"{fmt}-{shape}-{len(list(folder.iterdir()))}"
    target.mkdir()
    result = bundle.run_export(db, definition, user, filters, request, k, target)
    db.commit()
    return result


def db_counts(db: Session, form: str, variable: str) -> Counter[str]:
    rows = db.execute(
        select(Answer.value)
        .join(Response, Response.id == Answer.response_id)
        .where(
            Response.form == form,
            Response.status == "submitted",
            Answer.variable == variable,
            Answer.value != NO_ANSWER,
        )
    )
    return Counter(value for (value,) in rows)


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
@pytest.mark.usefixtures("request_context")
def test_wide_export_matches_the_database_in_every_format(
    populated: Session, admin: StaffUser, definition: Definition, out_dir: Path
) -> None:
    for fmt in FORMATS:
        check_wide_export(populated, definition, admin, out_dir, fmt)


def check_wide_export(
    populated: Session, definition: Definition, admin: StaffUser, out_dir: Path, fmt: str
) -> None:
    result = export(populated, definition, admin, out_dir, fmt, k=1)
    names, rows = read_rows(result.zip_path)
    assert len(rows) == 40 == result.rows
    assert len({row["pseudonym"] for row in rows}) == 40
    assert names[:10] == ["pseudonym", *QUASI_IDENTIFIERS]
    # A scale keeps its digits: the same distribution as in the database, per form.
    for form in ("before", "after", "retro"):
        exported = Counter(str(r[f"{form}_COMFORT"]) for r in rows if r[f"{form}_COMFORT"])
        assert exported == db_counts(populated, form, "COMFORT"), form
    # A multiple choice: one 0/1 column per option (position), counts as in the database.
    devices = definition.item("DEVICES")
    stored = db_counts(populated, "before", "DEVICES")
    for index, option in enumerate(devices.options):
        column = [r[f"before_DEVICES_{index + 1}"] for r in rows]
        assert sum(1 for v in column if v == 1) == stored[option.code]
    # No direct identifier: no code, no ids, no staff.
    codes = set(populated.scalars(select(Beneficiary.code)))
    cells = {str(v) for row in rows for v in row.values() if v is not None}
    assert not cells & codes
    assert not {n for n in names if n.endswith("_id") or "code" in n.lower() or "email" in n}


@pytest.mark.slow  # > 3 s on the shared 2-core machine: CI runs it, not the fast tier
@pytest.mark.usefixtures("request_context")
@pytest.mark.parametrize("shape", ["wide", "long"])
def test_every_export_is_k_anonymous(
    shape: str, populated: Session, admin: StaffUser, definition: Definition, out_dir: Path
) -> None:
    for fmt in FORMATS:
        result = export(populated, definition, admin, out_dir, fmt, shape, k=5)
        assert is_k_anonymous(result.zip_path, 5), fmt
        report = result.report
        assert report["people_in_scope"] == 40
        assert report["people_exported"] + report["people_left_out"] == 40
        _names, rows = read_rows(result.zip_path)
        assert len({row["pseudonym"] for row in rows}) == report["people_exported"], fmt
    # Without generalisation the same data would not be: the check is not vacuous.
    raw = export(populated, definition, admin, out_dir, "csv", shape, k=1)
    assert not is_k_anonymous(raw.zip_path, 5)


@pytest.mark.usefixtures("request_context")
def test_long_export_agrees_with_wide(
    populated: Session, admin: StaffUser, definition: Definition, out_dir: Path
) -> None:
    wide = export(populated, definition, admin, out_dir, "csv", "wide", k=1)
    long = export(populated, definition, admin, out_dir, "csv", "long", k=1)
    _n, wide_rows = read_rows(wide.zip_path)
    names, long_rows = read_rows(long.zip_path)
    assert "variable" in names and "value" in names
    form_numbers = {1: "before", 2: "after", 3: "retro"}
    expected: Counter[tuple[str, Any]] = Counter()
    for row in wide_rows:
        for form in form_numbers.values():
            if row[f"{form}_T01"] is not None:
                expected[(form, row[f"{form}_T01"])] += 1
    found = Counter(
        (form_numbers[r["form"]], r["value"]) for r in long_rows if r["variable"] == "T01"
    )
    assert found == expected
    keys = [(r["pseudonym"], r["form"], r["variable"]) for r in long_rows]
    assert len(keys) == len(set(keys)) == long.rows


@pytest.mark.usefixtures("request_context")
def test_pseudonyms_differ_between_two_exports(
    populated: Session, admin: StaffUser, definition: Definition, out_dir: Path
) -> None:
    first = read_rows(export(populated, definition, admin, out_dir, "csv", k=1).zip_path)[1]
    second = read_rows(export(populated, definition, admin, out_dir, "csv", k=1).zip_path)[1]
    assert len(first) == len(second) == 40
    assert not {r["pseudonym"] for r in first} & {r["pseudonym"] for r in second}


@pytest.mark.slow  # > 8 s on 2 shared cores: CI runs it, the fast tier does not
@pytest.mark.usefixtures("request_context")
@pytest.mark.parametrize("allowed", [False, True])
def test_free_text_only_when_allowed(
    allowed: bool, populated: Session, admin: StaffUser, definition: Definition, out_dir: Path
) -> None:
    admin.can_read_free_text = allowed
    populated.commit()
    names, _rows = read_rows(export(populated, definition, admin, out_dir, "dta", k=1).zip_path)
    assert ("after_COMMENT" in names) is allowed
    assert "retro_COMMENT" not in names  # the light retro form asks no free text
    long_names, _ = read_rows(export(populated, definition, admin, out_dir, "csv", "long").zip_path)
    assert ("text" in long_names) is allowed


@pytest.mark.usefixtures("request_context")
def test_bundle_holds_codebook_and_report_and_is_logged(
    populated: Session, admin: StaffUser, definition: Definition, out_dir: Path
) -> None:
    result = export(populated, definition, admin, out_dir, "sav", args={"form": "before"})
    with zipfile.ZipFile(result.zip_path) as zipped:
        names = set(zipped.namelist())
        package = json.loads(zipped.read("datapackage.json"))
        report_text = zipped.read("anonymisation-report.txt").decode()
        pdf = zipped.read("codebook.pdf")
        html = zipped.read("codebook.html").decode()
    assert names == {
        "data.sav",
        "datapackage.json",
        "codebook.html",
        "codebook.pdf",
        "anonymisation-report.txt",
        "anonymisation-report.json",
    }
    fields = {f["name"]: f for f in package["resources"][0]["schema"]["fields"]}
    assert fields["before_COMFORT"]["constraints"]["enum"] == [1, 2, 3, 4]
    assert fields["before_T01"]["selfcheck:competence"] == "operational"
    # An item on the topics scale names a topic with each option (the codebook's crosswalk).
    assert fields["after_TOPICS_2"]["selfcheck:coop_topic"] == "prendre_en_main_du_materiel"
    assert fields["pseudonym"]["type"] == "string"
    assert "after_COMFORT" in fields  # the layout does not depend on the filters
    assert "Seuil d'anonymat k : 5." in report_text
    assert pdf.startswith(b"%PDF")
    assert "before_T01" in html and 'lang="en"' in html
    log = populated.scalars(select(ExportLog)).one()
    assert log.user_id == admin.id and log.kind == "sav-wide" and log.k == 5
    assert log.row_count == result.rows
    assert json.loads(log.filters)["forms"] == ["before"]
    assert json.loads(log.report)["people_exported"] == result.report["people_exported"]


@pytest.mark.usefixtures("request_context")
def test_fewer_than_k_people_exports_nothing(
    populated: Session, admin: StaffUser, definition: Definition, out_dir: Path
) -> None:
    with pytest.raises(ScopeError) as caught:
        export(populated, definition, admin, out_dir, "csv", k=41)
    assert caught.value.status == 422
    assert populated.scalars(select(ExportLog)).first() is None


@pytest.mark.parametrize(
    "args", [{"format": "pdf"}, {"format": ""}, {"format": "csv", "shape": "diagonal"}]
)
def test_unknown_format_or_shape_is_refused(app: Flask, args: dict[str, str]) -> None:
    with app.test_request_context("/"), pytest.raises(ScopeError) as caught:
        bundle.parse_request(args)
    assert caught.value.status == 400
