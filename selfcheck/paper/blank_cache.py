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
- **Filled ahead by the job worker** (selfcheck/prefill.py: `missing`, `prefill`), when its
  queue is idle, for the site's address (`SELFCHECK_SITE_URL`, else the one the print page
  keeps here with `remember_site_url`), the most asked forms first (`every_blank`); by hand
  with `selfcheck paper prefill`. Then even the first person to ask for a form gets it from
  disk. A web worker's warm-up keeps the most asked one (paper/warmup.py).
- **One process renders a given form at a time** (`rendering`: a lock file per form): a
  request that misses a form the filler or another worker is rendering waits for its file.
- The export's codebook PDF is kept in the same folder (evaluation/codebook.py, `pdf`),
  keyed the same way (`definition_parts`, `software_parts`).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gc
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from flask import Flask

from selfcheck.paper import operations as paper
from selfcheck.paper.operations import Copy, PaperRenderer, renderer
from selfcheck.questionnaire.model import Definition, FormKind, Wording

CONFIG_KEY = "SELFCHECK_PAPER_CACHE_DIR"  # empty: no cache; from the environment too
FOLDER = "paper-blanks"  # under the instance folder, by default
# forms x languages x wordings x sizes x duplex (80 or 160), codebooks (16), with room to spare
MAX_FILES = 200
SUFFIX = ".pdf"
# One form rendered by one process at a time: a request that misses a form another process is
# rendering (the job worker's filler, another worker) waits for its file rather than render it
# too, for at most WAIT_FOR_OTHER seconds (a blank form takes about 0.5 s; the filler runs at
# the lowest priority). `rendering` below.
LOCK_SUFFIX = ".lock"
WAIT_FOR_OTHER = 3.0
POLL_EVERY = 0.05
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
    return _key(
        renderer.definition,
        renderer.definition.wording,
        renderer.directory,
        form,
        locale,
        large=large,
        duplex=duplex,
        site_url=site_url,
    )


def _key(
    definition: Definition,
    wording: Wording,
    directory: Path,
    form: FormKind,
    locale: str,
    *,
    large: bool,
    duplex: bool,
    site_url: str | None,
) -> str:
    parts = {
        "form": form.value,
        "locale": locale,
        "wording": wording.value,
        "large": large,
        "duplex": duplex,
        "site_url": site_url,
        "definition": definition_parts(definition),
        **software_parts(directory),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def definition_parts(definition: Definition) -> list[str]:
    """The item bank a file was rendered from: its id, version and the file's bytes."""
    return [definition.id, definition.version, _source_digest(definition.source)]


def software_parts(directory: Path) -> dict[str, object]:
    """What a rendered file depends on besides its choices and the item bank: the package's
    files, the templates folder `directory`, the versions of the PDF libraries."""
    return {
        "files": _files_digest(PACKAGE_DIR, directory),
        "software": [_version(name) for name in ("selfcheck", "weasyprint", "pydyf")],
    }


def _complete(data: bytes) -> bool:
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]


def read_complete(path: Path) -> bytes:
    """The PDF kept at `path`, or b"" (missing, being replaced, damaged); a PDF served is
    touched, so that it is evicted last."""
    data = _read(path)
    if not _complete(data):
        return b""
    with contextlib.suppress(OSError):
        os.utime(path)
    return data


def present(path: Path) -> bool:
    """Whether a whole PDF is kept at `path`, reading its first and last bytes only."""
    try:
        with path.open("rb") as handle:
            head = handle.read(5)
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - 1024, 0))
            tail = handle.read()
    except OSError:
        return False
    return head == b"%PDF-" and b"%%EOF" in tail


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
    data = read_complete(path)
    if data:
        return data
    with rendering(path, wait=WAIT_FOR_OTHER):
        data = read_complete(path)  # stored meanwhile by the process this one waited for
        if data:
            return data
        data = _render(renderer, form, locale, large, duplex, site_url)
        store(cache, path, data)
    return data


def _lock_path(path: Path) -> Path:
    return path.with_name("." + path.stem + LOCK_SUFFIX)


@contextlib.contextmanager
def rendering(path: Path, *, wait: float) -> Iterator[bool]:
    """The right to render the file at `path`, shared by every process using the folder
    (`flock` on a lock file beside it): True once this process holds it. While another
    process holds it, wait up to `wait` seconds for that process to store the file (or to
    give the lock up), then go on anyway: False (the caller looks for the file first, and
    renders it itself if it is still missing: a duplicate render, never a wrong file). A
    folder where the lock file cannot be made gives True at once (nothing to agree on). The
    lock file is removed by the holder once the file is stored."""
    lock = _lock_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = lock.open("a")
    except OSError:
        yield True
        return
    with handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                if present(path) or time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(POLL_EVERY)
                continue
            break
        try:
            yield True
        finally:
            lock.unlink(missing_ok=True)  # before the lock is given up: see `_evict` too
            fcntl.flock(handle, fcntl.LOCK_UN)


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


def store(cache: Path, path: Path, data: bytes) -> None:
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
    for lock in cache.glob(".*" + LOCK_SUFFIX):  # left by a process that was killed
        with contextlib.suppress(OSError):
            if lock.stat().st_mtime < stale:
                lock.unlink()
    entries.sort()
    for _mtime, path in entries[: max(len(entries) - MAX_FILES, 0)]:
        path.unlink(missing_ok=True)


# --- the site's address, for the job worker ----------------------------------------------

SITE_FILE = "site-url"  # beside the forms: the address the print page prints
_remembered: dict[Path, str] = {}
_remembered_lock = threading.Lock()


