"""The codebook of an export: every column, its question in each language, its value labels,
the form(s) and definition version it comes from, and the Coop topic / competence crosswalk.

Three renderings of the same `Codebook`: `datapackage.json` (Frictionless Data package with a
Table Schema), `codebook.html` (printable/codebook.html) and `codebook.pdf` (the same HTML
through WeasyPrint, tagged PDF/UA-1, fetching only files of printable/). The app's codebook
page shows it too (templates/evaluator/codebook.html).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _

from selfcheck.evaluation.export import FORMS, Field, Layout, Shape, qi_values
from selfcheck.evaluation.writers.base import Missing
from selfcheck.paper import blank_cache
from selfcheck.paper.operations import PRINTABLE_DIR
from selfcheck.platform import printing
from selfcheck.platform.i18n import text_direction
from selfcheck.platform.labels import FORM_SHORT_LABELS
from selfcheck.questionnaire.answer_types import ExportKind, option_values
from selfcheck.questionnaire.model import (
    COMPETENCE_SCALE,
    COOP_TOPIC_SCALE,
    Definition,
    Item,
    Option,
)

TEMPLATE = "codebook.html"
STYLESHEET = "codebook.css"
FORMATS: Mapping[str, str] = {
    "csv": "csv",
    "csv-excel": "csv",
    "xlsx": "xlsx",
    "sav": "sav",
    "dta": "dta",
}


@dataclass(frozen=True)
class ValueLabel:
    value: int
    code: str  # the definition's code ("feminin"), or the value itself
    labels: Mapping[str, str]  # language -> label


@dataclass(frozen=True)
class Entry:
    name: str
    type: str  # Table Schema type: integer or string
    labels: Mapping[str, str]  # language -> question / description
    values: tuple[ValueLabel, ...] = ()
    forms: tuple[str, ...] = ()
    item: str | None = None
    option: str | None = None
    coop_topic: str | None = None
    competence: str | None = None


@dataclass
class Codebook:
    shape: str
    definition_id: str
    definition_version: str
    languages: tuple[str, ...]
    columns: list[Entry]
    # Long shape: the values of the `variable` column, described like columns of the wide one.
    variables: list[Entry] = field(default_factory=list)
    data_file: str = "data.csv"
    data_format: str = "csv"
    delimiter: str = ","
    report: Mapping[str, Any] = field(default_factory=dict)
    report_lines: list[str] = field(default_factory=list)
    created: str = ""
    free_text: bool = False  # the free-text columns are in (the evaluator may read them)


def _languages() -> tuple[str, ...]:
    languages: tuple[str, ...] = tuple(current_app.config["SELFCHECK_LANGUAGES"])
    return languages


def _crosswalk(definition: Definition, entry_field: Field) -> tuple[str | None, str | None]:
    item = entry_field.item
    topic, competence = item.coop_topic, item.competence
    if entry_field.option is not None:
        if item.scale == COOP_TOPIC_SCALE:
            topic = entry_field.option.code
        if item.scale == COMPETENCE_SCALE:
            competence = entry_field.option.code
    return topic, competence


def _values(
    options: Sequence[Option],
    translated: Mapping[str, Sequence[tuple[int, str]]],
    numbers: Mapping[str, int] | None = None,
) -> tuple[ValueLabel, ...]:
    numbers = option_values(options) if numbers is None else numbers
    codes = {value: code for code, value in numbers.items()}
    first = next(iter(translated.values()), ())
    return tuple(
        ValueLabel(
            value,
            codes.get(value, str(value)),
            {lang: dict(labels).get(value, "") for lang, labels in translated.items()},
        )
        for value, _label in first
    )


# A wide column's name -> its form and field (`{form}_{suffix}`).
Meta = dict[str, tuple[str, Field]]


def build(definition: Definition, shape: Shape, free_text: bool) -> Codebook:
    """The codebook of an export of this shape, texts in every configured language."""
    languages = _languages()
    layouts: dict[str, Layout] = {}
    for lang in languages:
        with force_locale(lang):
            layouts[lang] = Layout(definition, shape, free_text)
    base = layouts[languages[0]]
    meta: Meta = {}
    for kind in FORMS:
        for entry_field in base.fields[kind]:
            meta[f"{kind.value}_{entry_field.suffix}"] = (kind.value, entry_field)
    columns = _column_entries(definition, layouts, languages, meta)
    variables = (
        _long_variables(definition, languages, free_text, meta) if shape is Shape.LONG else []
    )
    return Codebook(
        shape=shape.value,
        definition_id=definition.id,
        definition_version=definition.version,
        languages=languages,
        columns=columns,
        variables=variables,
        created=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        free_text=free_text,
    )


def _column_entries(
    definition: Definition, layouts: Mapping[str, Layout], languages: Sequence[str], meta: Meta
) -> list[Entry]:
    """One entry per column of the file, in order (the layouts: one per language)."""
    base = layouts[languages[0]]
    qi_items: dict[str, Item] = {
        item.quasi_identifier.column: item
        for item in definition.quasi_identifiers()
        if item.quasi_identifier is not None
    }

    def entry(index: int, name: str, forms: tuple[str, ...], entry_field: Field | None) -> Entry:
        column = base.columns[index]
        labels = {lang: layouts[lang].columns[index].label for lang in languages}
        translated = {lang: layouts[lang].columns[index].value_labels for lang in languages}
        values: tuple[ValueLabel, ...] = ()
        quasi = qi_items.get(name) if entry_field is None else None
        if column.value_labels:
            item = entry_field.item if entry_field else quasi
            options = (
                item.options if item and (entry_field is None or entry_field.option is None) else ()
            )
            values = _values(options, translated, qi_values(quasi) if quasi else None)
        topic, competence = _crosswalk(definition, entry_field) if entry_field else (None, None)
        return Entry(
            name=name,
            type="integer" if column.kind is ExportKind.INT else "string",
            labels=labels,
            values=values,
            forms=forms,
            item=entry_field.item.code if entry_field else (quasi.code if quasi else None),
            option=entry_field.option.code if entry_field and entry_field.option else None,
            coop_topic=topic,
            competence=competence,
        )

    columns = []
    for index, column in enumerate(base.columns):
        found_meta = meta.get(column.name)
        if found_meta is None:
            columns.append(entry(index, column.name, (), None))
        else:
            columns.append(entry(index, column.name, (found_meta[0],), found_meta[1]))
    return columns


def _long_variables(
    definition: Definition, languages: Sequence[str], free_text: bool, meta: Meta
) -> list[Entry]:
    """A long file's variables (its `variable` column's values): one entry per field, with
    the forms it is asked in, read from the wide layout's columns."""
    wide = {lang: _wide_layout(definition, lang, free_text) for lang in languages}
    seen: dict[str, Entry] = {}
    for index, column in enumerate(wide[languages[0]].columns):
        if column.name not in meta:
            continue
        form, entry_field = meta[column.name]
        found = seen.get(entry_field.suffix)
        if found is not None:
            seen[entry_field.suffix] = Entry(**{**found.__dict__, "forms": (*found.forms, form)})
            continue
        labels = {lang: _strip_form(wide[lang].columns[index].label) for lang in languages}
        translated = {lang: wide[lang].columns[index].value_labels for lang in languages}
        options = entry_field.item.options if entry_field.option is None else ()
        topic, competence = _crosswalk(definition, entry_field)
        seen[entry_field.suffix] = Entry(
            name=entry_field.suffix,
            type="string" if column.kind is ExportKind.STR else "integer",
            labels=labels,
            values=_values(options, translated) if column.value_labels else (),
            forms=(form,),
            item=entry_field.item.code,
            option=entry_field.option.code if entry_field.option else None,
            coop_topic=topic,
            competence=competence,
        )
    return list(seen.values())


