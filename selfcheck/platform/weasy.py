"""The WeasyPrint side of `platform.printing`: its fetcher, user-agent stylesheet and HTML class.

Also a script: `python -P weasy.py` reads a render request (JSON) on its standard input and
writes the PDF on its standard output (`printing.Printer.pdf_apart`); it imports nothing of
the app, so the process holds WeasyPrint and the document only.

Imported only when a document is rendered (`printing.Printer`), never when the app is built:
WeasyPrint and what it brings (fontTools, its CSS engine, Pydyf, about 34 MB of resident memory
and 0.9 s of CPU) stay out of processes that print nothing: most web workers' first requests,
the job worker until it renders a PDF (docs/performance.md, "Import costs").
tests/platform/test_lazy_imports.py checks that building the app does not import it.
"""

from __future__ import annotations

import collections
import functools
import re
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

import weasyprint  # type: ignore[import-untyped]
import weasyprint.html  # type: ignore[import-untyped]
from weasyprint.text.fonts import FontConfiguration  # type: ignore[import-untyped]
from weasyprint.urls import FatalURLFetchingError  # type: ignore[import-untyped]


class NetworkRefused(FatalURLFetchingError):  # type: ignore[misc]
    """WeasyPrint asked for something that is not a file of the templates folder: stop.

    A `FatalURLFetchingError` is not swallowed by WeasyPrint (other errors only log a warning).
    """


class LocalFetcher(weasyprint.URLFetcher):  # type: ignore[misc]
    """Only files inside the templates folder (and the `others`, e.g. the pictograms); never
    the network, never elsewhere on disk."""

    def __init__(self, root: Path, *others: Path) -> None:
        super().__init__(allowed_protocols=("file",), fail_on_errors=True)
        self.root = root.resolve()
        self.roots = (self.root, *(other.resolve() for other in others))

    def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> Any:
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise NetworkRefused(f"not fetched (only local files of {self.root}): {url}")
        path = Path(unquote(parts.path)).resolve()
        if not any(path.is_relative_to(root) for root in self.roots) or not path.is_file():
            raise NetworkRefused(f"not fetched (outside {self.root} or missing): {url}")
        return weasyprint.urls.URLFetcherResponse(url, path.read_bytes())


# The user-agent rules a printed document never needs (see `print_ua_stylesheet`): the
# footnote and note pseudo-elements (no template floats a footnote or places a note), and
# `::marker` on every element rather than on list items only.
_UA_UNUSED = re.compile(r"^::(?:footnote|note)-[a-z-]+ \{[^}\n]*\}\n", re.MULTILINE)
_UA_MARKER = "\n::marker {"
_UA_LIST_MARKER = "\nli::marker {"


def trimmed_ua(text: str) -> str | None:
    """WeasyPrint's HTML user-agent stylesheet without the rules of `_UA_UNUSED`, and with
    `::marker` for list items only; None if the text does not have them (another version)."""
    if _UA_MARKER not in text:
        return None
    trimmed, removed = _UA_UNUSED.subn("", text.replace(_UA_MARKER, _UA_LIST_MARKER, 1))
    return trimmed if removed else None


@functools.cache
def print_ua_stylesheet() -> Any:
    """The user-agent stylesheet of printed documents: WeasyPrint's, trimmed (`trimmed_ua`).

    Why: the cascade gives every element of the document a style for each pseudo-element a
    user-agent rule names, `::marker`, `::footnote-call`, `::footnote-marker`, `::note-call`,
    `::note-marker` and `::note-callback`, so six computed styles per element that only list
    items (markers), footnotes and notes use: about a sixth of a paper form's render. The
    PDFs are the same byte for byte (tests/platform/test_printing.py renders lists, tables and
    headings both ways). Elements other than `li` made `display: list-item` by a stylesheet
    would draw their marker with the parent's style rather than tabular figures (none does).
    If a WeasyPrint upgrade changes the stylesheet so that the trim does not apply, its own
    stylesheet is used, unchanged (and that test fails, to look again).
    """
    text = trimmed_ua(weasyprint.html.UA)
    if text is None:
        return weasyprint.html.UA_STYLESHEET
    return weasyprint.CSS(string=text, counter_style=weasyprint.html.UA_COUNTER_STYLE)


