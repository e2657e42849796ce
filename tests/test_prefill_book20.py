"""book20 (round 20): after a worker's start on a cold codebook folder no job waits for the
whole chain of codebook renders, and an export whose codebook is missing while the worker
runs never renders it beside the worker (selfcheck/prefill.py: `chain_codebooks`, `Rechain`;
platform/weasy.py: `chain`'s wake file; platform/jobs.py: `JobDeferred`, `wake_workers`).

Renders are counted or stubbed in process; the chain's links and a real worker are run as
processes (the slow ones render real codebooks), on SQLite and on PostgreSQL (the queue is
huey's SqliteHuey or PostgresHuey, `SELFCHECK_TEST_DATABASE_URL`).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_babel import get_locale
from sqlalchemy.orm import Session

from selfcheck import prefill
from selfcheck.evaluation import codebook
from selfcheck.evaluation.export import Shape
from selfcheck.paper import blank_cache
from selfcheck.platform import jobs
from selfcheck.platform.db import Database
from selfcheck.platform.models import ExportLog, Job, Role, Structure
from selfcheck.questionnaire.model import Definition
from tests.conftest import AppFactory
from tests.platform.test_jobs import CODED, job_id_of, job_of, queued_app
from tests.services.evaluation.support import populate
from tests.staff import add_staff, signed_in
from tests.support import count

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ("fr", "ar")
BOOKS = len(Shape) * 2 * len(LANGUAGES)


@pytest.fixture
def books(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool, str]]:
    """Codebook PDFs rendered in or beside this process (`_render_pdf`): counted, stubbed."""
    calls: list[tuple[str, bool, str]] = []

    def counted(book: codebook.Codebook) -> bytes:
        calls.append((book.shape, book.free_text, str(get_locale())))
        return b"%PDF-1.7\n% codebook " + str(len(calls)).encode() + b"\n%%EOF\n"

    monkeypatch.setattr(codebook, "_render_pdf", counted)
    return calls


class _Execed(Exception):
    def __init__(self, argv: list[str]) -> None:
        super().__init__(argv[0])
        self.argv = argv


@pytest.fixture
def execv(monkeypatch: pytest.MonkeyPatch) -> None:
    def stand_in(path: str, argv: list[str]) -> None:
        raise _Execed(list(argv))

    monkeypatch.setattr(prefill.os, "execv", stand_in)
    monkeypatch.setattr(prefill, "_let_go", lambda app: None)
    monkeypatch.delenv(prefill.FIRST_DONE, raising=False)


def chain_stood_in(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> tuple[Flask, Path, list[str]]:
    """An app (French only) whose codebook chain stops at its `execv` (`_Execed`, read back
    by `_requests`), its codebook folder and the codebooks it would chain, in order."""

    def stand_in(path: str, argv: list[str]) -> None:
        raise _Execed(list(argv))

    monkeypatch.setattr(prefill.os, "execv", stand_in)
    monkeypatch.setattr(prefill, "_let_go", lambda app: None)
    monkeypatch.delenv(prefill.FIRST_DONE, raising=False)
    app = make_app(SELFCHECK_LANGUAGES=("fr",))
    cache = blank_cache.folder(app)
    assert cache is not None
    with app.app_context():
        names = prefill.chainable(app, cache)
    return app, cache, names


def _requests(execed: _Execed) -> list[dict[str, Any]]:
    os.close(int(execed.argv[execed.argv.index("--lock") + 1]))
    os.environ.pop(prefill.FIRST_DONE, None)
    folder = Path(execed.argv[4])
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


# --- the wake file ----------------------------------------------------------------------------


def test_each_job_queued_replaces_the_wake_file(
    make_app: AppFactory, tmp_path: Path, structure: Structure
) -> None:
    """A chain's link reads one small file between two renders: every job queued (and only
    a real queue: not in immediate mode) gives it a new content, in the jobs folder."""
    app = queued_app(make_app, tmp_path)
    queue = jobs.queue(app)
    assert jobs.wake_token(queue) == ""
    database: Database = app.extensions["selfcheck.platform.db"]
    staff = signed_in(app, add_staff(database, Role.MEDIATOR, structure))
    tokens = []
    for _ in range(2):
        staff.get("/staff/print")
        job_id_of(staff.post("/staff/print", CODED))
        tokens.append(jobs.wake_token(queue))
    assert "" not in tokens and tokens[0] != tokens[1]
    assert jobs.wake_file(queue).parent == queue.results
    assert not list(queue.results.glob(".wake-*"))  # written whole, then renamed
    queue.huey.flush()


def test_a_wake_file_that_cannot_be_written_never_fails_the_request(
    make_app: AppFactory, tmp_path: Path
) -> None:
    app = queued_app(make_app, tmp_path)
    queue = jobs.queue(app)
    queue.results = tmp_path / "a-file"
    queue.results.write_text("not a folder")
    jobs.wake_workers(queue)  # logged, nothing raised
    assert jobs.wake_token(queue) == ""


# --- the chain goes back to the worker when a job waits (weasy.py, for real) -------------------

_FAST_LINK = """
import sys
from pathlib import Path
from selfcheck.platform import weasy

