"""One export, end to end: check the scope, plan the anonymisation, write the data file, the
codebook and the report into a zip, log it. Everything goes through temporary files, so memory
stays bounded whatever the number of rows; the caller sends the zip and deletes the folder.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.evaluation import anonymise, codebook
from selfcheck.evaluation.export import Layout, Shape, write_rows
from selfcheck.evaluation.scope import (
    EvaluationFilters,
    ScopeError,
    require_at_least_k,
)
from selfcheck.evaluation.writers import WRITERS
from selfcheck.platform.models import ExportLog, Role, StaffUser
from selfcheck.questionnaire.model import Definition

FORMAT_LABELS: Mapping[str, object] = {
    "csv": _l("CSV (UTF-8, virgules)"),
    "csv-excel": _l("CSV pour Excel en français (points-virgules)"),
    "xlsx": _l("Excel (XLSX)"),
    "sav": _l("SPSS (.sav)"),
    "dta": _l("Stata (.dta)"),
}
SHAPE_LABELS: Mapping[str, object] = {
    "wide": _l("Large : une ligne par personne, questionnaires côte à côte"),
    "long": _l("Longue : une ligne par personne, questionnaire et variable"),
}


@dataclass(frozen=True)
class ExportRequest:
    format: str
    shape: Shape


def parse_request(args: Mapping[str, str]) -> ExportRequest:
    """The chosen format and shape, or ScopeError (400) with a message to show."""
    chosen = (args.get("format") or "").strip()
    if chosen not in WRITERS:
        raise ScopeError(_l("Format d'export inconnu. Choisissez un format dans la liste."))
    return ExportRequest(chosen, parse_shape(args.get("shape")))


def parse_shape(raw: str | None) -> Shape:
    shape = (raw or "wide").strip()
    if shape not in {s.value for s in Shape}:
        raise ScopeError(_l("Forme d'export inconnue. Choisissez « large » ou « longue »."))
    return Shape(shape)


@dataclass
class ExportResult:
    zip_path: Path
    filename: str
    rows: int
    report: dict[str, Any]
    log_id: int


def preview(
    db: Session, filters: EvaluationFilters, k: int, definition: Definition
) -> anonymise.Plan:
    """What an export with these filters would generalise and suppress (counts only)."""
    require_at_least_k(db, filters, k)
    counts = anonymise.profile_counts(db, filters, definition)
    places = anonymise.structure_places(db, filters.structure_ids)
    return anonymise.plan(counts, k, places, definition)


def run_export(
    db: Session,
    definition: Definition,
    user: StaffUser,
    filters: EvaluationFilters,
    request: ExportRequest,
    k: int,
    directory: Path,
) -> ExportResult:
    """Write the zip bundle into `directory` (a fresh temporary folder) and log the export."""
    plan = preview(db, filters, k, definition)
    free_text = bool(user.can_read_free_text)
    layout = Layout(definition, request.shape, free_text)
    writer_class = WRITERS[request.format]
    data_name = f"data.{writer_class.extension}"
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    writer = writer_class(directory / data_name, layout.columns, _("Export anonymisé selfcheck"))
    try:
        written = write_rows(db, filters, layout, plan, anonymise.new_key(), writer.write)
    finally:
        writer.close()
    report = {
        **plan.report(),
        "rows": written.rows,
        "format": request.format,
        "shape": request.shape.value,
        "free_text": free_text,
        "filters": filters.as_dict(),
    }
    book = codebook.for_data_file(
        codebook.build(definition, request.shape, free_text), data_name, request.format
    )
    book.report = report
    book.report_lines = report_lines(report)
    zip_path = directory / f"selfcheck-export-{stamp}.zip"
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.write(directory / data_name, data_name)
        bundle.writestr("datapackage.json", codebook.datapackage_json(book))
        bundle.writestr("codebook.html", codebook.html(book))
        bundle.writestr("codebook.pdf", codebook.pdf(book))
        bundle.writestr("anonymisation-report.txt", report_text(report))
        bundle.writestr(
            "anonymisation-report.json", json.dumps(report, ensure_ascii=False, indent=2)
        )
    (directory / data_name).unlink()
    log = ExportLog(
        user_id=user.id,
        kind=f"{request.format}-{request.shape.value}",
        filters=json.dumps(filters.as_dict(), ensure_ascii=False),
        row_count=written.rows,
        k=k,
        report=json.dumps(report, ensure_ascii=False),
    )
    db.add(log)
    db.flush()  # the log's id; the view commits
    return ExportResult(zip_path, zip_path.name, written.rows, report, log.id)


def report_lines(report: Mapping[str, Any]) -> list[str]:
    """The anonymisation report in a few sentences (zip, screen, log page)."""
    return [
        _("Seuil d'anonymat k : %(k)s.", k=report["k"]),
        _("Personnes dans le périmètre : %(n)s.", n=report["people_in_scope"]),
        _("Niveau géographique publié : %(level)s.", level=geography_label(report["geography"])),
        _("Âge publié : %(level)s.", level=age_label(report["age"])),
        _(
            "Personnes dont les caractéristiques ont été masquées : %(n)s.",
            n=report["people_with_values_suppressed"],
        ),
        _("Personnes écartées de l'export : %(n)s.", n=report["people_left_out"]),
        _("Personnes exportées : %(n)s.", n=report["people_exported"]),
    ]


def report_text(report: Mapping[str, Any]) -> str:
    return "\n".join(report_lines(report)) + "\n"


GEOGRAPHY_LABELS: Mapping[str, object] = {
    "structure": _l("structure"),
    "department": _l("département (structures regroupées)"),
    "region": _l("région (départements regroupés)"),
    "national": _l("national (aucun lieu)"),
}
AGE_LEVEL_LABELS: Mapping[str, object] = {
    "bands": _l("tranches d'âge du questionnaire"),
    "broad_bands": _l("trois grandes tranches (moins de 25 ans, 25 à 59 ans, 60 ans ou plus)"),
    "removed": _l("retiré"),
}


def geography_label(level: str) -> str:
    return str(GEOGRAPHY_LABELS.get(level, level))


def age_label(level: str) -> str:
    return str(AGE_LEVEL_LABELS.get(level, level))


def export_log(db: Session, user: StaffUser, limit: int = 200) -> list[ExportLog]:
    """Exports to list: a platform admin sees everyone's, an evaluator their own."""
    query = select(ExportLog).order_by(ExportLog.at.desc(), ExportLog.id.desc()).limit(limit)
    if Role(user.role) is not Role.PLATFORM_ADMIN:
        query = query.where(ExportLog.user_id == user.id)
    return list(db.scalars(query))