class PrintHTML(weasyprint.HTML):  # type: ignore[misc]
    """A WeasyPrint HTML document with the user-agent stylesheet of printed documents."""

    def _ua_stylesheets(self, forms: bool = False) -> list[Any]:
        if forms:  # no printed template has form fields: WeasyPrint's own, unchanged
            return list(super()._ua_stylesheets(forms))
        return [print_ua_stylesheet()]


# --- fonts kept from one document to the next ------------------------------------------------

# Idle font configurations kept for the next documents (one is enough for a process that
# renders one document at a time; more only if several threads render at once).
MAX_IDLE_FONTS = 2
# No lock: a configuration comes back from a finalizer (`lend_fonts_to`), which the garbage
# collector runs in whatever thread allocates, at any point of it, even inside a function
# that held a lock on this pool: with a lock, a thread giving one back (a failed render) whose
# allocation collected another document waited for itself for ever (branch fix17). A deque's
# `append` and `pop` are atomic: nothing here waits.
_idle_fonts: collections.deque[Any] = collections.deque()


def lend_fonts() -> Any:
    """A WeasyPrint `FontConfiguration` for one document, made once and lent again.

    Without one, WeasyPrint makes a new configuration for every document: Fontconfig's
    configuration loaded again, and a new Pango font map, whose fonts, shaping and glyph
    metrics are all made again and kept beside the previous documents' until those are
    collected. A process that renders many documents (the filler of the blank forms: 80 in a
    row) grew by about 100 MB that way (docs/performance.md, "Blank forms, third pass").
    A configuration is lent to one document at a time (Pango's font map is not meant to be
    used by two threads at once) and comes back once: with `give_back_fonts` when no
    document was made, else when the document that holds it is collected (`lend_fonts_to`).
    No printed template has `@font-face` rules, which is what a configuration would
    otherwise accumulate from one document to the next.
    """
    try:
        return _idle_fonts.pop()  # atomic: two threads never get the same one
    except IndexError:
        return FontConfiguration()


def give_back_fonts(fonts: Any) -> None:
    """Return a configuration lent by `lend_fonts`, once (kept if fewer than MAX_IDLE_FONTS
    are idle). Safe from any thread, and from a finalizer run inside any code."""
    _idle_fonts.append(fonts)
    while len(_idle_fonts) > MAX_IDLE_FONTS:
        try:
            _idle_fonts.popleft()  # the oldest: one too many (another thread may have)
        except IndexError:
            break


def lend_fonts_to(document: Any, fonts: Any) -> Any:
    """`document` (a laid-out WeasyPrint document), its lent `fonts` given back once it is
    collected: after its PDF is written, or its pages counted."""
    weakref.finalize(document, give_back_fonts, fonts)
    return document


def render(
    html: str, directory: Path, others: list[Path], stylesheets: list[str], variant: str
) -> bytes:
    """A tagged PDF of `html`, as `printing.Printer.pdf` makes it (without its deferral of full
    collections: the process that calls this ends after one document)."""
    fetcher = LocalFetcher(directory, *others)
    sheets = [
        weasyprint.CSS(filename=str(directory / name), url_fetcher=fetcher) for name in stylesheets
    ]
    document = PrintHTML(
        string=html, base_url=directory.as_uri() + "/", url_fetcher=fetcher
    ).render(stylesheets=sheets, pdf_variant=variant)
    data: bytes = document.write_pdf(pdf_variant=variant)
    return data


# A link of `chain` gives up a render after LINK_TIMEOUT seconds (as `printing.APART_TIMEOUT`
# does for a render apart), and ends itself LINK_GRACE seconds later if the render is stuck
# where the alarm cannot interrupt it (attack12: a hung render kept the worker from starting).
LINK_TIMEOUT = 600
LINK_GRACE = 60


