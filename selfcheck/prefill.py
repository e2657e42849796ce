"""Blank paper forms and export codebooks rendered ahead, by the job worker (issue 18, 3 and 4).

Two kinds of PDF do not depend on anybody's data and are kept in the cache folder of rendered
files (`SELFCHECK_PAPER_CACHE_DIR`, by default instance/paper-blanks; paper/blank_cache.py):

- every **blank paper form** (form x language x wording x print size), for the site's address,
  which the form prints: served in a millisecond instead of rendered in half a second;
- every **export codebook PDF** (shape x free-text choice x language; evaluation/codebook.py):
  an export job then reads it instead of rendering 48 pages in a child process of about
  190 MB beside itself.

Their names are hashes of the item bank, the package's files and the PDF libraries, so a
deployment or a new item bank makes new files, and the old ones age out of the folder.

**Who renders them: the job worker**, without anybody's step. `selfcheck worker` (also started
by `selfcheck serve` and scripts/serve-demo) runs a `Watcher` thread: shortly after the start
and then every few minutes it looks at what is missing (names and the files' first and last
bytes: cheap, nothing imported) and, when something is and no job is queued or running,
starts `selfcheck paper prefill --background --only forms`, then `--only codebooks`: child
processes at the lowest priority, one after the other, each of which takes a lock on the
folder (one filler at a time, however many workers share the folder), renders what is
missing, checking before each file that no job has come in meanwhile (else it stops, and
the watcher starts it again once the queue is idle), and ends, giving back its memory.
The web workers never wait for it as a whole: until a file is there, a request renders it as
before, unless the filler is rendering that very form, when the request waits for its file
(paper/blank_cache.py, `rendering`). The forms come most asked first (`every_blank`), and a
web worker's warm-up keeps the most asked one (paper/warmup.py).

**The codebooks by the worker's own process, its app given up** (`chain_codebooks`): at the
worker's start, before its first job (`codebooks_first`: on an empty folder, a worker started
by `selfcheck serve`, the demo, a container, the first export would otherwise render its
codebook beside the worker, about 300 MB together), then whenever the queue is idle and some
are missing (the watcher asks, `Rechain`), and for an export whose codebook is missing (it
waits in the queue meanwhile: codebook.render_ahead, jobs.JobDeferred). A job queued while
the chain renders makes it go back to the worker after the render under way (the jobs
folder's wake file, jobs.wake_workers), so no job waits for the whole set (round 20).

**The site's address** for the blank forms: `SELFCHECK_SITE_URL` when set; else the address
the print page was last asked at, which the print page keeps in the folder
(`blank_cache.remember_site_url`). Without either (a new site whose print page was never
opened), only the codebooks are rendered ahead.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, url_for
from sqlalchemy import func, select

from selfcheck.evaluation import codebook
from selfcheck.paper import blank_cache
from selfcheck.platform import jobs
from selfcheck.platform.db import Database
from selfcheck.platform.models import Job

log = logging.getLogger(__name__)

CONFIG_KEY = "SELFCHECK_PREFILL"  # app.config, else the environment variable; default on
SITE_KEY = "SELFCHECK_SITE_URL"
LOCK_FILE = ".prefill.lock"
FIRST_LOOK_AFTER = 5.0  # seconds after the worker's start: its consumer starts first
LOOK_EVERY = 300.0  # seconds between two looks when everything was there
LOOK_AGAIN = 30.0  # when something is left (the queue was busy, or the filler stopped)
YIELDED = 3  # the filler's exit status when it stopped for a job
BUSY = 4  # ... when another process holds the folder's lock


def enabled(app: Flask) -> bool:
    """Whether the worker fills the cache ahead: a cache folder, and not turned off."""
    if blank_cache.folder(app) is None:
        return False
    configured = app.config.get(CONFIG_KEY)
    if configured is None:
        configured = os.environ.get(CONFIG_KEY, "1")
    return str(configured).strip().lower() not in {"0", "false", "no", "off", ""}


def site_url(app: Flask, cache: Path) -> str | None:
    """The address blank forms print (the code-entry page, as the print page gives it):
    from `SELFCHECK_SITE_URL`, else the one the print page last kept; None if neither."""
    base = str(app.config.get(SITE_KEY) or "")
    if base:
        with app.test_request_context(base_url=base):
            return url_for("journey.enter_code", _external=True)
    return blank_cache.remembered_site_url(cache)


@dataclass(frozen=True)
class Todo:
    site_url: str | None
    blanks: int  # blank forms missing for site_url (0 without an address)
    codebooks: int

    @property
    def empty(self) -> bool:
        return not (self.blanks or self.codebooks)


def todo(app: Flask, *, duplex: bool = False) -> Todo:
    """What is missing in the cache folder. Cheap; needs an app context."""
    cache = blank_cache.folder(app)
    if cache is None:
        return Todo(None, 0, 0)
    address = site_url(app, cache)
    blanks = len(blank_cache.missing(app, address, cache, duplex=duplex)) if address else 0
    return Todo(address, blanks, len(codebook.missing_pdfs(cache)))


def jobs_idle(database: Database) -> bool:
    """No job queued or running (on any worker sharing the database)."""
    with database.session() as session:
        busy = session.scalar(
            select(func.count()).select_from(Job).where(Job.status.in_(jobs.ACTIVE))
        )
    return not busy


@contextlib.contextmanager
def _filling(cache: Path) -> Iterator[bool]:
    """The folder's filler lock, if free (True), without waiting; released at the end."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / LOCK_FILE).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Filled:
    site_url: str | None
    blanks: int  # rendered now
    blanks_present: int
    codebooks: int  # rendered now
    seconds: float
    stopped: bool  # `keep_going` said stop: something may be left
    busy: bool = False  # another process holds the folder's lock: nothing done here