def _wide_layout(definition: Definition, lang: str, free_text: bool) -> Layout:
    with force_locale(lang):
        return Layout(definition, Shape.WIDE, free_text)


def _strip_form(label: str) -> str:
    return label.split("] ", 1)[1] if label.startswith("[") and "] " in label else label


def for_data_file(codebook: Codebook, data_file: str, data_format: str) -> Codebook:
    codebook.data_file = data_file
    codebook.data_format = FORMATS.get(data_format, data_format)
    codebook.delimiter = ";" if data_format == "csv-excel" else ","
    return codebook


MISSING_CODES = tuple(m.value for m in Missing)


# Stata's missing codes in a sentence (".a", ".b"; the catalogs keep them as they are).
_STATA_CODE = re.compile(r"(?<![\w.])\.[ab](?!\w)")


def missing_rows(direction: str = "ltr") -> list[tuple[str, str]]:
    """The three kinds of missing value and their code in the data files (codebook rows).

    Shown in a right-to-left language (`direction` "rtl"), Stata's ".a" in the sentence is
    isolated left to right (U+2066 … U+2069): in Arabic text it was drawn "a.", on the page
    and in the PDF. The data package's copy keeps the plain text."""
    rows = _missing_rows()
    if direction != "rtl":
        return rows
    return [
        (code, _STATA_CODE.sub(lambda found: f"\u2066{found.group()}\u2069", meaning))
        for code, meaning in rows
    ]


