"""Blank paper forms rendered once and served again, from disk (issue 18, part 3).

A blank form (no code) is the same PDF for everyone who asks for the same form, language,
wording, print size, duplex setting and site address, as long as the definition, the print
templates, the pictograms, the translations and the software stay the same. The first
request renders it (WeasyPrint, about 0.45 s; 0.6 s as the first render of a process:
BENCHMARKS.md); later ones read the file.

- **Keyed on everything that changes the output:** the request's choices above, the item
  bank (its id, version and the file's bytes), the bytes of every file of the selfcheck
  package (the app's version: its code, print templates, pictograms, compiled translations;
  the package's version number alone does not change between deployments), the templates
  folder when configured elsewhere, and the versions of WeasyPrint and pydyf. The file
  fingerprints are read once per process (2 MB, about 0.04 s): a deployment restarts
  the processes.
- **Bounded:** at most `MAX_FILES` forms (about 100 KB each); the least recently served
  goes first.
- **Stateless-app friendly:** files in the instance folder (`SELFCHECK_PAPER_CACHE_DIR`),
  written whole then renamed, so any worker or app instance sharing the folder reads only
  complete PDFs; a missing, evicted or damaged file is simply rendered again.
- Off in debug mode, where templates reload on change.
- **Filled ahead** at deployment, if wanted: `selfcheck paper prefill --url https://…`
  (`prefill`) renders every form in every language, wording and print size once, so that
  even the first person to ask for one gets it from disk.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from flask import Flask

from selfcheck.paper.operations import Copy, PaperRenderer, renderer
from selfcheck.questionnaire.model import FormKind, Wording

CONFIG_KEY = "SELFCHECK_PAPER_CACHE_DIR"  # empty: no cache
FOLDER = "paper-blanks"  # under the instance folder, by default
MAX_FILES = 200  # forms x languages x wordings x sizes x duplex, with room to spare
SUFFIX = ".pdf"
# The installed selfcheck package: code, templates, static files, translations, item bank.
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def folder(app: Flask) -> Path | None:
    """Where the app keeps its blank forms, or None (no cache: debug mode, or disabled)."""
    configured = app.config.get(CONFIG_KEY)
    if app.debug or not configured:
        return None
    return Path(configured)


@functools.cache
def _files_digest(*directories: Path) -> str:
    """The bytes of every file under `directories` (names included), hashed once."""
    digest = hashlib.sha256()
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            if path.suffix in {".po", ".pot", ".pyc"} or "__pycache__" in path.parts:
                continue  # the compiled .mo carries what is printed; .py the code
            digest.update(str(path.relative_to(directory)).encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@functools.cache
def _source_digest(source: str) -> str:
    path = Path(source)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else source


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def key(
    renderer: PaperRenderer,
    form: FormKind,
    locale: str,
    *,
    large: bool,
    duplex: bool,
    site_url: str | None,
) -> str:
    """The name of a blank form's file: a hash of everything its bytes depend on."""
    definition = renderer.definition
    parts = {
        "form": form.value,
        "locale": locale,
        "wording": definition.wording.value,
        "large": large,
        "duplex": duplex,
        "site_url": site_url,
        "definition": [definition.id, definition.version, _source_digest(definition.source)],
        "files": _files_digest(PACKAGE_DIR, renderer.directory),
        "software": [_version(name) for name in ("selfcheck", "weasyprint", "pydyf")],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _complete(data: bytes) -> bool:
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]


def blank_form(
    renderer: PaperRenderer,
    form: FormKind,
    locale: str,
    *,
    large: bool = False,
    duplex: bool = False,
    site_url: str | None = None,
    cache: Path | None = None,
) -> bytes:
    """One blank form as PDF: read from `cache` when it was rendered before, else rendered
    (and kept there). Without `cache`, rendered each time."""
    if cache is None:
        return _render(renderer, form, locale, large, duplex, site_url)
    path = cache / (
        key(renderer, form, locale, large=large, duplex=duplex, site_url=site_url) + SUFFIX
    )
    try:
        data = path.read_bytes()
    except OSError:
        data = b""
    if _complete(data):
        with contextlib.suppress(OSError):
            os.utime(path)  # recently served: evicted last
        return data
    data = _render(renderer, form, locale, large, duplex, site_url)
    _store(cache, path, data)
    return data


def _render(
    renderer: PaperRenderer,
    form: FormKind,
    locale: str,
    large: bool,
    duplex: bool,
    site_url: str | None,
) -> bytes:
    return renderer.questionnaires(
        [Copy(form, locale, None)], large=large, site_url=site_url, duplex=duplex
    )


def _store(cache: Path, path: Path, data: bytes) -> None:
    """Write the file whole, then rename it into place; then keep at most MAX_FILES. A cache
    that cannot be written is no error: the form was rendered, it is served."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        handle, draft = tempfile.mkstemp(dir=cache, prefix=".draft-", suffix=SUFFIX)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(draft, path)
        except BaseException:
            Path(draft).unlink(missing_ok=True)
            raise
        _evict(cache)
    except OSError:
        return


def _evict(cache: Path) -> None:
    """Remove the least recently served forms beyond MAX_FILES, and drafts an interrupted
    worker left behind (older than an hour)."""
    entries = []
    stale = time.time() - 3600
    for path in cache.glob("*" + SUFFIX):
        try:
            modified = path.stat().st_mtime
        except OSError:
            continue  # removed meanwhile by another worker
        if not path.name.startswith("."):
            entries.append((modified, path))
        elif modified < stale:
            path.unlink(missing_ok=True)
    entries.sort()
    for _mtime, path in entries[: max(len(entries) - MAX_FILES, 0)]:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Prefilled:
    rendered: int  # forms rendered and stored now
    present: int  # forms already there (left as they were)
    seconds: float


def prefill(app: Flask, site_url: str, cache: Path, *, duplex: bool = False) -> Prefilled:
    """Every blank form (each form, language of the app, wording and print size; double-sided
    too with `duplex`) rendered into `cache` unless already there. `site_url` must be the
    address the print page prints (`url_for("journey.enter_code", _external=True)` as the
    site's visitors reach it): it is part of each file's key. Needs an app context."""
    began = time.perf_counter()
    rendered = present = 0
    languages: tuple[str, ...] = app.config["SELFCHECK_LANGUAGES"]
    for wording in Wording:
        printer = renderer(app, wording)
        for form in FormKind:
            for locale in languages:
                for large in (False, True):
                    for sided in (False, True) if duplex else (False,):
                        name = key(
                            printer, form, locale, large=large, duplex=sided, site_url=site_url
                        )
                        if _complete(_read(cache / (name + SUFFIX))):
                            present += 1
                            continue
                        blank_form(
                            printer,
                            form,
                            locale,
                            large=large,
                            duplex=sided,
                            site_url=site_url,
                            cache=cache,
                        )
                        rendered += 1
    return Prefilled(rendered, present, time.perf_counter() - began)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