def fill(
    app: Flask,
    *,
    url: str | None = None,
    duplex: bool = False,
    keep_going: Callable[[], bool] = lambda: True,
    forms: bool = True,
    codebooks: bool = True,
) -> Filled:
    """Render what is missing: the blank forms for `url` (the code-entry page's address;
    default: `site_url`), then the codebooks (`forms`, `codebooks`: which of the two).
    Needs an app context and a cache folder."""
    cache = blank_cache.folder(app)
    if cache is None:
        raise ValueError(
            f"no cache of rendered files (debug mode, or {blank_cache.CONFIG_KEY} empty)"
        )
    began = time.perf_counter()
    address = url or site_url(app, cache)
    with _filling(cache) as mine:
        if not mine:
            return Filled(address, 0, 0, 0, 0.0, stopped=True, busy=True)
        blanks = present = 0
        stopped = False
        if address and forms:
            done = blank_cache.prefill(app, address, cache, duplex=duplex, keep_going=keep_going)
            blanks, present, stopped = done.rendered, done.present, done.stopped
        books = 0
        if codebooks and not stopped:
            books, stopped = codebook.prefill_pdfs(cache, keep_going)
    return Filled(address, blanks, present, books, time.perf_counter() - began, stopped)


# --- in the job worker -----------------------------------------------------------------------

# Set in the environment for the worker's own command once its codebooks-first step ran, so
# that the command, started again at the end of the step, does not start it again.
FIRST_DONE = "SELFCHECK_CODEBOOKS_FIRST_DONE"
CHAIN_PREFIX = ".codebooks-first-"  # the step's folder of requests, in the cache folder
STOPS = {signal.SIGINT, signal.SIGTERM}  # held across the chain's `execv` (`_let_go`)


def codebooks_first(app: Flask, then: list[str]) -> bool:
    """At the job worker's start, before it takes any job: the export codebooks missing from
    the cache folder rendered by this very process, its app given up, then the worker again
    (`chain_codebooks`, which see). Returns False (nothing done, the worker goes on) when
    the step already ran (FIRST_DONE: this is the worker started again at the end of a
    chain) or `chain_codebooks` has nothing to do. Does not return otherwise."""
    if os.environ.pop(FIRST_DONE, None) is not None:
        return False
    return chain_codebooks(app, then)