def _missing_rows() -> list[tuple[str, str]]:
    return [
        ("", _("Question non posée (vide ; « . » dans Stata, manquant système dans SPSS)")),
        (
            str(Missing.NO_ANSWER.value),
            _("Sans réponse : question posée, aucune réponse (.a dans Stata)"),
        ),
        (
            str(Missing.MASKED.value),
            _("Masqué pour l'anonymat (.b dans Stata)"),
        ),
    ]


# --- Frictionless Data package ---------------------------------------------------------------


def datapackage(codebook: Codebook) -> dict[str, Any]:
    """datapackage.json: one tabular resource (the data file) with its Table Schema."""
    lang = str(get_locale() or codebook.languages[0])
    if lang not in codebook.languages:
        lang = codebook.languages[0]
    fields = []
    for entry in codebook.columns:
        described: dict[str, Any] = {
            "name": entry.name,
            "type": entry.type,
            "title": entry.labels[lang],
            "description": " / ".join(
                f"{language}: {entry.labels[language]}" for language in codebook.languages
            ),
        }
        if entry.values:
            enum = [v.value for v in entry.values if v.value not in MISSING_CODES]
            if enum:
                described["constraints"] = {"enum": enum}
            described["valueLabels"] = {
                str(value.value): value.labels[lang] for value in entry.values
            }
        if entry.forms:
            described["selfcheck:forms"] = list(entry.forms)
        for key in ("item", "option", "coop_topic", "competence"):
            if getattr(entry, key):
                described[f"selfcheck:{key}"] = getattr(entry, key)
        fields.append(described)
    resource: dict[str, Any] = {
        "name": "responses",
        "path": codebook.data_file,
        "format": codebook.data_format,
        "profile": "tabular-data-resource",
        "schema": {"fields": fields, "missingValues": ["", *(str(c) for c in MISSING_CODES)]},
    }
    if codebook.data_format == "csv":
        resource["encoding"] = "utf-8-sig" if codebook.delimiter == ";" else "utf-8"
        resource["dialect"] = {"delimiter": codebook.delimiter, "header": True}
    package: dict[str, Any] = {
        "profile": "tabular-data-package",
        "name": "selfcheck-export",
        "title": _("Export anonymisé selfcheck"),
        "created": _rfc3339(codebook.created),
        "selfcheck:definition": {
            "id": codebook.definition_id,
            "version": codebook.definition_version,
        },
        "selfcheck:shape": codebook.shape,
        "selfcheck:anonymisation": dict(codebook.report),
        "selfcheck:missing": dict(missing_rows()),
        "resources": [resource],
    }
    if codebook.variables:
        package["selfcheck:variables"] = [
            {
                "name": entry.name,
                "title": entry.labels[lang],
                "forms": list(entry.forms),
                "valueLabels": {str(v.value): v.labels[lang] for v in entry.values},
            }
            for entry in codebook.variables
        ]
    return package


def _rfc3339(created: str) -> str:
    """The codebook's "2026-03-31 14:05 UTC" as Data Package wants it (RFC 3339)."""
    try:
        moment = datetime.strptime(created, "%Y-%m-%d %H:%M UTC")
    except ValueError:
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:00Z")


def datapackage_json(codebook: Codebook) -> bytes:
    return json.dumps(datapackage(codebook), ensure_ascii=False, indent=2).encode("utf-8")


# --- HTML and PDF ----------------------------------------------------------------------------


