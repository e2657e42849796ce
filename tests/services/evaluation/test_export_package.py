"""datapackage.json validates with frictionless, data included; the three missing codes."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from frictionless import validate
from sqlalchemy.orm import Session

from selfcheck.evaluation import bundle
from selfcheck.evaluation.export import Shape
from selfcheck.evaluation.scope import parse_filters
from selfcheck.platform.models import StaffUser
from selfcheck.questionnaire.model import Definition


@pytest.mark.usefixtures("request_context")
@pytest.mark.parametrize("fmt", ["csv", "csv-excel"])
def test_the_data_package_is_valid(
    fmt: str, populated: Session, admin: StaffUser, definition: Definition, out_dir: Path
) -> None:
    filters = parse_filters(populated, admin, {})
    request = bundle.ExportRequest(fmt, Shape.WIDE)
    result = bundle.run_export(populated, definition, admin, filters, request, 5, out_dir)
    folder = out_dir / "unzipped"
    with zipfile.ZipFile(result.zip_path) as archive:
        archive.extractall(folder)
    descriptor = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    schema = descriptor["resources"][0]["schema"]
    assert schema["missingValues"] == ["", "-8", "-7"]
    assert set(descriptor["selfcheck:missing"]) == {"", "-8", "-7"}
    report = validate(str(folder / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:10]
    codebook = (folder / "codebook.html").read_text(encoding="utf-8")
    assert "Valeurs manquantes" in codebook and "Masqué pour l" in codebook
    text = (folder / "anonymisation-report.txt").read_text(encoding="utf-8")
    assert "Personnes écartées" in text and "niveau" in text