def chain_codebooks(app: Flask, then: list[str], wanted: Collection[str] = ()) -> bool:
    """The export codebooks missing from the cache folder rendered by this very process, its
    app given up, then `then` (the worker's command) again: at the worker's start
    (`codebooks_first`), when its queue is idle (`Watcher`), or for an export that waits for
    its codebook (`wanted`: those file names only, queue or not; `Rechain`).

    Why: a codebook PDF is rendered by a WeasyPrint process of about 185 MB (48 pages); an
    export that renders it beside the job worker's 115-150 MB makes about 300 MB together.
    Here no process holding the app lives beside a render: this process writes each
    codebook's render request (its HTML, as `codebook.pdf` would render it apart) into a
    folder, then replaces itself (`os.execv`, same process id, so a service manager or
    `selfcheck serve` keeps following it) by `weasy.py --chain`, which renders one request
    per process image and keeps the PDF in the cache folder, then, when none is left, by
    `then`, started with FIRST_DONE set. **A job queued meanwhile** replaces the jobs
    folder's wake file (`jobs.wake_workers`): the link that finishes its render sees it and
    goes back to the worker at once, the codebooks left for the next idle moment; a job
    waits for at most one render (about 8-10 s of CPU) and a worker's start (about 3 s).
    Jobs queued before (a row queued or running, or a message in huey's queue) keep the
    chain from starting, unless `wanted` (they then wait for those renders only).

    Returns False (nothing done, the worker goes on) when nothing is missing (or only
    codebooks whose render failed lately: `_crashed`), rendering ahead is off (`enabled`),
    another process holds the folder's filler lock (a second worker, a filler), or jobs
    wait. Does not return otherwise."""
    cache = blank_cache.folder(app)
    if cache is None or not enabled(app):
        return False
    with app.app_context():
        if not codebook.missing_pdfs(cache):
            return False
    queue = jobs.queue(app)
    seen = jobs.wake_token(queue)  # before the queue is read: any job after it wakes the chain
    cache.mkdir(parents=True, exist_ok=True)
    handle = os.open(cache / LOCK_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(handle)
        return False
    try:
        crashed = _crashed(cache)
        if not wanted and not queue_idle(app):
            os.close(handle)
            return False
        with app.app_context():
            # A codebook noted as failed: rendered again once its back-off is over, or when
            # an export waits for it (`wanted`, `Rechain.wait_for`): never beside the worker.
            requests = [
                request
                for request in codebook.apart_requests(cache, only=set(wanted) or None)
                if Path(request["output"]).name not in crashed - set(wanted)
            ]
        if not requests:
            os.close(handle)
            return False
        folder = Path(tempfile.mkdtemp(dir=cache, prefix=CHAIN_PREFIX))
        for number, request in enumerate(requests):
            (folder / f"{number:04d}.json").write_text(json.dumps(request), encoding="utf-8")
    except BaseException:
        os.close(handle)
        raise
    log.info(
        "codebooks: %d missing, rendered by this process given up for WeasyPrint%s",
        len(requests),
        " (an export waits for them)" if wanted else "",
    )
    for handler in logging.getLogger().handlers + logging.getLogger("huey").handlers:
        handler.flush()
    os.set_inheritable(handle, True)
    os.environ[FIRST_DONE] = "1"
    _let_go(app)
    from selfcheck.platform import printing

    chain = [sys.executable, "-P", str(printing.WEASY_SCRIPT), "--chain", str(folder)]
    options = ["--lock", str(handle), "--wake", str(jobs.wake_file(queue)), "--seen", seen]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [*chain, *options, "--", *then])
    raise AssertionError("unreachable")  # pragma: no cover - execv does not return


def _let_go(app: Flask) -> None:
    """Before `execv`: the database connections closed (a worker that ran jobs has some; the
    chain must not keep them open for minutes), and the stop signals back to their defaults
    (the consumer's handlers only noted them: a stop asked now ends the process)."""
    database: Database = app.extensions["selfcheck.platform.db"]
    with contextlib.suppress(Exception):
        database.dispose()  # the engine's pool and the reader's
    with contextlib.suppress(Exception):
        jobs.queue(app).close()
    stops_by_default()
    # A stop that comes while the next image starts would hit Python's own start-up (a
    # SIGINT there is a fatal error, exit status 1: a failed stop for systemd). Held instead:
    # the mask outlives `execv`; the link lets it in once its handlers are set (weasy.chain),
    # the worker at its start (`stops_let_in`).
    signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)


