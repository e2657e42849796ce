"""Blank forms and export codebooks rendered ahead by the job worker (selfcheck/prefill.py).

Renders are counted, not run (a blank form takes half a second, a codebook seconds): what is
tested is what is rendered when, what is kept, and when the worker starts its filler.
tests/services/evaluation/test_export.py renders a real codebook through the same cache.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_babel import force_locale, get_locale

from selfcheck import prefill
from selfcheck.evaluation import codebook
from selfcheck.evaluation.export import Shape
from selfcheck.paper import blank_cache
from selfcheck.paper import operations as paper
from selfcheck.platform import jobs
from selfcheck.platform.db import Database
from selfcheck.platform.models import Job, Role, Structure
from selfcheck.questionnaire.model import Definition, FormKind, Wording
from tests.render_counting import count_collections
from tests.staff import add_staff, signed_in

BASE = "https://selfcheck.example.org"
LANGUAGES = ("fr", "ar")
BLANKS = len(FormKind) * len(LANGUAGES) * len(Wording) * 2  # x print sizes
BOOKS = len(Shape) * 2 * len(LANGUAGES)  # x free text or not


@pytest.fixture
def renders(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Blank forms rendered: their options (site address...)."""
    calls: list[dict[str, Any]] = []

    def counted(copies: Any, **options: Any) -> bytes:
        calls.append(options)
        return b"%PDF-1.7\n% form " + str(len(calls)).encode() + b"\n%%EOF\n"

    for wording in Wording:
        monkeypatch.setattr(paper.renderer(app, wording), "questionnaires", counted)
    count_collections(monkeypatch)  # no full collection after a counted render
    app.config["SELFCHECK_LANGUAGES"] = LANGUAGES
    return calls


@pytest.fixture
def books(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool, str, str]]:
    """Codebook PDFs rendered: shape, free text, language, the date printed."""
    calls: list[tuple[str, bool, str, str]] = []

    def counted(book: codebook.Codebook) -> bytes:
        calls.append((book.shape, book.free_text, str(get_locale()), book.created))
        return b"%PDF-1.7\n% codebook " + str(len(calls)).encode() + b"\n%%EOF\n"

    monkeypatch.setattr(codebook, "_render_pdf", counted)
    return calls


def test_every_blank_form_and_codebook_rendered_once_then_read_by_an_export(
    app: Flask,
    renders: list[dict[str, Any]],
    books: list[tuple[str, bool, str, str]],
    definition: Definition,
) -> None:
    app.config[prefill.SITE_KEY] = BASE
    with app.app_context():
        before = prefill.todo(app)
        assert before == prefill.Todo(f"{BASE}/code", BLANKS, BOOKS)
        done = prefill.fill(app)
        assert (done.blanks, done.blanks_present, done.codebooks) == (BLANKS, 0, BOOKS)
        assert not done.stopped and prefill.todo(app).empty
        again = prefill.fill(app)
    assert (again.blanks, again.blanks_present, again.codebooks) == (0, BLANKS, 0)
    assert len(renders) == BLANKS and {call["site_url"] for call in renders} == {f"{BASE}/code"}
    # Each shape, free-text choice and language once, without the export's date.
    assert sorted(books) == sorted(
        (shape.value, free, lang, "")
        for shape in Shape
        for free in (False, True)
        for lang in LANGUAGES
    )

    # An export's codebook (the date and report of the export in it) is read, not rendered.
    with app.app_context(), force_locale("ar"):
        book = codebook.for_data_file(
            codebook.build(definition, Shape.LONG, True), "data.sav", "sav"
        )
        book.report_lines = ["k = 5"]
        data = codebook.pdf(book)
    assert len(books) == BOOKS and data.startswith(b"%PDF-1.7\n% codebook ")
    cache = blank_cache.folder(app)
    assert cache is not None and len(list(cache.glob("codebook-*.pdf"))) == BOOKS