# The note of codebooks whose render failed (the same name as
# `selfcheck.prefill.CRASHED_FILE`, which this script may not import): a link whose render
# fails adds its codebook there with the time, so that no chain tries it again before a
# back-off (prefill.py, `Noted`) and an export does not wait for it in a loop.
CRASHED_FILE = ".codebooks-first-crashed"


def woken(wake: Path | None, seen: str) -> bool:
    """Whether `wake` (the jobs folder's file that each job queued replaces: selfcheck/
    platform/jobs.py, `wake_workers`) changed since the chain began (`seen`, its content
    then; "" when it was missing): a job waits, the chain goes back to the worker."""
    if wake is None:
        return False
    return wake_token(wake) != "".join(c for c in seen if c.isascii() and c.isalnum())


def wake_token(wake: Path) -> str:
    """The wake file's token, read as selfcheck/platform/jobs.py's `wake_token` reads it
    (which this script may not import; keep both the same): without waiting (a FIFO), at
    most 64 bytes of a regular file, its ASCII letters and digits only (attack14)."""
    import os
    import stat

    try:
        handle = os.open(wake, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            return ""
        head = os.read(handle, 64)
    except OSError:
        return ""
    finally:
        os.close(handle)
    return "".join(c for c in head.decode("ascii", "replace") if c.isascii() and c.isalnum())


def _note_failed(output: Path) -> None:
    """`output`'s codebook noted (CRASHED_FILE beside it, one line "name epoch" per failed
    render) as not to be rendered again before a back-off (selfcheck/prefill.py, `Noted`):
    its render failed (best effort)."""
    import contextlib
    import os
    import time

    with contextlib.suppress(OSError):
        handle = os.open(output.parent / CRASHED_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(handle, f"{output.name} {time.time():.0f}\n".encode())
        finally:
            os.close(handle)


def chain(
    folder: Path, lock: int | None, then: list[str], wake: Path | None = None, seen: str = ""
) -> NoReturn:
    """Render the next request file of `folder` and keep its PDF, then become the next link.

    The job worker's codebooks-first step (selfcheck/prefill.py, `codebooks_first`): each
    request (`*.json`: what `main` reads, plus `output`, the file the PDF is kept as) is
    rendered by a process image of its own, this script replaced by itself (`os.execv`, same
    process) for the next one, so that no process holding the app lives beside a render and
    each render starts from a fresh interpreter (one document's memory at a time, given back
    by the next `execv`). When no request is left, the folder is removed, the folder's
    filler lock (`lock`, a descriptor kept open across the links) is closed, and the process
    becomes `then` (the worker's own command again). A request that fails is logged, noted
    (CRASHED_FILE, with the time) and dropped; so is one that takes longer than LINK_TIMEOUT
    (SIGALRM). A render stuck beyond its alarm ends the link (`faulthandler`, LINK_GRACE
    later), its request left as `.doing`: the next chain notes that codebook
    (`prefill._crashed`). A noted codebook is tried again by a chain after a back-off, so
    that an export does not wait for a render that fails (`prefill.Rechain.wait_for`). A link
    stopped (SIGTERM, SIGINT) ends by that signal, as systemd counts a clean stop.

    **A job waits: back to the worker after this render.** With `wake` (the jobs folder's
    file each job queued replaces), a link that has rendered its request and finds the file
    changed since the chain began (`seen`) leaves the requests left (the folder removed, the
    lock closed) and becomes `then` at once: a job queued meanwhile waits for at most the
    render under way and the worker's start, not the whole chain; the worker comes back to
    the codebooks left when its queue is idle (prefill.py, `Rechain`). Each chain renders at
    least one codebook, so it always gets on.
    """
    import contextlib
    import faulthandler
    import json
    import os
    import shutil
    import signal
    import sys
    import tempfile

    stops = {signal.SIGINT, signal.SIGTERM}
    pending = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if pending:
        # Renamed while it renders: a link that dies (killed, out of memory) leaves it, and
        # the worker's next start does not try that codebook again (`codebooks_first`).
        request_file = pending[0].with_suffix(".doing")

        def stopped(signum: int, _frame: object) -> None:
            # Stopped (the service stops, Ctrl-C), not a render that failed: the request is
            # put back, the next start renders it. Then ended by the signal itself (not an
            # exit status of 128 + signum, which systemd counts as a failure).
            faulthandler.cancel_dump_traceback_later()
            with contextlib.suppress(OSError):
                request_file.rename(pending[0])
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            os._exit(128 + signum)  # pragma: no cover - the signal ended the process

        def timed_out(_signum: int, _frame: object) -> None:
            raise TimeoutError(f"not rendered within {LINK_TIMEOUT} s")

        signal.signal(signal.SIGTERM, stopped)
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, stopped)
        signal.signal(signal.SIGALRM, timed_out)
        # Held across the `execv` that started this link (prefill._let_go, below): let in
        # now that `stopped` handles them.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
        signal.alarm(LINK_TIMEOUT)
        faulthandler.dump_traceback_later(LINK_TIMEOUT + LINK_GRACE, exit=True)
        request: dict[str, Any] = {}
        try:
            pending[0].rename(request_file)
            request = json.loads(request_file.read_text(encoding="utf-8"))
            data = render(
                request["html"],
                Path(request["directory"]),
                [Path(other) for other in request["others"]],
                list(request["stylesheets"]),
                request["variant"],
            )
            output = Path(request["output"])
            handle, draft = tempfile.mkstemp(dir=output.parent, prefix=".draft-", suffix=".pdf")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                os.replace(draft, output)
            except BaseException:
                Path(draft).unlink(missing_ok=True)
                raise
        except Exception as error:  # logged, noted and dropped: tried again after a back-off
            print(f"codebooks first: {request_file.name} not rendered: {error!r}", file=sys.stderr)
            if isinstance(request, dict) and isinstance(request.get("output"), str):
                _note_failed(Path(request["output"]))
        finally:
            # An alarm outlives `execv`: none may reach the next link or the worker.
            signal.alarm(0)
            faulthandler.cancel_dump_traceback_later()
        request_file.unlink(missing_ok=True)
        left = len(pending) - 1
        if left and woken(wake, seen):
            print(
                f"codebooks first: a job is waiting, back to the worker ({left} left for later)",
                file=sys.stderr,
            )
        elif left:
            link = [sys.executable, "-P", str(Path(__file__).resolve()), "--chain", str(folder)]
            if lock is not None:
                link += ["--lock", str(lock)]
            if wake is not None:
                link += ["--wake", str(wake), "--seen", seen]
            sys.stdout.flush()
            sys.stderr.flush()
            # A stop during the next image's start-up would hit Python's own (a SIGINT there
            # is a fatal error, exit status 1): held until its handlers are set.
            signal.pthread_sigmask(signal.SIG_BLOCK, stops)
            try:
                os.execv(sys.executable, [*link, "--", *then])
            except OSError as error:
                print(f"codebooks first: next link not started: {error!r}", file=sys.stderr)
    shutil.rmtree(folder, ignore_errors=True)
    if lock is not None:
        os.close(lock)
    sys.stdout.flush()
    sys.stderr.flush()
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)  # let in by the worker (stops_let_in)
    os.execv(then[0], then)


def main() -> int:
    import json
    import sys

    if sys.argv[1:2] == ["--chain"]:
        arguments = sys.argv[2:]
        split = arguments.index("--")
        options, then = arguments[:split], arguments[split + 1 :]
        lock = int(options[options.index("--lock") + 1]) if "--lock" in options else None
        wake = Path(options[options.index("--wake") + 1]) if "--wake" in options else None
        seen = options[options.index("--seen") + 1] if "--seen" in options else ""
        chain(Path(options[0]), lock, then, wake, seen)
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    data = render(
        request["html"],
        Path(request["directory"]),
        [Path(other) for other in request["others"]],
        list(request["stylesheets"]),
        request["variant"],
    )
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