def stops_by_default() -> None:
    """The stop signals back to their default action (a process-wide setting): a stop asked
    from now on ends the process by that signal at once, as systemd counts a clean stop, from
    whichever thread it reaches. For the moments no consumer runs: a finished consumer's
    handlers only note a stop for a loop that no longer looks at it (a stop was lost so, the
    worker going on into a chain, then a new consumer, until systemd killed it: CI, round
    21); masking the signals would not do (a thread that does not mask them takes them)."""
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread sets handlers
    for stop in STOPS:
        if signal.getsignal(stop) is not signal.SIG_IGN:
            signal.signal(stop, signal.SIG_DFL)


def stops_let_in() -> None:
    """At the worker's start: the stop signals an `execv` held (`_let_go`, weasy.chain) let
    in, with their default action until the consumer sets its handlers: one already waiting,
    or one that comes before, ends the process by that signal, as systemd counts a clean stop
    (`stops_by_default`). A worker started without any held keeps Python's handlers."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, set()) & STOPS
    if not held:
        return
    stops_by_default()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def queue_idle(app: Flask) -> bool:
    """No job queued or running (the job table, any worker) and no message in huey's queue
    (a mail, say). A database that does not answer counts as idle: the chain then starts,
    and its links still go back to the worker for a job queued meanwhile."""
    try:
        return jobs_idle(app.extensions["selfcheck.platform.db"]) and not (
            jobs.queue(app).huey.pending_count()
        )
    except Exception:
        log.warning("codebooks: the queue could not be read", exc_info=True)
        return True


def chainable(app: Flask, cache: Path) -> list[str]:
    """The codebook PDFs (file names) missing from `cache` that a chain would render: all
    but those whose render failed lately (`CRASHED_FILE`, their back-off not over: `held`).
    Cheap; needs an app context."""
    languages = list(app.config["SELFCHECK_LANGUAGES"])
    waiting = held(cache)
    names = [
        codebook.pdf_name(shape.value, free_text, languages, lang)
        for shape, free_text, lang in codebook.missing_pdfs(cache)
    ]
    return [name for name in names if name not in waiting]


# A codebook whose render failed is tried again (by the chain only: never beside the worker)
# once RETRY_FIRST seconds have passed since its last failure, then twice as long after each
# further failure, RETRY_MAX at most (round 23): a cause that goes away (a machine short of
# memory for a while, a full disk, a render timed out under load) no longer leaves every
# export of that shape and language failing until the next deployment's names; a cause that
# stays costs one render every RETRY_MAX at most (by the worker when idle, or for an export).
RETRY_FIRST = 120.0
RETRY_MAX = 600.0
# A failure noted at most this far in the future (clocks of two hosts sharing the folder)
# counts as now; further (a clock set back since, "inf", a hand) it is not believed: the
# codebook may be tried again at once (attack23: it counted as now at every reading, so it
# was held until the clock reached that time: a year set back, a year of failed exports).
CLOCK_SKEW = 60.0


@dataclass(frozen=True)
class Noted:
    """A codebook noted in CRASHED_FILE: how many renders failed, the last one when (epoch
    seconds)."""

    failures: int
    last: float

    @property
    def due(self) -> float:
        """When it may be tried again (epoch seconds): a bounded back-off."""
        exponent = min(max(self.failures, 1) - 1, 16)
        wait: float = min(RETRY_FIRST * 2.0**exponent, RETRY_MAX)
        return self.last + wait


def _notes(cache: Path, now: float | None = None) -> dict[str, Noted]:
    """The codebooks noted in CRASHED_FILE (read only; `_crashed` also notes new ones): one
    line per failed render, "name epoch" (a link's `weasy._note_failed`, `_crashed`), or the
    name alone (rounds 19-22: the time taken as the note's own). A time in the future counts
    as now up to CLOCK_SKEW, as long past beyond (a clock set back, a hand), so no back-off
    outlasts RETRY_MAX + CLOCK_SKEW, whatever the note says. A note that is
    missing notes nothing; bytes that are not UTF-8 (attack12) spoil their line only, so
    that a note appended to after a disk error still notes what follows; lines that make no
    sense are skipped."""
    now = time.time() if now is None else now
    note = cache / CRASHED_FILE
    try:
        written = note.stat().st_mtime
    except OSError:
        return {}
    found: dict[str, Noted] = {}
    for line in _note_lines(note):
        parts = line.split()
        # A NUL (a note's tail zero-filled by a power loss, a hand) is no file name: `open`
        # raises ValueError, not OSError, and `_crashed` (the worker's start) with it.
        if not parts or Path(parts[0]).name != parts[0] or "\x00" in parts[0]:
            continue
        when = written
        if len(parts) > 1:
            try:
                when = float(parts[1])
            except ValueError:
                continue
        if when != when:  # NaN
            continue
        when = min(when, now) if when <= now + CLOCK_SKEW else -math.inf
        before = found.get(parts[0])
        found[parts[0]] = Noted(
            (before.failures if before else 0) + 1, max(when, before.last if before else when)
        )
    return found


def _noted(cache: Path) -> set[str]:
    """The codebooks noted in CRASHED_FILE, whether their back-off is over or not."""
    return set(_notes(cache))


def held(cache: Path, now: float | None = None) -> set[str]:
    """The codebooks noted as failed whose back-off is not over: no chain renders them now
    unless an export waits for one (`chain_codebooks`'s `wanted`, after `Rechain.wait_for`
    checked its back-off)."""
    now = time.time() if now is None else now
    return {name for name, noted in _notes(cache, now).items() if now < noted.due}


class Rechain:
    """The job worker's way back into the chain of codebook renders while it runs (`selfcheck
    worker`, selfcheck/cli.py): `request` stops its consumer (huey's stop flag; the jobs
    running finish first), and the worker then calls `chain_codebooks` with the codebooks
    wanted, or, when none is, with all those missing if its queue is still idle; if that has
    nothing to do, the worker takes jobs again.

    Asked by the `Watcher` (queue idle, codebooks missing) and by an export whose codebook is
    missing (`wait_for`, codebook.WAIT_KEY): the export goes back to the queue, the chain
    renders its codebook (one process, no app), the worker comes back and runs it."""

    LOCK_WAIT = 5.0  # seconds an export waits for the folder's lock (the forms' filler yields)
    # When the chain cannot render an export's codebook now (another process holds the
    # folder's lock, or this worker chained for it a moment ago): the export's message is due
    # again this many seconds later, up to jobs.MAX_DEFERRALS times in all: with LOCK_WAIT,
    # under 1.5 minutes of waiting at most (round 23; about 4 to 5 minutes before), then it
    # fails in plain words ("try again in a few minutes"). Never rendered beside the worker
    # (about 300 MB together).
    AGAIN_AFTER = 15.0
    # A codebook this process chained for is not asked for again this soon (the chain did
    # not begin: the lock was taken meanwhile, or jobs came in): the export waits AGAIN_AFTER
    # instead, so the consumer is not stopped in a loop. Past it, asked again (round 23:
    # before, never again in this process, so every export of it waited, then failed).
    TRIED_FOR = 10.0
    # An export whose codebook's render failed lately waits for its back-off to end (then
    # the chain tries it again) if that is this close; further off, it fails at once in
    # plain words, and a "Try again" once the back-off is over has the chain try it.
    PATIENCE = 20.0

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.wanted = threading.Event()
        self.names: set[str] = set()  # wanted, the chain not begun yet
        # chained for by this process: when (time.monotonic()); not again within TRIED_FOR
        self.tried: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stop_consumer: Callable[[], None] = lambda: None

    def request(self) -> None:
        """Stop taking jobs and go into the chain (from any thread)."""
        self.wanted.set()
        self.stop_consumer()

    def wait_for(self, name: str) -> jobs.JobDeferred | None:
        """For an export whose codebook `name` is missing (codebook.render_ahead): how it
        waits in the queue. Never rendered beside the worker (about 300 MB together, the
        export's memory goal is 200 MB; round 21):

        - rendered by the chain (`request`, that codebook wanted, even when noted as failed
          before, once its back-off is over: the chain tries it again, alone, in a process
          holding no app), the job's message queued again at once;
        - a codebook whose render failed lately (noted, its back-off not over: `Noted.due`):
          the export waits for the back-off's end if it is PATIENCE seconds away at most,
          else fails at once in plain words (JobError.WAITED: "try again in a few
          minutes"); so the export that had the chain try it fails as soon as that render
          failed, and a later one (a "Try again") has the chain try it again once the
          back-off is over (round 23: before, noted until the next deployment's names);
        - when the chain cannot now: this process chained for it a moment ago (TRIED_FOR:
          the chain did not begin), or another process holds the folder's lock for more
          than LOCK_WAIT seconds (another worker on a shared folder rendering codebooks;
          the lock is this worker's forms filler only while it finishes a form): the
          message is due again AGAIN_AFTER seconds later, by then the other may be done.

        Each wait is counted on the job (jobs.MAX_DEFERRALS, then it fails in plain words).
        Asked again before the chain began (another consumer thread took the job's message
        again while the consumer was stopping): deferred again. None (render here) only
        without a cache folder."""
        cache = blank_cache.folder(self.app)
        if cache is None:
            return None
        now = time.time()
        noted = _notes(cache, now).get(name)
        if noted is not None and now < noted.due:
            if noted.due - now > self.PATIENCE:
                raise jobs.JobFailed(jobs.JobError.WAITED)
            return jobs.JobDeferred(delay=max(noted.due - now, 1.0))
        later = jobs.JobDeferred(delay=self.AGAIN_AFTER)
        with self.lock:
            tried = self.tried.get(name)
            if tried is not None and time.monotonic() - tried < self.TRIED_FOR:
                return later
        deadline = time.monotonic() + self.LOCK_WAIT
        while True:
            with _filling(cache) as free:
                if free:
                    break
            if time.monotonic() >= deadline:
                return later
            time.sleep(0.2)
        with self.lock:
            self.names.add(name)
        return jobs.JobDeferred(self.request)

    def take(self) -> list[str]:
        """The codebooks wanted (empty: the watcher's request), forgotten (and not asked for
        again by this process); the request too. Called as the chain is to begin."""
        with self.lock:
            names = sorted(self.names)
            now = time.monotonic()
            self.tried.update((name, now) for name in names)
            self.names.clear()
        self.wanted.clear()
        return names


CRASHED_FILE = ".codebooks-first-crashed"  # codebooks whose render ended the process


def _crashed(cache: Path) -> set[str]:
    """The codebooks (file names) the chain does not render now: those whose render failed
    lately (`held`: noted in CRASHED_FILE, their back-off not over), so that a restarting
    worker never loops on them. A render that ended its process (a link of an earlier
    chain's folder left its request as `.doing`: killed, out of memory) is noted here, with
    the time. Folders of earlier chains, cut short, are removed, and the notes of codebooks
    rendered since are dropped (their count of failures starts again). Called with the
    folder's lock held: nobody renders from those folders, nobody else writes the note."""
    note = cache / CRASHED_FILE
    found = set()
    for stale in cache.glob(CHAIN_PREFIX + "*"):
        for doing in stale.glob("*.doing"):
            # Whatever is in it (RecursionError of a JSON nested too deep included): a file
            # left there must never keep the worker from starting.
            with contextlib.suppress(Exception):
                found.add(Path(json.loads(doing.read_text(encoding="utf-8"))["output"]).name)
        shutil.rmtree(stale, ignore_errors=True)
    now = time.time()
    notes = _notes(cache, now)
    rendered = {name for name in notes if blank_cache.present(cache / name)}
    if rendered:
        lines = [
            line for line in _note_lines(note) if line.split() and line.split()[0] not in rendered
        ]
        with contextlib.suppress(OSError):
            _write_note(note, lines)
    if found:
        log.warning("codebooks: their render ended the process, not tried again soon: %s", found)
        with contextlib.suppress(OSError), note.open("a", encoding="utf-8") as out:
            out.write("".join(f"{name} {now:.0f}\n" for name in sorted(found)))
    return held(cache, now)


def _note_lines(note: Path) -> list[str]:
    try:
        return note.read_bytes().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def _write_note(note: Path, lines: list[str]) -> None:
    """The note written whole, then renamed (a reader never sees half of it)."""
    handle, draft = tempfile.mkstemp(dir=note.parent, prefix=".note-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write("".join(f"{line}\n" for line in lines))
        os.replace(draft, note)
    except BaseException:
        Path(draft).unlink(missing_ok=True)
        raise


def worker_command() -> list[str]:
    """This process's command line, to start it again (`codebooks_first`)."""
    return [sys.executable, *sys.orig_argv[1:]]


FILLER = [sys.executable, "-c", "from selfcheck.cli import main; main()", "paper", "prefill"]


class Watcher:
    """The job worker's thread that starts the filler processes when something is missing and
    the queue is idle (see the module's docstring). `stop` ends it and its filler. With a
    `Rechain` (the worker), the codebooks are left to the chain, and the second filler is not
    started (round 21: those noted as failed wait for an export that needs them).

    Two fillers one after the other, each a fresh process: the blank forms (about 180 MB over
    80 forms in 4 languages, 400 MB before round 16: BENCHMARKS.md), then the codebooks (each
    rendered by a child process of about 190 MB), so that the first one's memory is given
    back before the codebooks' children start."""

    def __init__(
        self,
        app: Flask,
        commands: list[list[str]] | None = None,
        rechain: Rechain | None = None,
        first_look: float = FIRST_LOOK_AFTER,
    ) -> None:
        self.app = app
        self.first_look = first_look
        self.commands = commands or [
            [*FILLER, "--background", "--only", "forms"],
            [*FILLER, "--background", "--only", "codebooks"],
        ]
        # The codebooks by the worker's own process given up (`Rechain`) rather than by the
        # second filler (which renders each beside the worker); with a `Rechain`, the second
        # filler is never started (round 21).
        self.rechain = rechain
        self.database: Database = app.extensions["selfcheck.platform.db"]
        self.stopping = threading.Event()
        self.process: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, name="selfcheck-prefill", daemon=True)

    def start(self) -> Watcher:
        self.thread.start()
        return self

    def run(self) -> None:
        wait = self.first_look
        while not self.stopping.wait(wait):
            try:
                wait = self.look()
            except Exception:  # a busy database, a folder gone: look again later
                log.warning("prefill: could not look at the cache", exc_info=True)
                wait = LOOK_EVERY

    def look(self) -> float:
        """One look: start the filler and wait for it if something is missing and the queue
        is idle. The seconds until the next look."""
        with self.app.app_context():
            needed = todo(self.app)
            if needed.empty:
                return LOOK_EVERY
            if not jobs_idle(self.database):
                return LOOK_AGAIN
        cache = blank_cache.folder(self.app)
        assert cache is not None  # todo found something to do
        with _filling(cache) as free:
            if not free:
                return LOOK_AGAIN  # another worker's filler is at it
        log.info(
            "prefill: %s blank forms and %s codebooks missing: rendering them",
            needed.blanks,
            needed.codebooks,
        )
        began = time.perf_counter()
        status = 0
        commands = self.commands
        chain = False
        if self.rechain is not None:
            # The codebooks by the chain only, never by the second filler, which renders each
            # beside the worker (round 21: about 450 MB together, measured): those noted as
            # failed wait for an export that needs them (the chain tries them then,
            # `Rechain.wait_for`).
            if needed.codebooks:
                with self.app.app_context():
                    chain = bool(chainable(self.app, cache))
            commands = commands[:1] if needed.blanks else []
            if not commands:
                if not chain:
                    return LOOK_EVERY  # only noted codebooks are missing
                self.rechain.request()  # the worker stops taking jobs and chains
                return LOOK_AGAIN
        for command in commands:
            with self.lock:
                if self.stopping.is_set():
                    return LOOK_AGAIN
                process = self.process = subprocess.Popen(command)  # same environment
            status = process.wait()
            with self.lock:
                self.process = None
            if status != 0:
                break
        log.info(
            "prefill: filler ended with status %s after %.1f s",
            status,
            time.perf_counter() - began,
        )
        if chain and status == 0 and self.rechain is not None:
            self.rechain.request()  # the worker stops taking jobs and chains (cli.worker)
            return LOOK_AGAIN
        # Stopped for a job: look again soon. Done, failed, or another filler got the lock
        # first: not before the usual wait (whatever is still missing then is rendered on
        # request meanwhile, as without a cache; a filler is never started in a loop).
        return LOOK_AGAIN if status == YIELDED else LOOK_EVERY

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        with self.lock:
            process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
        self.thread.join(timeout)


def start(
    app: Flask, rechain: Rechain | None = None, first_look: float = FIRST_LOOK_AFTER
) -> Watcher | None:
    """The job worker's watcher, started; None when not wanted (no cache folder, debug mode,
    `SELFCHECK_PREFILL=0`, or jobs run in the request)."""
    if app.debug or app.testing or not enabled(app) or jobs.queue(app).huey.immediate:
        return None
    return Watcher(app, rechain=rechain, first_look=first_look).start()
