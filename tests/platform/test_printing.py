"""Printing speed-ups (platform/printing.py, platform/weasy.py): the print user-agent stylesheet
(faster, the same PDF) and full collections deferred while a document renders."""

from __future__ import annotations

import collections
import gc
import subprocess
import sys
import threading
import weakref
from pathlib import Path

import pytest
import weasyprint  # type: ignore[import-untyped]
import weasyprint.html  # type: ignore[import-untyped]

from selfcheck.platform import printing, weasy

# Lists (markers: ul, ol, nested, a list-style none; "a." stays lower case only with the
# `li::marker` rule kept), a table with header cells, headings,
# in two languages and both directions: what printed forms and summaries are made of.
SAMPLE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Essai</title>
<style>@page { size: A6; margin: 8mm; @bottom-left { content: counter(page) " / " counter(pages) }
} .plain { list-style: none; padding: 0 } h2 { break-before: page }
.upper { list-style-type: lower-alpha; text-transform: uppercase }</style></head>
<body><h1>Titre</h1><p>Un paragraphe, <em>accentué</em> et <strong>gras</strong>.</p>
<ul><li>un</li><li>deux<ol class="upper"><li>a</li><li>b</li></ol></li></ul>
<ul class="plain"><li>sans puce</li></ul><ol start="9"><li>neuf</li><li>dix</li></ol>
<h2>Tableau</h2><table><thead><tr><td></td><th scope="col">Avant</th></tr></thead>
<tbody><tr><th scope="row">Tâche</th><td>☐</td></tr></tbody></table>
<section lang="ar" dir="rtl"><h2>عنوان</h2><ul><li>واحد</li><li>اثنان</li></ul></section>
</body></html>"""


def _pdf(document_class: type) -> bytes:
    document = document_class(string=SAMPLE).render(pdf_variant=printing.PDF_VARIANT)
    data: bytes = document.write_pdf(pdf_variant=printing.PDF_VARIANT)
    return data


def test_the_trim_applies_to_the_installed_weasyprint() -> None:
    # If this fails after a WeasyPrint upgrade, printing uses WeasyPrint's own stylesheet
    # (correct, slower): look at weasy.trimmed_ua again.
    trimmed = weasy.trimmed_ua(weasyprint.html.UA)
    assert trimmed is not None
    assert weasy.print_ua_stylesheet() is not weasyprint.html.UA_STYLESHEET
    assert "\nli::marker {" in trimmed and "\n::marker {" not in trimmed
    assert "::footnote-" not in trimmed and "::note-" not in trimmed
    # nothing else removed
    assert len(weasyprint.html.UA) - len(trimmed) < 400


def test_trimmed_ua_refuses_an_unknown_stylesheet() -> None:
    assert weasy.trimmed_ua("p { margin: 0 }") is None
    assert weasy.trimmed_ua("\n::marker { color: red }\n") is None  # nothing to remove


def test_the_same_pdf_byte_for_byte() -> None:
    plain = _pdf(weasyprint.HTML)
    trimmed = _pdf(weasy.PrintHTML)
    assert plain.startswith(b"%PDF")
    assert trimmed == plain


def test_full_collections_are_deferred_during_renders_then_restored() -> None:
    before = gc.get_threshold()
    with printing.deferred_full_collections():
        assert gc.get_threshold()[:2] == before[:2]  # young generations as before
        assert gc.get_threshold()[2] >= 1_000_000
        with printing.deferred_full_collections():  # a second render (another thread)
            assert gc.get_threshold()[2] >= 1_000_000
        assert gc.get_threshold()[2] >= 1_000_000  # still one render under way
    assert gc.get_threshold() == before


def test_deferral_ends_even_when_a_render_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), printing.deferred_full_collections():
        raise RuntimeError("layout failed")
    assert gc.get_threshold() == before


def test_a_disabled_collector_is_left_alone() -> None:
    before = gc.get_threshold()
    gc.set_threshold(0)
    try:
        with printing.deferred_full_collections():
            assert gc.get_threshold()[0] == 0
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)


def test_renders_in_threads_leave_the_thresholds_as_they_were() -> None:
    before = gc.get_threshold()
    barrier = threading.Barrier(4)

    def render() -> None:
        for round_ in range(50):
            with printing.deferred_full_collections():
                if round_ == 0:
                    barrier.wait(timeout=5)  # the four threads inside at once

    workers = [threading.Thread(target=render) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert gc.get_threshold() == before


@pytest.mark.slow  # a child process imports WeasyPrint: about 1-2 s
def test_a_document_rendered_apart_is_the_same_pdf(tmp_path: Path) -> None:
    # printing.Printer.pdf_apart: the export's codebook is rendered by a process of its own
    # (python -P weasy.py), so that the job worker does not keep WeasyPrint's memory.
    (tmp_path / "doc.css").write_text("@page { size: A6 } h1 { color: #123456 }")
    (tmp_path / "dot.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" '
        'height="4"/></svg>'
    )
    html = SAMPLE.replace("<h1>Titre</h1>", '<h1>Titre</h1><img src="dot.svg" alt="point">')
    printer = printing.printer(tmp_path)
    apart = printer.pdf_apart(html, ["doc.css"])
    here = printer.pdf(html, [printer.stylesheet("doc.css")])
    assert apart.startswith(b"%PDF") and apart == here
    # The child fetches as the process does: nothing outside the folder, and it says so.
    with pytest.raises(printing.PrintFailed, match="NetworkRefused"):
        printer.pdf_apart(html.replace("dot.svg", "https://example.org/x.svg"), ["doc.css"])
    with pytest.raises(printing.PrintFailed):
        printer.pdf_apart(html, ["missing.css"])


def test_the_rendering_process_does_not_inherit_the_apps_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # printing.Printer.pdf_apart: the child renders HTML; it needs none of the app's settings
    # (secret key, database URL with its password, SMTP credentials).
    script = tmp_path / "env.py"
    script.write_text(
        "import os, sys\n"
        "sys.stdout.buffer.write(b'%PDF' + '\\n'.join(sorted(os.environ)).encode())\n"
    )
    monkeypatch.setattr(printing, "WEASY_SCRIPT", script)
    monkeypatch.setenv("SELFCHECK_SECRET_KEY", "not-for-the-child")
    monkeypatch.setenv("SELFCHECK_DATABASE_URL", "postgresql://u:password@h/db")
    monkeypatch.setenv("SELFCHECK_TEST_KEEP", "x")
    monkeypatch.setenv("PATH_FOR_FONTS_TEST", "kept")
    names = printing.printer(tmp_path).pdf_apart("<p>x</p>", [])[4:].decode().split("\n")
    assert "PATH_FOR_FONTS_TEST" in names  # the rest (fonts, locale, PATH) is passed on
    assert not [name for name in names if name.startswith("SELFCHECK_")]


def test_documents_borrow_one_font_configuration_and_print_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # weasy.lend_fonts: Fontconfig and Pango's font map made once, not per document (the
    # filler of blank forms grew by about 100 MB over 80 forms otherwise).
    made: list[object] = []
    real = weasy.FontConfiguration

    def counted() -> object:
        made.append(real())
        return made[-1]

    monkeypatch.setattr(weasy, "FontConfiguration", counted)
    monkeypatch.setattr(weasy, "_idle_fonts", collections.deque())
    printer = printing.printer(tmp_path)
    first = printer.pdf(SAMPLE, [])
    assert len(made) == 1 and list(weasy._idle_fonts) == made  # given back with its document
    assert printer.pdf(SAMPLE, []) == first and len(made) == 1  # lent again, same bytes
    kept = printer.document(SAMPLE, [])  # lent while its document lives
    assert not weasy._idle_fonts and kept.font_config is made[0]
    other = printer.document(SAMPLE, [])  # a second document at the same time: its own
    assert len(made) == 2 and other.font_config is not kept.font_config
    assert printer.write(kept) == first
    del kept, other
    gc.collect()
    assert len(weasy._idle_fonts) == weasy.MAX_IDLE_FONTS == 2


# A configuration given back (a failed render) while the garbage collector, run by that very
# allocation, collects another document whose finalizer gives its own back: with the pool's
# lock of blank16, the thread waited for itself for ever (fix17).
_GIVEN_BACK_DURING_A_COLLECTION = """
import gc
from selfcheck.platform import weasy

