"""One export, end to end: check the scope, plan the anonymisation, write the data file, the
codebook and the report into a zip, log it. Everything goes through temporary files, so memory
stays bounded whatever the number of rows; the caller sends the zip and deletes the folder.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import random
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from flask import current_app
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from selfcheck.evaluation import anonymise, codebook, csv_wide, differencing, joins
from selfcheck.evaluation.disclosure import is_small
from selfcheck.evaluation.export import Layout, Shape, Written, write_rows
from selfcheck.evaluation.scope import (
    EvaluationFilters,
    ScopeError,
    require_at_least_k,
)
from selfcheck.evaluation.writers import WRITERS, Writer
from selfcheck.evaluation.writers.csv_writer import CsvWriter
from selfcheck.platform.i18n import text_direction
from selfcheck.platform.models import ExportLog, ExportSelection, Role, StaffUser
from selfcheck.questionnaire.model import Definition

logger = logging.getLogger(__name__)

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
    focus: str | None = None  # code of an analysis focus of the item bank


def parse_request(args: Mapping[str, str], definition: Definition | None = None) -> ExportRequest:
    """The chosen format, shape and analysis focus, or ScopeError (400) with a message."""
    chosen = (args.get("format") or "").strip()
    if chosen not in WRITERS:
        raise ScopeError(_l("Format d'export inconnu. Choisissez un format dans la liste."))
    focus = parse_focus(args.get("focus"), definition) if definition is not None else None
    return ExportRequest(chosen, parse_shape(args.get("shape")), focus)


def parse_focus(raw: str | None, definition: Definition) -> str | None:
    """The analysis focus chosen (None: all columns weigh as the item bank says)."""
    code = (raw or "").strip()
    if not code:
        return None
    if definition.disclosure.focus_named(code) is None:
        raise ScopeError(_l("Priorité d'analyse inconnue. Choisissez-la dans la liste."))
    return code


def focus_choices(definition: Definition) -> list[tuple[str, str]]:
    """The analysis focuses offered on the export page, first "none"."""
    return [("", _("Aucune : équilibre entre toutes les colonnes"))] + [
        (focus.code, _(focus.label)) for focus in definition.disclosure.focus
    ]


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
    db: Session,
    filters: EvaluationFilters,
    k: int,
    definition: Definition,
    focus: str | None = None,
    memory: Callable[[Sequence[int]], joins.Memory] | None = None,
    *,
    read: csv_wide.ReadOnce | None = None,
    rng: random.Random | None = None,
) -> anonymise.Plan:
    """What an export with these filters would release (levels, masks, people left out).

    `memory`: the evaluator's earlier exports, given the people in scope (`remembered`).
    `read`: the people already read (`csv_wide.read_once`), instead of reading them (and
    counting them: the same responses in scope, `response_conditions`, so the same people as
    `count_people` would count, in the read's snapshot)."""
    if read is None:
        require_at_least_k(db, filters, k)
        return anonymise.plan(db, filters, k, definition, focus, rng=rng, memory=memory)
    people = len(read.ids)
    require_at_least_k(db, filters, k, count=lambda _db, _filters: people)
    return anonymise.plan_records(
        read.ids,
        read.records,
        read.departments,
        k,
        definition,
        focus,
        rng=rng,
        memory=memory(read.ids) if memory is not None else None,
    )


@contextlib.contextmanager
def _earlier_objects_set_aside() -> Iterator[None]:
    """The objects alive before an export (the application's modules, its caches: about
    140,000 in a job worker) left out of the garbage collector's passes while it runs
    (`gc.freeze`), then given back (`gc.unfreeze`: nothing is kept that would not be).

    An export makes many container objects that live until it ends (each person's record
    and decisions): in a 1 M answer-row export they start one full collection, which walked
    every object of the process for each (0.05-0.1 s of CPU, docs/performance.md, "eighth
    pass"); it now walks the export's own. Objects still collect as before, the earlier
    ones at the first full collection after the export. Left alone when something else has
    frozen objects (its freeze is not ours to undo)."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@_earlier_objects_set_aside()  # a context manager made by contextmanager decorates too
def plan_and_write(
    db: Session,
    filters: EvaluationFilters,
    k: int,
    definition: Definition,
    focus: str | None,
    memory: Callable[[Sequence[int]], joins.Memory] | None,
    layout: Layout,
    writer: Writer,
    key: bytes,
    *,
    before_writing: Callable[[anonymise.Plan], None] | None = None,
    rng: random.Random | None = None,
) -> tuple[anonymise.Plan, Written]:
    """Plan the anonymisation (`preview`), call `before_writing` (which may refuse the
    export: nothing is written then), then write the people of the plan into `writer`.

    CSV wide reads the people once (`csv_wide`: the plan's records and the rows from one
    statement); the other formats and shapes read them for the plan, then again in the
    plan's order (`export.write_rows`). The objects alive before it are left out of the
    garbage collector's passes meanwhile (`_earlier_objects_set_aside`, the decorator)."""
    if not csv_wide.reads_once(layout, writer):
        plan = preview(db, filters, k, definition, focus, memory, rng=rng)
        if before_writing is not None:
            before_writing(plan)
        written = write_rows(db, filters, layout, plan, key, writer.write_prepared, writer.prepare)
        return plan, written
    assert isinstance(writer, CsvWriter)
    with csv_wide.read_once(db, filters, layout, writer) as read:
        plan = preview(db, filters, k, definition, focus, memory, read=read, rng=rng)
        read.records = []  # the plan is made: its raw records are no longer needed
        if before_writing is not None:
            before_writing(plan)
        return plan, csv_wide.write_read_once(read, layout, plan, key, writer)


def remembered(
    db: Session, user: StaffUser, secret: str | bytes, *, lock: bool = False
) -> Callable[[Sequence[int]], joins.Memory]:
    """What `preview` needs to keep the join of this evaluator's exports k-anonymous."""
    return lambda people: joins.load(db, user, people, secret, lock=lock)


EARLIER_AT_ONCE = 8  # earlier selections fetched at a time by `check_differencing`


def check_differencing(db: Session, user: StaffUser, people: list[str], k: int) -> None:
    """ScopeError (422) when `people` differ from an earlier export or view of this
    evaluator by more than 0 and fewer than k people (the difference would single them
    out), or when sums and differences of this and earlier selections would isolate 1 to
    k - 1 people (`differencing.isolates`: composition, and the same selection again after
    a few new answers).

    `people`: the selection's lines (`differencing.selection_lines`: a person's hash and that
    of their responses), so that a person of both selections who sent another form since
    counts as different, as on views; bare person hashes (exports logged before) compare on
    the people only (`differencing.people_differing`)."""
    wanted = set(people)
    persons = frozenset(differencing.person_of(line) for line in wanted)
    # Two columns, streamed a few rows at a time: the mapped rows were all fetched at once
    # (an ORM result is buffered before the first row is looked at), every earlier export's
    # blob with its row.
    earlier = db.execute(
        select(
            ExportSelection.id,
            ExportSelection.people,
            ExportSelection.lines,
            ExportSelection.base_id,
        )
        .join(ExportLog, ExportLog.id == ExportSelection.export_id)
        # Figures' and tables' groups (guard_figures, guard_tables) are compared only with
        # their own kind.
        .where(
            ExportSelection.user_id == user.id,
            ExportLog.kind.not_in((differencing.FIGURES_KIND, differencing.TABLES_KIND)),
        )
        .order_by(ExportSelection.id.desc())
        .execution_options(yield_per=EARLIER_AT_ONCE)
    )
    earlier_people: list[frozenset[str]] = []
    # Each person's hash kept once, whichever selections hold it: the earlier selections
    # mostly hold the same people, and a string of each for each of them grew the export's
    # peak by about 1.5 MB per earlier export at 20,000 people.
    same = {person: person for person in persons}
    with earlier:  # closed when a refusal leaves the loop early (PostgreSQL: a server cursor)
        for row_id, stored, blob, base_id in earlier:
            lines = set(differencing.row_lines(db, row_id, stored, blob, base_id))
            earlier_people.append(
                frozenset(
                    same.setdefault(person, person) for person in map(differencing.person_of, lines)
                )
            )
            if is_small(differencing.people_differing(wanted, lines), k):
                _refuse_export(user, k, "differs from an earlier export by fewer than k people")
    if differencing.isolates(persons, differencing.linked(persons, earlier_people), k):
        _refuse_export(user, k, "with earlier selections, isolates fewer than k people")


def _refuse_export(user: StaffUser, k: int, why: str) -> NoReturn:
    logger.warning("export refused: %s", why, extra={"user_id": user.id, "k": k})
    raise ScopeError(
        _l(
            "Cet export différerait d'un export précédent de moins de %(k)s "
            "personnes : les comparer permettrait de reconnaître ces personnes. "
            "Rien n'a été exporté. Reprenez exactement la même sélection ou "
            "élargissez-la.",
            k=k,
        ),
        422,
    )


# The steps of an export shown on its job's page (`run_export`'s `step`; export_job.py).
STEPS = 4


def run_export(
    db: Session,
    definition: Definition,
    user: StaffUser,
    filters: EvaluationFilters,
    request: ExportRequest,
    k: int,
    directory: Path,
    secret: str | bytes | None = None,
    step: Callable[[int], None] = lambda _done: None,
) -> ExportResult:
    """Write the zip bundle into `directory` (a fresh temporary folder) and log the export.

    Refused (ScopeError 422, nothing written) when the people released would differ from an
    earlier export of this evaluator by fewer than k; `secret` keys the hashes kept for
    that check (the app's secret key by default). `step` is told each of the export's steps
    done (`STEPS` in all: the codebook PDF ready, the answers read and the anonymisation
    planned, the data file written; the bundle is the last), for a job's progress page.
    """
    key = secret if secret is not None else current_app.secret_key or ""
    free_text = bool(user.can_read_free_text)
    layout = Layout(definition, request.shape, free_text)
    writer_class = WRITERS[request.format]
    data_name = f"data.{writer_class.extension}"
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    checked: list[_Checked] = []  # one: the check runs just before the rows are written

    def check(plan: anonymise.Plan) -> None:
        checked.append(_check_selection(db, user, filters, key, k))
        step(2)  # the answers read, the anonymisation planned and checked

    # The codebook's PDF depends on the item bank, the shape, the free-text choice and the
    # language, not on the data. When it is not kept yet (the first export after a
    # deployment, before the job worker rendered it ahead), a child process renders it,
    # about 190 MB for 8 s: now, while this process is at its smallest, rather than after
    # the plan and the rows, when both processes would be at their largest together
    # (docs/performance.md, "The export's memory, every process counted").
    codebook.render_ahead(definition, request.shape, free_text)
    step(1)  # the codebook PDF ready
    writer = writer_class(directory / data_name, layout.columns, _("Export anonymisé selfcheck"))
    with _removed_unless_written(writer, directory / data_name):
        # The evaluator's earlier exports, held until this one is logged (joins.py).
        plan, written = plan_and_write(
            db,
            filters,
            k,
            definition,
            request.focus,
            remembered(db, user, key, lock=True),
            layout,
            writer,
            anonymise.new_key(),
            before_writing=check,
        )
    step(3)  # the data file written; the bundle (zip, codebook, report) is the last step
    report = _report(plan, written.rows, request, free_text, filters)
    book = codebook.for_data_file(
        codebook.build(definition, request.shape, free_text), data_name, request.format
    )
    book.report = report
    book.report_lines = report_lines(report)
    zip_path = _zip_bundle(directory, f"selfcheck-export-{stamp}.zip", data_name, book)
    log = _log_export(db, user, request, filters, written.rows, k, report)
    _remember(db, user, log, checked[0], plan, written, key)
    return ExportResult(zip_path, zip_path.name, written.rows, report, log.id)


def _remember(
    db: Session,
    user: StaffUser,
    log: ExportLog,
    seen: _Checked,
    plan: anonymise.Plan,
    written: Written,
    key: str | bytes,
) -> None:
    """The export's selection and what its file released, remembered with its log row (the
    same unit of work: a job that fails before here leaves no memory)."""
    # A view of this evaluator remembered since the check (on SQLite, where the row is not
    # held until the log row is written): MemoryChanged, the job fails, as for two exports
    # (differencing.py, "Two views at once"). On PostgreSQL the row is held since `preview`:
    # views wait for this export.
    differencing.hold_unchanged(db, user, seen.compared, seen.mark)
    # The same lines as a view's, kept the same way (binary records, `differencing.RECORD`).
    db.add(
        ExportSelection(
            export_id=log.id, user_id=user.id, count=seen.people, people="", lines=seen.records
        )
    )
    # Another export of this evaluator recorded since this one read the memory (two jobs at
    # once): MemoryChanged, the job fails and nothing is released (joins.record).
    released = {b: plan.digests[b] for b in written.released}
    joins.record(db, user, released, key, expected=plan.memory_stamp)
    db.flush()  # the view commits


def _report(
    plan: anonymise.Plan,
    rows: int,
    request: ExportRequest,
    free_text: bool,
    filters: EvaluationFilters,
) -> dict[str, Any]:
    """The anonymisation report: the plan's, and what was asked and written."""
    return {
        **plan.report(),
        "rows": rows,
        "format": request.format,
        "shape": request.shape.value,
        "free_text": free_text,
        "filters": filters.as_dict(),
    }


@dataclass(frozen=True)
class _Checked:
    """What the export's differencing check read, kept with its log row."""

    mark: int  # the evaluator's forgetting mark, read before the selection
    people: int  # how many lines the selection has
    records: bytes  # the selection's lines as binary records, as they are kept
    # The memory of views and exports this one was compared with, as it was at the check:
    # checked again once the log row is written.
    compared: differencing.MemoryStamp


def _check_selection(
    db: Session, user: StaffUser, filters: EvaluationFilters, key: str | bytes, k: int
) -> _Checked:
    """The export's selection compared with the evaluator's earlier ones (ScopeError when
    they would single out fewer than k people; `check_differencing`).

    Compared on the selection's people, as views are (the export page's preview is one),
    not on those written: people the plan leaves out would otherwise always be a difference
    of fewer than k from the preview just shown. Each person's hash and that of their
    responses: another form sent since by someone of the file counts as a difference, as on
    views. The forgetting mark first: an erasure committed after the selection is read and
    before the memory is (SQLite: not held meanwhile) fails the export (hold_unchanged)."""
    mark = differencing.forgetting_mark(db, user.id)
    selection = differencing.selection_records(db, filters, user, key)
    people = differencing.text_lines(selection)
    checked = _Checked(mark, len(people), selection.tobytes(), differencing.memory_stamp(db, user))
    check_differencing(db, user, people, k)
    return checked


@contextlib.contextmanager
def _removed_unless_written(writer: Writer, data_file: Path) -> Iterator[None]:
    """The writer closed once the rows are written; its file removed when the export is
    refused or fails: nothing left."""
    try:
        yield
    except BaseException:
        writer.close()
        data_file.unlink(missing_ok=True)
        raise
    writer.close()


def _zip_bundle(directory: Path, name: str, data_name: str, book: codebook.Codebook) -> Path:
    """The zip of the data file (then removed), its codebook and the anonymisation report."""
    zip_path = directory / name
    report = book.report
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.write(directory / data_name, data_name)
        bundle.writestr("datapackage.json", codebook.datapackage_json(book))
        bundle.writestr("codebook.html", codebook.html(book))
        bundle.writestr("codebook.pdf", codebook.pdf(book))  # kept: rendered ahead
        bundle.writestr("anonymisation-report.txt", report_text(report))
        bundle.writestr(
            "anonymisation-report.json", json.dumps(report, ensure_ascii=False, indent=2)
        )
    (directory / data_name).unlink()
    return zip_path


def _log_export(
    db: Session,
    user: StaffUser,
    request: ExportRequest,
    filters: EvaluationFilters,
    rows: int,
    k: int,
    report: Mapping[str, Any],
) -> ExportLog:
    """The export's log row, flushed: its id keys what the export released."""
    log = ExportLog(
        user_id=user.id,
        kind=f"{request.format}-{request.shape.value}",
        filters=json.dumps(filters.as_dict(), ensure_ascii=False),
        row_count=rows,
        k=k,
        report=json.dumps(report, ensure_ascii=False),
    )
    db.add(log)
    db.flush()
    return log


def report_lines(report: Mapping[str, Any]) -> list[str]:
    """The anonymisation report in sentences (zip, screen, log page): per quasi-identifier
    the level released and the share masked; the shift of each demographic share (categories
    of at least k people); the people left out.

    In a right-to-left language (Arabic) the column names, their categories and the signed
    shifts are isolated left to right (U+2066 … U+2069, as the codebook's codes are): a line
    that began with "gender = feminin" took the Arabic sentence's figures into its
    left-to-right run ("% gender = feminin: 75.2" on the demo, round 23)."""
    code = _isolated if text_direction(str(get_locale() or "")) == "rtl" else str
    if "columns" not in report:  # an export logged before every column counted
        return [_("Seuil d'anonymat k : %(k)s.", k=report.get("k", "?"))]
    lines = [
        _("Seuil d'anonymat k : %(k)s.", k=report["k"]),
        _("Personnes dans le périmètre : %(n)s.", n=report["people_in_scope"]),
        _("Personnes exportées : %(n)s.", n=report["people_exported"]),
        _(
            "Personnes écartées de l'export (trop rares même après masquage) : %(n)s.",
            n=report["people_left_out"] - report.get("people_left_out_for_earlier_exports", 0),
        ),
        _(
            "Personnes dont au moins une caractéristique (âge, genre, diplôme, situation, "
            "lieu de vie) est masquée : %(n)s.",
            n=report["people_with_demographic_masked"],
        ),
    ]
    if "people_left_out_for_earlier_exports" in report:  # exports logged since joins.py
        lines.insert(
            4,
            _(
                "Personnes écartées à cause de vos exports précédents (joints à celui-ci, "
                "ils permettraient de les reconnaître) : %(n)s.",
                n=report["people_left_out_for_earlier_exports"],
            ),
        )
    if report.get("focus"):
        lines.append(_("Priorité d'analyse : %(focus)s.", focus=code(report["focus"])))
    for column in report["columns"]:
        if column["constant"]:
            lines.append(
                _(
                    "%(column)s : publié tel quel (même valeur pour tout le monde).",
                    column=code(column["column"]),
                )
            )
            continue
        masked = "{:.1f}".format(100 * column["masked_share"])
        lines.append(
            _(
                "%(column)s : niveau « %(level)s », %(share)s %% des personnes masquées.",
                column=code(column["column"]),
                level=level_label(column["level"]),
                share=masked,
            )
        )
    return lines + _share_lines(report, code)


def _share_lines(report: Mapping[str, Any], code: Callable[[object], str]) -> list[str]:
    """The report's shift of each demographic share, true against released (`code`: how
    names, categories and shifts are shown, isolated in a right-to-left language)."""
    lines: list[str] = []
    shares_by_column = report.get("shares", {})
    if any(shares_by_column.values()) and "shares_compared" in report:
        # The truth of the same people as the file: those left out are counted apart.
        lines.append(
            ngettext(
                "Parts ci-dessous : %(num)s personne exportée, ses réponses vraies "
                "comparées à celles du fichier. Les personnes écartées n'y figurent pas "
                "(%(out)s).",
                "Parts ci-dessous : les %(num)s personnes exportées, leurs réponses vraies "
                "comparées à celles du fichier. Les personnes écartées n'y figurent pas "
                "(%(out)s).",
                report["shares_compared"],
                out=report["people_left_out"],
            )
        )
    for column, shares in shares_by_column.items():
        for share in shares:
            lines.append(
                _(
                    "%(column)s = %(category)s : %(true)s %% en vrai, %(released)s %% publié "
                    "(écart %(shift)s points).",
                    column=code(column),
                    category=code(share["category"]),
                    true=share["true_share"],
                    released=share["released_share"],
                    shift=code(share["shift"]),
                )
            )
    return lines


def _isolated(text: object) -> str:
    return f"\u2066{text}\u2069"


LEVEL_LABELS: Mapping[str, object] = {
    "raw": _l("tel quel"),
    "masked": _l("masqué pour tous"),
    "department": _l("département (structures regroupées)"),
    "region": _l("région (départements regroupés)"),
    "national": _l("national (aucun lieu)"),
    "quarter": _l("trimestre"),
    "year": _l("année"),
    "broad_bands": _l("grandes tranches"),
    "two_bands": _l("moins de 60 ans ou 60 ans et plus"),
    "grouped": _l("modalités regroupées"),
    "online_or_not": _l("en ligne ou non"),
}


def level_label(level: str) -> str:
    return str(LEVEL_LABELS.get(level, level))


def report_text(report: Mapping[str, Any]) -> str:
    return "\n".join(report_lines(report)) + "\n"


def export_log(db: Session, user: StaffUser, limit: int = 200) -> list[ExportLog]:
    """Exports to list: a platform admin sees everyone's, an evaluator their own."""
    query = select(ExportLog).order_by(ExportLog.at.desc(), ExportLog.id.desc()).limit(limit)
    if Role(user.role) is not Role.PLATFORM_ADMIN:
        query = query.where(ExportLog.user_id == user.id)
    return list(db.scalars(query))
