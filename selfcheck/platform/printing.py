"""The one Jinja environment and translator for everything printed (forms, summaries, codebook).

Printed documents are rendered outside a request's own language: one batch can hold forms in
several languages, so their gettext follows `flask_babel.force_locale` (an app context, no
request needed). `printer(directory)` gives, once per templates folder and per process, the
environment (i18n extension, shared filters), the translator and a WeasyPrint fetcher that
reads local files of that folder only. Paper forms, progress summaries and the codebook all
render through it (issue 11: one print environment, one translator).
"""

from __future__ import annotations

import functools
import gc
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydyf  # type: ignore[import-untyped]
from flask_babel import format_decimal, get_locale
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    select_autoescape,
)
from markupsafe import Markup

from selfcheck.platform import codes
from selfcheck.platform.i18n import SOURCE_LANGUAGE, Translations, text_direction

if TYPE_CHECKING:
    from selfcheck.platform.weasy import LocalFetcher

PDF_VARIANT = "pdf/ua-1"
# Partials shared by a web page and its printed twin (the progress summary's blocks): every
# printer also finds `summary/<name>.html` there, after its own folder.
SHARED_TEMPLATES = {"summary": Path(__file__).resolve().parent.parent / "templates" / "summary"}


def forced_locale() -> str:
    """The locale in force (`force_locale` included), not the request's."""
    locale = get_locale()
    return str(locale) if locale is not None else SOURCE_LANGUAGE


def css_string(text: str) -> Markup:
    """A CSS string literal (for `content:` in a <style> block)."""
    escaped = "".join(
        ch if ch.isalnum() or ch in " .,:;!?'()-/«»’…" or ord(ch) > 127 else f"\\{ord(ch):x} "
        for ch in text
    )
    return Markup(f'"{escaped}"')


def memoise_page_references() -> None:
    """Make pydyf's `PDF.page_references` O(1) instead of O(pages) per access.

    pydyf 0.13 rebuilds the tuple of every page reference on each access, and WeasyPrint's
    PDF tagging reads it once per structure element, so a tagged document of N pages costs
    O(N²): seconds for a batch of 100 forms, four times more for 200 (benchmarks/README.md).
    The tuple is kept per PDF object while its page list keeps the same length (pydyf only
    appends to it): same values, computed once per page added. Idempotent.

    Not applied at import: the first printer made applies it. It patches the pydyf pinned in
    pyproject.toml (`pydyf==…`); tests/services/test_paper.py fails when the installed version
    is another, so that an upgrade re-checks whether the patch is still needed and still right.
    """
    current = pydyf.PDF.page_references
    if getattr(current.fget, "selfcheck_memoised", False):
        return
    compute = current.fget

    def page_references(pdf: Any) -> tuple[bytes, ...]:
        count = len(pdf.pages["Kids"])
        cached: tuple[int, tuple[bytes, ...]] | None = pdf.__dict__.get("_selfcheck_page_refs")
        if cached is None or cached[0] != count:
            cached = (count, compute(pdf))
            pdf.__dict__["_selfcheck_page_refs"] = cached
        return cached[1]

    page_references.selfcheck_memoised = True  # type: ignore[attr-defined]
    page_references.selfcheck_original = compute  # type: ignore[attr-defined]
    pydyf.PDF.page_references = property(page_references)


_collections_lock = threading.Lock()
_renders = 0  # renders under way in this process (threads), under the lock
_thresholds: tuple[int, int, int] = (0, 0, 0)  # the collector's, while renders defer them


@contextmanager
def deferred_full_collections() -> Iterator[None]:
    """Defer the garbage collector's full collections (generation 2) while a document renders.

    A render makes hundreds of thousands of objects that outlive the youngest generations
    (boxes, styles, PDF objects), so Python starts one or more full collections during almost
    every render, each walking the whole heap of the app (item bank, translations, SQLAlchemy,
    WeasyPrint caches): about 0.1 s of a 0.5 s paper form on the benchmark machine
    (benchmarks/README.md). The young generations are still collected (cyclic garbage of
    the layout goes as usual); the full collections resume when the last render of the process
    ends, with the thresholds it had. A collector disabled or tuned by the app is left alone
    (threshold 0: disabled). Thread-safe: renders of several threads share one deferral.
    """
    global _renders, _thresholds
    with _collections_lock:
        if _renders == 0:
            _thresholds = gc.get_threshold()
            if _thresholds[0]:
                gc.set_threshold(_thresholds[0], _thresholds[1], 1_000_000)
        _renders += 1
    try:
        yield
    finally:
        with _collections_lock:
            _renders -= 1
            if _renders == 0 and _thresholds[0]:
                gc.set_threshold(*_thresholds)


# `python -P weasy.py`: a process that imports WeasyPrint and nothing of the app (`pdf_apart`).
WEASY_SCRIPT = Path(__file__).resolve().with_name("weasy.py")
APART_TIMEOUT = 600  # seconds: a 48-page codebook takes about 8 s of CPU


class PrintFailed(RuntimeError):
    """The process that renders apart (`Printer.pdf_apart`) failed."""