class Document:
    def __init__(self):
        self.me = self  # a cycle: freed by the collector only

document = Document()
weasy.lend_fonts_to(document, object())
del document
gc.set_threshold(1, 1, 1)  # the next allocation collects it
for _ in range(50):
    weasy.give_back_fonts(object())
print("given back")
"""


def test_fonts_given_back_while_a_collection_gives_back_others_never_wait() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _GIVEN_BACK_DURING_A_COLLECTION],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "given back"


def test_a_font_configuration_is_lent_to_one_document_at_a_time_across_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Threads lend and give back (explicitly, or by their document's finalizer run by the
    # collector in any thread) with collections as frequent as can be: a configuration is
    # never held by two at once, none is lost while lent, and the pool stays bounded.
    monkeypatch.setattr(weasy, "_idle_fonts", collections.deque())
    monkeypatch.setattr(weasy, "FontConfiguration", lambda: object())
    held: set[int] = set()
    guard = threading.Lock()  # the test's own bookkeeping, not the pool's
    clashes: list[int] = []

    class Document:
        def __init__(self) -> None:
            self.me = self  # freed by the collector, in whichever thread it runs

    def release(fonts: object) -> None:
        with guard:
            held.discard(id(fonts))
        weasy.give_back_fonts(fonts)

    def work() -> None:
        for round_ in range(300):
            fonts = weasy.lend_fonts()
            with guard:
                if id(fonts) in held:
                    clashes.append(id(fonts))
                held.add(id(fonts))
            if round_ % 2:
                release(fonts)
            else:
                document = Document()
                weakref.finalize(document, release, fonts)
                del document

    old = gc.get_threshold()
    gc.set_threshold(5, 2, 2)
    try:
        threads = [threading.Thread(target=work, daemon=True) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        gc.set_threshold(*old)
    gc.collect()
    assert clashes == []
    assert not held  # every loan came back
    assert len(weasy._idle_fonts) <= weasy.MAX_IDLE_FONTS