def test_an_export_keeps_a_missing_codebook_for_the_next_one(
    app: Flask, books: list[tuple[str, bool, str, str]], definition: Definition
) -> None:
    with app.app_context(), force_locale("fr"):
        book = codebook.build(definition, Shape.WIDE, False)
        first = codebook.pdf(book)
        assert codebook.pdf(codebook.build(definition, Shape.WIDE, False)) == first
        codebook.pdf(codebook.build(definition, Shape.WIDE, True))
    with app.app_context(), force_locale("en"):
        codebook.pdf(book)
    assert books == [
        ("wide", False, "fr", ""),
        ("wide", True, "fr", ""),
        ("wide", False, "en", ""),
    ]


def test_without_an_address_the_codebooks_then_the_print_pages_address(
    app: Flask,
    renders: list[dict[str, Any]],
    books: list[tuple[str, bool, str, str]],
    database: Database,
    structure: Structure,
) -> None:
    with app.app_context():
        assert prefill.todo(app) == prefill.Todo(None, 0, BOOKS)
        done = prefill.fill(app)
    assert (done.site_url, done.blanks, done.codebooks) == (None, 0, BOOKS) and not renders
    # A mediator opens the print page: its address is kept for the worker.
    staff = signed_in(app, add_staff(database, Role.MEDIATOR, structure))
    assert staff.get("/staff/print").status_code == 200
    with app.app_context():
        assert prefill.todo(app) == prefill.Todo("http://localhost/code", BLANKS, 0)
        prefill.fill(app)
    assert {call["site_url"] for call in renders} == {"http://localhost/code"}


def test_the_filler_stops_for_a_job_and_fills_alone(
    app: Flask, renders: list[dict[str, Any]], books: list[tuple[str, bool, str, str]]
) -> None:
    app.config[prefill.SITE_KEY] = BASE
    answers = iter([True, True, False])
    with app.app_context():
        done = prefill.fill(app, keep_going=lambda: next(answers, False))
    assert done.stopped and (done.blanks, done.codebooks) == (2, 0)
    cache = blank_cache.folder(app)
    assert cache is not None
    with prefill._filling(cache) as mine:  # another process filling the same folder
        assert mine
        with app.app_context():
            assert prefill.fill(app).busy
    assert len(renders) == 2 and not books


def _job(database: Database, structure: Structure, status: str) -> None:
    user = add_staff(database, Role.MEDIATOR, structure)
    with database.session() as session:
        session.add(
            Job(id="b" * 32, kind="print_batch", user_id=user.id, params="{}", status=status)
        )
        session.commit()


def test_the_worker_starts_its_filler_when_something_is_missing_and_no_job_waits(
    app: Flask,
    renders: list[dict[str, Any]],
    books: list[tuple[str, bool, str, str]],
    database: Database,
    structure: Structure,
    tmp_path: Path,
) -> None:
    app.config[prefill.SITE_KEY] = BASE
    started = tmp_path / "started"
    # Two fillers, one after the other (blank forms, then codebooks).
    write = [sys.executable, "-c", f"open({str(started)!r}, 'a').write('x')"]
    watcher = prefill.Watcher(app, [write, write])
    _job(database, structure, jobs.JobStatus.QUEUED.value)
    assert watcher.look() == prefill.LOOK_AGAIN and not started.exists()  # a job first
    with database.session() as session:
        job = session.get(Job, "b" * 32)
        assert job is not None
        job.status = jobs.JobStatus.DONE.value
        session.commit()
    cache = blank_cache.folder(app)
    assert cache is not None
    with prefill._filling(cache):  # another worker's filler at work on the folder
        assert watcher.look() == prefill.LOOK_AGAIN and not started.exists()
    assert watcher.look() == prefill.LOOK_EVERY and started.read_text() == "xx"
    with app.app_context():
        prefill.fill(app)
    assert watcher.look() == prefill.LOOK_EVERY and started.read_text() == "xx"  # all there
    next(cache.glob("codebook-*.pdf")).unlink()
    for status, wait in ((prefill.YIELDED, prefill.LOOK_AGAIN), (1, prefill.LOOK_EVERY)):
        ends = [sys.executable, "-c", f"raise SystemExit({status})"]
        filler = prefill.Watcher(app, [ends, write])
        assert filler.look() == wait  # stopped for a job: soon again; failed: not soon
        assert started.read_text() == "xx"  # the second filler not started
    # Not in tests, debug mode, without a folder, or turned off.
    assert prefill.start(app) is None
    app.config[prefill.CONFIG_KEY] = "0"
    assert not prefill.enabled(app)