@dataclass(frozen=True)
class Printer:
    """A templates folder made ready to print: its environment, translator and fetcher."""

    directory: Path
    env: Environment
    translator: Translations
    others: tuple[Path, ...] = ()

    @functools.cached_property
    def fetcher(self) -> LocalFetcher:
        """WeasyPrint's fetcher of the folder's files, made (WeasyPrint imported) on first use:
        a printer that only fills templates (`pdf_apart`) never imports WeasyPrint."""
        from selfcheck.platform.weasy import LocalFetcher

        return LocalFetcher(self.directory, *self.others)

    def stylesheet(self, name: str) -> Any:
        from weasyprint import CSS  # type: ignore[import-untyped]

        return CSS(filename=str(self.directory / name), url_fetcher=self.fetcher)

    def document(self, html: str, stylesheets: list[Any]) -> Any:
        """The laid-out document (its pages can be counted), tagged PDF/UA-1."""
        from selfcheck.platform import weasy

        fonts = weasy.lend_fonts()  # fonts and shaping kept from one document to the next
        try:
            with deferred_full_collections():
                document = weasy.PrintHTML(
                    string=html, base_url=self.directory.as_uri() + "/", url_fetcher=self.fetcher
                ).render(stylesheets=stylesheets, pdf_variant=PDF_VARIANT, font_config=fonts)
        except BaseException:
            weasy.give_back_fonts(fonts)
            raise
        return weasy.lend_fonts_to(document, fonts)

    @staticmethod
    def write(document: Any) -> bytes:
        """The PDF of a laid-out document (`document`)."""
        with deferred_full_collections():
            data: bytes = document.write_pdf(pdf_variant=PDF_VARIANT)
        return data

    def pdf(self, html: str, stylesheets: list[Any]) -> bytes:
        with deferred_full_collections():
            return self.write(self.document(html, stylesheets))

    def apart_request(self, html: str, stylesheets: list[str]) -> dict[str, Any]:
        """What a process of `weasy.py` reads to render `html` as `pdf` would (JSON-ready):
        `pdf_apart` writes it to its child, the worker's codebooks-first step
        (selfcheck/prefill.py, `codebooks_first`) to files that `weasy.py --chain` renders."""
        return {
            "html": html,
            "directory": str(self.directory),
            "others": [str(other) for other in self.others],
            "stylesheets": stylesheets,
            "variant": PDF_VARIANT,
        }

    def pdf_apart(self, html: str, stylesheets: list[str]) -> bytes:
        """The same PDF as `pdf`, rendered by a short-lived process of its own.

        For a large document rendered in a long-lived process (the export's codebook, in the
        job worker): WeasyPrint's layout of 48 pages takes a process from about 150 MB to
        280 MB, and most of it stays with the process after the render (docs/performance.md,
        "Import costs and the export job's memory"). The child (`python -P weasy.py`) imports
        WeasyPrint and `platform/weasy.py` only, renders with the same fetcher, user-agent
        stylesheet and PDF variant, and gives its memory back when it ends. `stylesheets` are
        file names in the folder. Raises PrintFailed.
        """
        request = self.apart_request(html, stylesheets)
        try:
            done = subprocess.run(
                [sys.executable, "-P", str(WEASY_SCRIPT)],
                input=json.dumps(request).encode("utf-8"),
                capture_output=True,
                timeout=APART_TIMEOUT,
                check=False,
                env=_child_environment(),
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise PrintFailed(f"rendering apart failed: {error}") from error
        if done.returncode != 0 or not done.stdout.startswith(b"%PDF"):
            tail = done.stderr.decode("utf-8", "replace")[-2000:]
            raise PrintFailed(f"rendering apart failed (exit {done.returncode}): {tail}")
        return done.stdout


def _child_environment() -> dict[str, str]:
    """The environment of the rendering process: this one's without the app's settings
    (`SELFCHECK_*`: the secret key, the database and mail addresses with their passwords),
    which it does not need and which a crash report or `/proc/<pid>/environ` would show."""
    return {name: value for name, value in os.environ.items() if not name.startswith(_APP_VARS)}


_APP_VARS = ("SELFCHECK_", "DATABASE_URL")


def _make_printer(directory: Path, others: tuple[Path, ...]) -> Printer:
    memoise_page_references()
    env = Environment(
        loader=ChoiceLoader(
            [
                FileSystemLoader(directory),
                PrefixLoader(
                    {name: FileSystemLoader(path) for name, path in SHARED_TEMPLATES.items()}
                ),
            ]
        ),
        autoescape=select_autoescape(("html",), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n", "jinja2.ext.do"],
    )
    translator = Translations(locale=forced_locale, escape=False)
    translator.install(env)
    env.filters.update(
        code_display=codes.display,
        css_string=css_string,
        translate=translator.gettext,
        # Right-to-left languages (Arabic) mirror the page; numbers follow the copy's locale.
        direction=text_direction,
        decimalformat=format_decimal,
    )
    return Printer(directory, env, translator, others)


_printers: dict[tuple[Path, tuple[Path, ...]], Printer] = {}
_lock = threading.Lock()


def printer(directory: Path, *others: Path) -> Printer:
    """The printer of a templates folder (which may also read `others`), made once per process
    (thread-safe)."""
    key = (directory.resolve(), tuple(other.resolve() for other in others))
    with _lock:
        found = _printers.get(key)
        if found is None:
            found = _printers[key] = _make_printer(*key)
        return found