def _printable_dir() -> Path:
    return Path(current_app.config.get("SELFCHECK_PRINTABLE_DIR") or PRINTABLE_DIR).resolve()


def _printer() -> printing.Printer:
    return printing.printer(_printable_dir())


def form_names() -> dict[str, str]:
    return {kind: str(label) for kind, label in FORM_SHORT_LABELS.items()}


def html(codebook: Codebook) -> str:
    lang = str(get_locale() or codebook.languages[0])
    template = _printer().env.get_template(TEMPLATE)
    return template.render(
        codebook=codebook,
        lang=lang if lang in codebook.languages else codebook.languages[0],
        form_names=form_names(),
        missing=missing_rows(text_direction(lang)),
        # Each language's direction (as the app's pages have it): the page's, and each
        # question's paragraph's (codebook_tables.html).
        language_dir={language: text_direction(language) for language in codebook.languages},
    )


_pdf_cache: dict[tuple[object, ...], bytes] = {}
_lock = threading.Lock()
PDF_CACHE_SIZE = 32


def pdf_name(shape: str, free_text: bool, languages: Sequence[str], lang: str) -> str:
    """The codebook PDF's file name in the cache of rendered files (paper/blank_cache.py): a
    hash of everything its bytes depend on. Its columns follow from the item bank, the shape
    and the free-text choice; its texts from the language and the package's files."""
    definition: Definition = current_app.extensions["selfcheck.definition"]
    parts = {
        "codebook": shape,
        "free_text": free_text,
        "languages": list(languages),
        "lang": lang,
        "definition": blank_cache.definition_parts(definition),
        **blank_cache.software_parts(_printable_dir()),
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return f"codebook-{digest}{blank_cache.SUFFIX}"


def pdf(codebook: Codebook) -> bytes:
    """The codebook as a tagged PDF. It does not depend on the data (the anonymisation report
    is a file of its own in the bundle, the data file is named data.*, and the export's date
    is in the bundle's other files, not in the PDF), so one rendering serves every export of
    the same item bank, shape, free-text choice and language: kept in the cache folder of
    rendered files (paper/blank_cache.py; rendered ahead by the job worker, selfcheck/
    prefill.py), else in this process. Rendering takes seconds and a process of its own."""
    lang = str(get_locale() or codebook.languages[0])
    name = pdf_name(codebook.shape, codebook.free_text, codebook.languages, lang)
    folder = blank_cache.folder(current_app)
    key = (id(current_app), name)
    if folder is not None:
        data = blank_cache.read_complete(folder / name)
        if data:
            return data
    else:
        with _lock:
            cached = _pdf_cache.get(key)
        if cached is not None:
            return cached
    data = _render_pdf(_plain(codebook))
    if folder is not None:
        blank_cache.store(folder, folder / name, data)
        return data
    with _lock:
        if len(_pdf_cache) >= PDF_CACHE_SIZE:
            _pdf_cache.clear()
        _pdf_cache[key] = data
    return data


def _plain(codebook: Codebook) -> Codebook:
    """The codebook as its PDF shows it: nothing of one export (report, data file, date)."""
    return Codebook(
        **{
            **codebook.__dict__,
            "report": {},
            "report_lines": [],
            "data_file": "data.*",
            "created": "",
        }
    )


# Set by the job worker only (`selfcheck worker`: selfcheck/prefill.py, `Rechain.wait_for`):
# given a codebook PDF's file name missing from the folder, the `jobs.JobDeferred` the export
# raises to wait in the queue while a process holding no app renders it, or None (rendered
# here).
WAIT_KEY = "selfcheck.codebook.wait"


def render_ahead(definition: Definition, shape: Shape, free_text: bool) -> bool:
    """Render now the PDF `pdf` will give for a codebook of this shape and free-text choice
    in the current language, if it is not kept yet (in the folder of rendered files, else in
    this process); whether it was rendered. For an export job: called before its plan, so
    that the child process that renders it (`printing.Printer.pdf_apart`, about 190 MB for
    48 pages) runs beside the job worker at its smallest, not after the plan and the rows
    (docs/performance.md, "The export's memory, every process counted"). Cheap when the PDF
    is kept (the usual case: rendered ahead by the job worker, selfcheck/prefill.py): no
    codebook is built, no template loaded.

    In the job worker, a codebook missing from the folder is not rendered here at all:
    raises `jobs.JobDeferred` (the export goes back to the queue, the worker gives up its app
    to a chain of `weasy.py` processes that renders it, then takes the export again: one
    process, under 200 MB); when the chain cannot render it now (another process holds the
    folder's lock, or it tried already), the export's message is due again a little later
    (WAIT_KEY, `prefill.Rechain.wait_for`), a bounded number of times, then the export fails
    in plain words: never rendered beside the worker (round 21)."""
    languages = _languages()
    lang = str(get_locale() or languages[0])
    name = pdf_name(shape.value, free_text, languages, lang)
    folder = blank_cache.folder(current_app)
    if folder is not None:
        if blank_cache.present(folder / name):
            return False
        wait = current_app.extensions.get(WAIT_KEY)
        deferred = wait(name) if wait is not None else None
        if deferred is not None:
            raise deferred
    else:
        with _lock:
            if (id(current_app), name) in _pdf_cache:
                return False
    pdf(build(definition, shape, free_text))
    return True


def every_pdf() -> list[tuple[Shape, bool, str]]:
    """Each codebook PDF an export may need: shape, free-text choice, language."""
    return [
        (shape, free_text, lang)
        for shape in Shape
        for free_text in (False, True)
        for lang in _languages()
    ]


def missing_pdfs(folder: Path) -> list[tuple[Shape, bool, str]]:
    """The codebook PDFs not (wholly) kept in `folder`. Cheap: no codebook is built, no
    template loaded. Needs an app context."""
    languages = _languages()
    return [
        (shape, free_text, lang)
        for shape, free_text, lang in every_pdf()
        if not blank_cache.present(folder / pdf_name(shape.value, free_text, languages, lang))
    ]


def apart_requests(folder: Path, only: Collection[str] | None = None) -> list[dict[str, Any]]:
    """For each codebook PDF missing in `folder`: the request a `weasy.py` process renders it
    from (`printing.Printer.apart_request`, the same HTML, stylesheet and variant as `pdf`
    renders apart), with `output`, the file it is kept as. For the job worker's
    codebooks-first step at its start (selfcheck/prefill.py, `codebooks_first`); `only`:
    those file names only. Needs an app context."""
    definition: Definition = current_app.extensions["selfcheck.definition"]
    languages = _languages()
    books: dict[tuple[Shape, bool], Codebook] = {}
    requests: list[dict[str, Any]] = []
    for shape, free_text, lang in missing_pdfs(folder):
        if only is not None and pdf_name(shape.value, free_text, languages, lang) not in only:
            continue
        book = books.get((shape, free_text))
        if book is None:
            book = books[(shape, free_text)] = _plain(build(definition, shape, free_text))
        with force_locale(lang):
            request = _printer().apart_request(html(book), [STYLESHEET])
        request["output"] = str(folder / pdf_name(shape.value, free_text, languages, lang))
        requests.append(request)
    return requests


def prefill_pdfs(folder: Path, keep_going: Callable[[], bool] = lambda: True) -> tuple[int, bool]:
    """Render into `folder` every codebook PDF missing there; `keep_going` is asked before
    each (False: stop). The number rendered, and whether it stopped early. Needs an app
    context (and the cache folder configured: `pdf` keeps them there)."""
    definition: Definition = current_app.extensions["selfcheck.definition"]
    books: dict[tuple[Shape, bool], Codebook] = {}
    rendered = 0
    for shape, free_text, lang in missing_pdfs(folder):
        if not keep_going():
            return rendered, True
        book = books.get((shape, free_text))
        if book is None:
            book = books[(shape, free_text)] = build(definition, shape, free_text)
        with force_locale(lang):
            pdf(book)
        rendered += 1
    return rendered, False


# Render the PDF in a process of its own (default), not in the job worker: see
# `printing.Printer.pdf_apart`. The tests render in process (tests/conftest.py), but one.
APART_KEY = "SELFCHECK_CODEBOOK_PDF_APART"


def _render_pdf(codebook: Codebook) -> bytes:
    printer = _printer()
    if current_app.config.get(APART_KEY, True):
        return printer.pdf_apart(html(codebook), [STYLESHEET])
    return printer.pdf(html(codebook), [printer.stylesheet(STYLESHEET)])