def test_the_command_fills_in_the_background_and_stops_for_a_job(
    app: Flask,
    renders: list[dict[str, Any]],
    books: list[tuple[str, bool, str, str]],
    database: Database,
    structure: Structure,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from selfcheck.cli import main

    niced: list[int] = []
    monkeypatch.setattr("os.nice", niced.append)
    result = app.test_cli_runner().invoke(main, ["paper", "prefill", "--background"])
    assert result.exit_code == 0, result.output
    assert "blank forms: no address" in result.output
    assert f"codebooks: {BOOKS} rendered" in result.output and niced == [19]
    _job(database, structure, jobs.JobStatus.RUNNING.value)
    stopped = app.test_cli_runner().invoke(
        main, ["paper", "prefill", "--background", "--url", BASE]
    )
    assert stopped.exit_code == prefill.YIELDED and "stopped: a job" in stopped.output
    assert not renders
    only = app.test_cli_runner().invoke(
        main, ["paper", "prefill", "--url", BASE, "--only", "forms"]
    )
    assert f"{BLANKS} rendered, 0 already there" in only.output and "codebooks" not in only.output


def test_a7_3_a_forged_host_does_not_change_the_address_rendered_ahead(
    app: Flask,
    renders: list[dict[str, Any]],
    books: list[tuple[str, bool, str, str]],
    database: Database,
    structure: Structure,
) -> None:
    # The site's address, kept when the print page was opened normally.
    staff = signed_in(app, add_staff(database, Role.MEDIATOR, structure))
    assert staff.get("/staff/print").status_code == 200
    # The same mediator (their own cookie) sends the page another Host header, as curl can:
    # each new host makes the worker render all 80 blank forms again (about 40 s of CPU at
    # the lowest priority), for an address nobody prints, and they push the site's own forms
    # out of the folder (MAX_FILES 200) after two or three such hosts.
    cookie = staff.client.get_cookie(str(app.config["SESSION_COOKIE_NAME"]))
    assert cookie is not None
    staff.client.set_cookie(cookie.key, cookie.value, domain="evil.example")
    forged = staff.get("/staff/print", headers={"Host": "evil.example"})
    assert forged.status_code == 200, forged.headers.get("Location")
    with app.app_context():
        assert prefill.todo(app).site_url == "http://localhost/code"


# --- the worker's codebooks-first step at its start (prefill.codebooks_first, weasy.chain) ---


class _Execed(Exception):
    """`os.execv` called: the test's stand-in stops there."""

    def __init__(self, path: str, argv: list[str]) -> None:
        super().__init__(path)
        self.path, self.argv = path, argv


@pytest.fixture
def execv(monkeypatch: pytest.MonkeyPatch) -> None:
    def stand_in(path: str, argv: list[str]) -> None:
        raise _Execed(path, list(argv))

    monkeypatch.setattr(prefill.os, "execv", stand_in)
    monkeypatch.delenv(prefill.FIRST_DONE, raising=False)


def test_codebooks_first_writes_each_missing_request_then_becomes_the_chain(
    app: Flask, execv: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl
    import json
    import os

    from selfcheck.platform import printing

    app.config["SELFCHECK_LANGUAGES"] = LANGUAGES
    cache = blank_cache.folder(app)
    assert cache is not None
    then = [sys.executable, "-c", "pass", "worker"]
    with pytest.raises(_Execed) as execed:
        prefill.codebooks_first(app, then)
    argv = execed.value.argv
    assert execed.value.path == sys.executable
    assert argv[:4] == [sys.executable, "-P", str(printing.WEASY_SCRIPT), "--chain"]
    folder = Path(argv[4])
    assert folder.parent == cache and folder.name.startswith(prefill.CHAIN_PREFIX)
    assert argv[5] == "--lock" and argv[7] == "--wake" and argv[9] == "--seen"
    assert argv[11] == "--" and argv[12:] == then
    # The jobs folder's wake file, as it was before the queue was read ("": none yet).
    assert argv[8] == str(jobs.wake_file(jobs.queue(app))) and argv[10] == ""
    handle = int(argv[6])
    try:
        assert os.get_inheritable(handle)  # kept open by the chain's links
        with (cache / prefill.LOCK_FILE).open("a") as other, pytest.raises(OSError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: no filler meanwhile
    finally:
        os.close(handle)
    assert os.environ.pop(prefill.FIRST_DONE) == "1"  # the worker started again skips it
    requests = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
    assert len(requests) == BOOKS
    with app.app_context():
        languages = list(LANGUAGES)
        expected = {
            str(cache / codebook.pdf_name(shape.value, free, languages, lang))
            for shape, free, lang in codebook.every_pdf()
        }
        assert {request["output"] for request in requests} == expected
        # The same request as the export's own render apart, for the same codebook.
        definition = app.extensions["selfcheck.definition"]
        with force_locale("ar"):
            plain = codebook._plain(codebook.build(definition, Shape.WIDE, False))
            own = codebook._printer().apart_request(codebook.html(plain), [codebook.STYLESHEET])
            name = codebook.pdf_name(Shape.WIDE.value, False, languages, "ar")
    [same] = [request for request in requests if request["output"] == str(cache / name)]
    assert {key: value for key, value in same.items() if key != "output"} == own
    assert "<table" in same["html"] and same["variant"] == printing.PDF_VARIANT


def test_codebooks_first_does_nothing_when_done_kept_off_or_busy(
    app: Flask, execv: None, books: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl
    import os

    app.config["SELFCHECK_LANGUAGES"] = LANGUAGES
    cache = blank_cache.folder(app)
    assert cache is not None
    # Started again at the end of the step: skipped once, the mark removed.
    monkeypatch.setenv(prefill.FIRST_DONE, "1")
    assert prefill.codebooks_first(app, ["x"]) is False
    assert prefill.FIRST_DONE not in os.environ
    # Rendering ahead turned off.
    app.config[prefill.CONFIG_KEY] = "0"
    assert prefill.codebooks_first(app, ["x"]) is False
    app.config[prefill.CONFIG_KEY] = "1"
    # Another process holds the folder's filler lock: it renders them.
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / prefill.LOCK_FILE).open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert prefill.codebooks_first(app, ["x"]) is False
        fcntl.flock(other, fcntl.LOCK_UN)
    assert not list(cache.glob(prefill.CHAIN_PREFIX + "*"))
    # Every codebook kept: nothing to do.
    with app.app_context():
        prefill.fill(app, forms=False)
    assert len(books) == BOOKS
    assert prefill.codebooks_first(app, ["x"]) is False


@pytest.mark.slow  # three WeasyPrint processes: 5-30 s
def test_the_chain_renders_each_request_in_turn_then_becomes_the_command(tmp_path: Path) -> None:
    """`weasy.py --chain`, for real: one process, one image per request, the PDFs kept whole
    (the same bytes as a render apart), a bad request dropped, the lock closed, then `then`."""
    import fcntl
    import json
    import os
    import subprocess

    from selfcheck.platform import printing

    directory = Path(printing.__file__).resolve().parent.parent / "paper" / "templates"
    printer = printing.printer(directory)
    html = '<html lang="fr"><body><h1>Dictionnaire</h1><p>Deux pages ?</p></body></html>'
    request = printer.apart_request(html, ["codebook.css"])
    folder = tmp_path / "cache" / (prefill.CHAIN_PREFIX + "x")
    folder.mkdir(parents=True)
    kept = tmp_path / "cache" / "codebook-a.pdf"
    (folder / "0000.json").write_text(json.dumps({**request, "output": str(kept)}))
    (folder / "0001.json").write_text("{not json")
    lock = os.open(tmp_path / "lock", os.O_WRONLY | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    check = (
        "import os, sys\n"
        f"try:\n    os.fstat({lock}); print('lock open')\n"
        "except OSError:\n    print('lock closed')\n"
        "print('then', sys.argv[1:])\n"
    )
    command = [sys.executable, "-P", str(printing.WEASY_SCRIPT), "--chain", str(folder)]
    then = [sys.executable, "-c", check, "worker"]
    try:
        done = subprocess.run(
            [*command, "--lock", str(lock), "--", *then],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            pass_fds=(lock,),
        )
    finally:
        os.close(lock)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["lock closed", "then ['worker']"]
    assert "0001.doing not rendered" in done.stderr
    assert not folder.exists()
    data = kept.read_bytes()
    assert data == printer.pdf_apart(html, ["codebook.css"])
    assert blank_cache.present(kept) and not list(kept.parent.glob(".draft-*"))


def test_a_codebook_whose_render_ended_the_step_is_not_tried_again_at_the_next_start(
    app: Flask, execv: None
) -> None:
    """A link killed while it rendered (out of memory, say) leaves its request as `.doing`:
    the worker's next starts leave that codebook to the export rather than loop on it."""
    import json
    import os
    import shutil

    app.config["SELFCHECK_LANGUAGES"] = LANGUAGES
    cache = blank_cache.folder(app)
    assert cache is not None
    with app.app_context():
        name = codebook.pdf_name(Shape.WIDE.value, False, list(LANGUAGES), "fr")
    stale = cache / (prefill.CHAIN_PREFIX + "old")
    stale.mkdir(parents=True)
    (stale / "0003.doing").write_text(json.dumps({"output": str(cache / name)}))
    (stale / "0004.json").write_text("{}")
    for _ in range(2):  # noted: the next start leaves it too
        with pytest.raises(_Execed) as execed:
            prefill.codebooks_first(app, ["x"])
        os.close(int(execed.value.argv[6]))
        os.environ.pop(prefill.FIRST_DONE)
        folder = Path(execed.value.argv[4])
        outputs = [json.loads(path.read_text())["output"] for path in folder.glob("*.json")]
        assert len(outputs) == BOOKS - 1 and str(cache / name) not in outputs
        assert not stale.exists()
        shutil.rmtree(folder)
    noted = (cache / prefill.CRASHED_FILE).read_text().splitlines()
    assert [line.split()[0] for line in noted] == [name]  # once, with its time (round 23)


@pytest.mark.slow  # a WeasyPrint process: 2-20 s
def test_a_chain_stopped_while_it_renders_puts_its_request_back(tmp_path: Path) -> None:
    """Stopped (SIGTERM: the service stops) is not a render that failed: the request is
    renamed back, so the next start renders it rather than note it as crashed."""
    import json
    import signal
    import subprocess
    import time

    from selfcheck.platform import printing

    directory = Path(printing.__file__).resolve().parent.parent / "paper" / "templates"
    rows = "".join(f"<tr><td>{n}</td><td>ligne {n}</td></tr>" for n in range(1500))
    html = f'<html lang="fr"><body><table class="codebook">{rows}</table></body></html>'
    request = printing.printer(directory).apart_request(html, ["codebook.css"])
    folder = tmp_path / (prefill.CHAIN_PREFIX + "x")
    folder.mkdir()
    (folder / "0000.json").write_text(json.dumps({**request, "output": str(tmp_path / "a.pdf")}))
    command = [sys.executable, "-P", str(printing.WEASY_SCRIPT), "--chain", str(folder)]
    process = subprocess.Popen([*command, "--", sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 120
        while not (folder / "0000.doing").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (folder / "0000.doing").exists()
        time.sleep(0.2)  # inside the render
        process.send_signal(signal.SIGTERM)
        # Ended by the signal itself, as systemd counts a clean stop (attack12).
        assert process.wait(timeout=60) == -signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
    assert [path.name for path in folder.iterdir()] == ["0000.json"]
    assert not (tmp_path / "a.pdf").exists()