weasy.render = lambda *args, **kwargs: b"%PDF-1.7 stub"
wake = Path(sys.argv[2])
weasy.chain(Path(sys.argv[1]), None, sys.argv[4:], wake, sys.argv[3])
"""


def _chain_of_two(tmp_path: Path, second: str) -> tuple[Path, Path, Path]:
    cache = tmp_path / "cache"
    folder = cache / (prefill.CHAIN_PREFIX + "x")
    folder.mkdir(parents=True)
    request = {"html": "", "directory": str(tmp_path), "others": [], "stylesheets": []}
    first = cache / "codebook-a.pdf"
    (folder / "0000.json").write_text(json.dumps({**request, "variant": "x", "output": str(first)}))
    (folder / "0001.json").write_text(second)
    wake = tmp_path / "jobs" / jobs.WAKE_FILE
    wake.parent.mkdir()
    return folder, first, wake


@pytest.mark.parametrize("woken", [True, False])
def test_a_link_goes_back_to_the_worker_when_a_job_was_queued_since_the_chain_began(
    tmp_path: Path, woken: bool
) -> None:
    """The first link renders its codebook; a job was queued meanwhile (the wake file no
    longer holds what it held when the chain began): the next request is left for later and
    the process becomes the worker at once. Not woken: the next link takes the next request
    (here one that is not JSON: dropped, as before)."""
    folder, first, wake = _chain_of_two(tmp_path, "{not json")
    wake.write_text("queued since" if woken else "as it was")
    then = [sys.executable, "-c", "print('then reached')"]
    done = subprocess.run(
        [sys.executable, "-c", _FAST_LINK, str(folder), str(wake), "as it was", *then],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "then reached"
    assert first.read_bytes() == b"%PDF-1.7 stub"  # at least one render per chain
    assert not folder.exists()
    assert ("a job is waiting, back to the worker (1 left for later)" in done.stderr) is woken
    assert ("0001.doing not rendered" in done.stderr) is not woken


def test_a_render_that_fails_is_noted_so_that_no_export_waits_for_it_again(
    tmp_path: Path,
) -> None:
    """A request whose render fails (here a stylesheet that is not there) is noted beside
    the codebooks: the step and the idle chains leave it out rather than send the worker
    into a chain for it again and again (round 21: an export that needs it has the chain
    try it once more, then fails in plain words: tests/test_jobs21.py)."""
    from selfcheck.platform import printing

    cache = tmp_path / "cache"
    folder = cache / (prefill.CHAIN_PREFIX + "x")
    folder.mkdir(parents=True)
    directory = Path(printing.__file__).resolve().parent.parent / "paper" / "templates"
    request = printing.printer(directory).apart_request("<p>x</p>", ["not-there.css"])
    (folder / "0000.json").write_text(json.dumps({**request, "output": str(cache / "b.pdf")}))
    command = [sys.executable, "-P", str(printing.WEASY_SCRIPT), "--chain", str(folder)]
    options = ["--wake", str(tmp_path / "none"), "--seen", ""]
    done = subprocess.run(
        [*command, *options, "--", sys.executable, "-c", "pass"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "0000.doing not rendered" in done.stderr
    assert prefill._noted(cache) == {"b.pdf"} and prefill._crashed(cache) == {"b.pdf"}
    assert prefill.CRASHED_FILE == ".codebooks-first-crashed"  # weasy.py's own copy
    from selfcheck.platform import weasy

    assert weasy.CRASHED_FILE == prefill.CRASHED_FILE


# --- when the worker chains ---------------------------------------------------------------------


def _job(database: Database, structure: Structure, status: str) -> None:
    user = add_staff(database, Role.MEDIATOR, structure, email=f"{status}@example.org")
    with database.session() as session:
        session.add(Job(id="c" * 32, kind="print_batch", user_id=user.id, status=status))
        session.commit()


def test_no_chain_while_jobs_wait_unless_an_export_waits_for_its_codebook(
    app: Flask, execv: None, database: Database, structure: Structure
) -> None:
    """Jobs queued before the chain would begin (a row queued or running; a message in
    huey's queue): the worker takes them first, no chain. An export waiting for its
    codebook (`wanted`): that codebook only, queue or not."""
    app.config["SELFCHECK_LANGUAGES"] = LANGUAGES
    cache = blank_cache.folder(app)
    assert cache is not None
    _job(database, structure, jobs.JobStatus.QUEUED.value)
    assert prefill.codebooks_first(app, ["x"]) is False
    assert prefill.chain_codebooks(app, ["x"]) is False
    assert not list(cache.glob(prefill.CHAIN_PREFIX + "*"))
    with app.app_context():
        name = codebook.pdf_name(Shape.LONG.value, True, list(LANGUAGES), "ar")
    with pytest.raises(_Execed) as execed:
        prefill.chain_codebooks(app, ["x"], [name])
    assert [request["output"] for request in _requests(execed.value)] == [str(cache / name)]
    with database.session() as session:
        job = session.get(Job, "c" * 32)
        assert job is not None
        job.status = jobs.JobStatus.DONE.value
        session.commit()
    with pytest.raises(_Execed) as execed:
        prefill.chain_codebooks(app, ["x"])  # idle: all of them
    assert len(_requests(execed.value)) == BOOKS


def test_the_watcher_sends_the_worker_into_the_chain_when_idle(
    app: Flask,
    books: list[Any],
    database: Database,
    structure: Structure,
    tmp_path: Path,
) -> None:
    """With a `Rechain` (the worker), the watcher renders the blank forms by its filler as
    before, then asks the worker to chain for the codebooks rather than start the second
    filler (which renders each beside the worker); codebooks the chain leaves (noted as
    failed) are no longer the second filler's either (round 21): they wait for an export
    that needs them (the chain tries them then), never rendered beside the worker."""
    app.config["SELFCHECK_LANGUAGES"] = LANGUAGES
    cache = blank_cache.folder(app)
    assert cache is not None
    started = tmp_path / "started"
    first = [sys.executable, "-c", f"open({str(started)!r}, 'a').write('f')"]
    second = [sys.executable, "-c", f"open({str(started)!r}, 'a').write('c')"]
    rechain = prefill.Rechain(app)
    stops: list[int] = []
    rechain.stop_consumer = lambda: stops.append(1)
    watcher = prefill.Watcher(app, [first, second], rechain=rechain)
    assert watcher.look() == prefill.LOOK_AGAIN
    assert not started.exists() and stops == [1]  # no address: no forms; codebooks: chain
    assert rechain.wanted.is_set() and rechain.take() == [] and not rechain.wanted.is_set()
    app.config[prefill.SITE_KEY] = "https://selfcheck.example.org"
    assert watcher.look() == prefill.LOOK_AGAIN and started.read_text() == "f" and stops == [1, 1]
    rechain.take()
    with app.app_context():
        names = prefill.chainable(app, cache)
    assert len(names) == BOOKS
    (cache / prefill.CRASHED_FILE).write_text("\n".join(names) + "\n")
    assert watcher.look() == prefill.LOOK_EVERY
    assert "c" not in started.read_text()  # round 21: never the codebooks filler
    assert stops == [1, 1] and not rechain.wanted.is_set()


def test_an_export_asks_for_its_codebook_once_and_not_past_a_busy_lock(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Round 21: past the first ask or a busy lock the export waits again (its message due
    later), never renders the codebook beside the worker (tests/test_jobs21.py)."""
    import fcntl

    cache = blank_cache.folder(app)
    assert cache is not None
    rechain = prefill.Rechain(app)
    first = rechain.wait_for("codebook-a.pdf")
    assert first is not None and first.before == rechain.request and first.delay == 0
    # Asked again before the chain began (a second consumer thread took the message back
    # while the consumer was stopping): deferred again, not rendered beside the worker.
    again = rechain.wait_for("codebook-a.pdf")
    assert again is not None and again.before == rechain.request
    assert rechain.take() == ["codebook-a.pdf"]
    later = rechain.wait_for("codebook-a.pdf")  # chained for once: waits, not rendered here
    assert later is not None and later.delay == prefill.Rechain.AGAIN_AFTER
    monkeypatch.setattr(prefill.Rechain, "LOCK_WAIT", 0.3)
    with (cache / prefill.LOCK_FILE).open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another worker's chain
        busy = rechain.wait_for("codebook-c.pdf")
    assert busy is not None and busy.delay == prefill.Rechain.AGAIN_AFTER
    assert rechain.take() == []


# --- an export whose codebook is missing waits in the queue (real huey queue) ----------------


@pytest.mark.slow  # two export runs: 5-15 s on 2 shared cores
def test_an_export_waits_in_the_queue_for_its_codebook_then_runs_once(
    make_app: AppFactory,
    tmp_path: Path,
    db_session: Session,
    definition: Definition,
    books: list[Any],
) -> None:
    """The worker's export finds its codebook missing: nothing is rendered beside it, the
    job goes back to the queue (its page says what it waits for), the worker is asked to
    stop taking jobs before the message is queued again; once the codebook is there (the
    chain's work, here a fill), the same job runs once and its zip holds that codebook."""
    app = queued_app(make_app, tmp_path)
    database: Database = app.extensions["selfcheck.platform.db"]
    queue = jobs.queue(app)
    cache = blank_cache.folder(app)
    assert cache is not None
    populate(db_session, definition, people=14, moved=5)
    rechain = prefill.Rechain(app)
    pending_at_stop: list[int] = []
    rechain.stop_consumer = lambda: pending_at_stop.append(queue.huey.pending_count())
    app.extensions[codebook.WAIT_KEY] = rechain.wait_for
    evaluator = signed_in(app, add_staff(database, Role.EVALUATOR, departments=("44",)))
    job_id = job_id_of(evaluator.get("/evaluate/exports/download?format=csv&shape=wide"))
    woken = jobs.wake_token(queue)
    queue.huey.execute(queue.huey.dequeue())
    job = job_of(database, job_id)
    assert job.status == "queued" and job.started_at is not None and job.progress == 0
    assert pending_at_stop == [0] and queue.huey.pending_count() == 1
    assert jobs.wake_token(queue) != woken
    assert not books and count(database, ExportLog) == 0
    assert not (queue.results / job_id).exists()
    [wanted] = rechain.take()
    with app.app_context():
        assert wanted == codebook.pdf_name(
            Shape.WIDE.value, False, app.config["SELFCHECK_LANGUAGES"], "fr"
        )
    page = evaluator.get(f"/staff/jobs/{job_id}")
    assert page.status_code == 200 and "dictionnaire des variables (PDF)" in evaluator.text
    assert page.headers["Refresh"]  # still refreshing while it waits
    (cache / wanted).write_bytes(b"%PDF-1.7\n% the chain's\n%%EOF\n")  # the chain renders it
    queue.huey.execute(queue.huey.dequeue())
    job = job_of(database, job_id)
    assert job.status == "done" and count(database, ExportLog) == 1 and not books
    assert queue.huey.pending_count() == 0
    bundle = zipfile.ZipFile(io.BytesIO((queue.results / str(job.result_path)).read_bytes()))
    assert bundle.read("codebook.pdf") == (cache / wanted).read_bytes()
    assert "En attente" not in evaluator.get(f"/staff/jobs/{job_id}").get_data(as_text=True)


# --- a real worker on a cold folder: a job queued mid-chain waits for one render -------------


@pytest.mark.slow  # real codebook renders and worker starts: 40-300 s on 2 shared cores
def test_a_job_queued_while_the_worker_renders_codebooks_runs_after_one_render(
    make_app: AppFactory,
    database_url: str,
    database: Database,
    structure: Structure,
    tmp_path: Path,
) -> None:
    """A worker started on a cold codebook folder chains its renders; a print batch queued
    during the first render is done after that render and a worker start (not after the
    whole chain), the worker goes back into the chain for the codebooks left once its queue
    is idle, and it stops cleanly (SIGINT, as systemd stops it)."""
    cache = tmp_path / "rendered"
    env = {
        **os.environ,
        "SELFCHECK_DATABASE_URL": database_url,
        "SELFCHECK_SECRET_KEY": "test-only-secret-key-for-the-worker-test",
        "SELFCHECK_JOBS_DIR": str(tmp_path / "files"),
        "SELFCHECK_PAPER_CACHE_DIR": str(cache),
        "SELFCHECK_LANGUAGES": "fr",
        "PYTHONPATH": str(ROOT),
    }
    # The test's app queues in the worker's queue (not the suite's immediate mode): a
    # SQLite file, or PostgresHuey in the test database.
    overrides: dict[str, Any] = {
        "SELFCHECK_JOBS_DIR": str(tmp_path / "files"),
        "SELFCHECK_JOBS_URL": "",
        # The worker's key: the queue's messages are signed under it (attack16).
        "SECRET_KEY": env["SELFCHECK_SECRET_KEY"],
    }
    if not database_url.startswith("postgresql"):
        env["SELFCHECK_JOBS_URL"] = f"sqlite:///{tmp_path / 'queue.db'}"
        overrides["SELFCHECK_JOBS_URL"] = env["SELFCHECK_JOBS_URL"]
    app = make_app(**overrides)
    staff = signed_in(app, add_staff(database, Role.MEDIATOR, structure))
    staff.get("/staff/print")
    log_path = tmp_path / "worker.log"
    log = log_path.open("w")
    worker = subprocess.Popen(
        [sys.executable, "-c", "from selfcheck.cli import main; main()", "worker"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    chains = prefill.CHAIN_PREFIX + "*"
    try:
        deadline = time.monotonic() + 300
        while not list(cache.glob(chains + "/*.doing")):
            assert worker.poll() is None and time.monotonic() < deadline, _tail(log_path)
            time.sleep(0.05)
        [first_chain] = cache.glob(chains)
        job_id = job_id_of(staff.post("/staff/print", CODED))
        deadline = time.monotonic() + 600  # one render under load, and a worker start
        while job_of(database, job_id).status in jobs.ACTIVE:
            assert worker.poll() is None and time.monotonic() < deadline, _tail(log_path)
            time.sleep(0.1)
        kept = len(list(cache.glob("codebook-*.pdf")))
        assert job_of(database, job_id).status == "done", _tail(log_path)
        assert kept < 4, _tail(log_path)  # not the whole chain first
        log.flush()
        assert "a job is waiting, back to the worker (3 left" in log_path.read_text()
        assert not first_chain.exists()  # the chain's folder removed, its lock closed
        # Idle again: the worker goes back into the chain for the codebooks left.
        deadline = time.monotonic() + 300
        while not list(cache.glob(chains)) and len(list(cache.glob("codebook-*.pdf"))) < 4:
            assert worker.poll() is None and time.monotonic() < deadline, _tail(log_path)
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=120)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
    # The worker (0), or a link (ended by the signal, its request put back).
    assert worker.returncode in (0, -signal.SIGINT), _tail(log_path)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


def _run_script(script: str) -> subprocess.CompletedProcess[str]:
    """`script` in a fresh interpreter (SIGINT at its default action, as a service has it)."""
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_stop_held_across_execv_ends_the_worker_by_its_signal(signame: str) -> None:
    """A stop sent while a chain's `execv` starts the next image is held (the mask outlives
    `execv`, so Python's start-up never sees it: a SIGINT there was a fatal error, exit
    status 1); the worker lets it in at its start and ends by that signal, a clean stop for
    systemd."""
    script = (
        "import os, signal, sys\n"
        # As after `execv`: held before anything starts a thread (a thread of a library
        # imported below inherits the mask)
        "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})\n"
        "from selfcheck import prefill\n"
        f"os.kill(os.getpid(), signal.{signame})\n"
        "print('held', flush=True)\n"
        "prefill.stops_let_in()\n"
        "print('not stopped', flush=True)\n"
    )
    done = _run_script(script)
    assert done.stdout == "held\n", done.stderr
    assert done.returncode == -getattr(signal, signame)


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_stop_between_a_consumer_and_the_chain_ends_the_worker_by_its_signal(
    signame: str,
) -> None:
    """After a consumer's run its handlers stay set, and only note a stop for a consumer that
    no longer runs: a stop sent while the worker went from it into a chain was lost (the
    worker rendered, started a new consumer and ran until killed: CI, round 21). From the end
    of the consumer's graceful stop the worker sets the stops' default action
    (`stops_by_default`): the stop ends it by its signal, whichever thread it reaches."""
    script = (
        "import os, signal, threading\n"
        # As a started worker has them (a pytest-xdist worker's child inherits them held)
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})\n"
        "from selfcheck import prefill\n"
        "noted = []\n"
        "for stop in (signal.SIGINT, signal.SIGTERM):  # as a finished consumer leaves them\n"
        "    signal.signal(stop, lambda signum, frame: noted.append(signum))\n"
        "done = threading.Event()\n"
        "threading.Thread(target=done.wait, daemon=True).start()  # a thread still there\n"
        "prefill.stops_by_default()\n"
        "print('set', flush=True)\n"
        f"os.kill(os.getpid(), signal.{signame})\n"
        "done.wait(5)\n"
        "print('not stopped', noted, flush=True)\n"
    )
    done = _run_script(script)
    assert done.stdout == "set\n", done.stderr
    assert done.returncode == -getattr(signal, signame)