def remember_site_url(cache: Path | None, site_url: str) -> None:
    """Keep the address the print page prints in the cache folder, for the job worker that
    fills the cache ahead (selfcheck/prefill.py: it never sees a request). The first address
    kept stays: a signed-in user who sends the print page another `Host` header must not make
    the worker render every form for it and push the site's own out of the folder (attack
    round 16, A7-3). A site that moves sets `SELFCHECK_SITE_URL` (or removes the file); its
    requests are served correctly meanwhile, each form's file being named after its address.
    Once a process has written or read it, nothing more is done for the same address. A
    folder that cannot be written is no error."""
    if cache is None:
        return
    with _remembered_lock:
        if _remembered.get(cache) == site_url:
            return
        _remembered[cache] = site_url
    path = cache / SITE_FILE
    if remembered_site_url(cache) is not None:
        return
    try:
        cache.mkdir(parents=True, exist_ok=True)
        handle, draft = tempfile.mkstemp(dir=cache, prefix=".draft-site-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(site_url + "\n")
            os.replace(draft, path)
        except BaseException:
            Path(draft).unlink(missing_ok=True)
            raise
    except OSError:
        return


def remembered_site_url(cache: Path) -> str | None:
    """The address `remember_site_url` kept, or None (no print page asked for yet)."""
    try:
        found = (cache / SITE_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return found if found.startswith(("https://", "http://")) else None


# --- filled ahead ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Blank:
    """One blank form of the cache: its choices."""

    wording: Wording
    form: FormKind
    locale: str
    large: bool
    duplex: bool


def every_blank(app: Flask, *, duplex: bool = False) -> list[Blank]:
    """Each form in each language of the app, wording and print size (and sides), the most
    asked first, since the job worker renders them in this order after a deployment: the
    default language's forms in the standard wording and normal print (the "before" form
    first, as FormKind lists them), then the other languages' in the same wording and size,
    then the easy-read wording, then large print, each in the same order."""
    languages: tuple[str, ...] = app.config["SELFCHECK_LANGUAGES"]
    default = str(app.config.get("BABEL_DEFAULT_LOCALE") or "")
    locales = sorted(languages, key=lambda locale: locale != default)  # stable: default first
    return [
        Blank(wording, form, locale, large, sided)
        for large in (False, True)
        for wording in Wording
        for locale in locales
        for form in FormKind
        for sided in ((False, True) if duplex else (False,))
    ]


def missing(app: Flask, site_url: str, cache: Path, *, duplex: bool = False) -> list[Blank]:
    """The blank forms not (wholly) in `cache` for `site_url`. Cheap: names are hashes of the
    choices, the item bank and the software (the files hashed once per process), and a
    file's first and last bytes are read; neither WeasyPrint nor the templates are loaded."""
    return [blank for blank, _ in _missing_files(app, site_url, cache, duplex=duplex)]


def _missing_files(
    app: Flask, site_url: str, cache: Path, *, duplex: bool = False
) -> list[tuple[Blank, Path]]:
    """`missing`, each blank form with the file it is kept in."""
    definition: Definition = app.extensions["selfcheck.definition"]
    directory = Path(app.config.get(paper.CONFIG_KEY) or paper.PRINTABLE_DIR).resolve()
    # As `renderer(app, wording)` has it, without making one (that imports WeasyPrint).
    variants = {wording: definition.in_wording(wording) for wording in Wording}
    files = (
        (
            blank,
            cache
            / (
                _key(
                    variants[blank.wording],
                    variants[blank.wording].wording,
                    directory,
                    blank.form,
                    blank.locale,
                    large=blank.large,
                    duplex=blank.duplex,
                    site_url=site_url,
                )
                + SUFFIX
            ),
        )
        for blank in every_blank(app, duplex=duplex)
    )
    return [(blank, path) for blank, path in files if not present(path)]


@dataclass(frozen=True)
class Prefilled:
    rendered: int  # forms rendered and stored now
    present: int  # forms already there (left as they were)
    seconds: float
    stopped: bool = False  # `keep_going` said stop before every form was there


def prefill(
    app: Flask,
    site_url: str,
    cache: Path,
    *,
    duplex: bool = False,
    keep_going: Callable[[], bool] = lambda: True,
) -> Prefilled:
    """Every blank form (each form, language of the app, wording and print size; double-sided
    too with `duplex`) rendered into `cache` unless already there. `site_url` must be the
    address the print page prints (`url_for("journey.enter_code", _external=True)` as the
    site's visitors reach it): it is part of each file's key. `keep_going` is asked before
    each render (False: stop there; the forms stored so far stay). Needs an app context."""
    began = time.perf_counter()
    todo = _missing_files(app, site_url, cache, duplex=duplex)
    rendered = 0
    stopped = False
    for blank, path in todo:
        if not keep_going():
            stopped = True
            break
        printer = renderer(app, blank.wording)
        with rendering(path, wait=0) as mine:
            if not mine or present(path):
                continue  # being rendered by a request, or stored meanwhile
            data = _render(printer, blank.form, blank.locale, blank.large, blank.duplex, site_url)
            store(cache, path, data)
        rendered += 1
        del data
        # One document's layout (hundreds of thousands of objects, some in cycles) freed
        # now rather than beside the next one's (docs/performance.md, "Blank forms, third
        # pass"): the filler's memory stays that of one document.
        gc.collect()
    present_count = len(every_blank(app, duplex=duplex)) - len(todo)
    return Prefilled(rendered, present_count, time.perf_counter() - began, stopped)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
