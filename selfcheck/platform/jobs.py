"""Background jobs: exports and print batches, run by a huey worker beside the web server.

The choice of huey and its limits are in docs/jobs.md. In short: huey carries only a job's
id (`SqliteHuey` in a file of the instance folder by default, `PostgresHuey` when the app's
database is PostgreSQL, or `SELFCHECK_JOBS_URL`); the `job` table holds what the pages show
(status, progress, result file, expiry, failure) and the per-user limit. huey delivers a
message at most once: a worker that dies mid-job leaves a `running` row whose heartbeat
stops, and `sweep` marks it failed, so the person sees it and may try again.

Flow: a view checks its form, calls `enqueue` (permission and per-user limit checked here,
before anything is queued), commits, then calls `dispatch`. The worker's single task
`run_job` marks the job running, calls the kind's runner with a `Progress`, and the runner
writes its file with `Progress.write_result` (a temporary name, then a rename: never a
partial file) and records the rows that must exist only with the file (codes of a print
batch, the export log) in the session that marks the job done, committed once.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import secrets
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from flask_babel import force_locale, ngettext
from flask_babel import lazy_gettext as _l
from huey import (  # type: ignore[import-untyped]
    Huey,
    MemoryHuey,
    PostgresHuey,
    SqliteHuey,
    crontab,
)
from huey.serializer import SignedSerializer  # type: ignore[import-untyped]
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from selfcheck.platform.db import Database
from selfcheck.platform.models import Job, StaffUser, utcnow

log = logging.getLogger(__name__)

EXTENSION_KEY = "selfcheck.platform.jobs"
URL_KEY = "SELFCHECK_JOBS_URL"
PER_USER_KEY = "SELFCHECK_JOBS_PER_USER"
KEEP_KEY = "SELFCHECK_JOBS_KEEP_MINUTES"
IMMEDIATE = "immediate"  # SELFCHECK_JOBS_URL=immediate: run in the request (tests only)
QUEUE_FILE = "jobs-queue.db"
RESULTS_DIR = "jobs"
DEFAULT_PER_USER = 2
DEFAULT_KEEP_MINUTES = 60
HEARTBEAT_STALE = timedelta(minutes=5)  # a running job silent this long lost its worker
HEARTBEAT_EVERY = 30.0  # seconds between heartbeats of a running job
QUEUED_STALE = timedelta(hours=6)  # a queued job no worker took in this time is failed
# A queued job whose message huey holds neither in its queue nor in its schedule this long
# after it was handed over (`Job.queued_at`) lost it (a process killed between a commit and
# the queueing): queued again by the sweep (`requeue_lost`), every minute, and at the
# worker's start. Long enough for a message between its commit and its queueing, or taken by
# a consumer that has not marked its job running yet (milliseconds).
REQUEUE_AFTER = timedelta(seconds=30)
# A job its runner put back in the queue (JobDeferred) this many times fails in plain words
# (JobError.WAITED) instead of waiting once more: never a loop, even when what it waits for
# kills the worker each time (counted in the database, before the wait). An export needs one
# wait for its codebook's render (two if a second consumer thread took its message back while
# the consumer stopped); the others are waits for a folder another process holds
# (prefill.Rechain: 15 s each, after 5 s for the lock), so an export gives up under
# 1.5 minutes after the first (round 23: 8 waits, about 4 to 5 minutes, before).
MAX_DEFERRALS = 4
TASK_NAME = "selfcheck.run_job"


class JobKind(enum.StrEnum):
    EXPORT = "export"
    PRINT_BATCH = "print_batch"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"


ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class JobError(enum.StrEnum):
    """Why a job failed, as a key; the words are in ERRORS, translated when shown."""

    FAILED = "failed"
    WORKER_LOST = "worker_lost"
    NOT_STARTED = "not_started"
    REFUSED = "refused"
    CHANGED = "changed"
    WAITED = "waited"


ERRORS: Mapping[str, object] = {
    JobError.FAILED: _l("La préparation du fichier a échoué. Rien n'a été enregistré."),
    JobError.WORKER_LOST: _l(
        "La préparation s'est arrêtée en cours de route (le serveur a redémarré). "
        "Rien n'a été enregistré."
    ),
    JobError.NOT_STARTED: _l("La préparation n'a pas pu commencer. Rien n'a été enregistré."),
    JobError.REFUSED: _l(
        "Ce fichier ne peut plus être préparé : vos accès ou les données ont changé."
    ),
    JobError.CHANGED: _l(
        "Les données ont changé pendant la préparation (un autre de vos exports s'est "
        "terminé entre-temps, ou une personne a été effacée). Rien n'a été enregistré. "
        "Relancez la préparation."
    ),
    JobError.WAITED: _l(
        "Le fichier n'a pas pu être préparé : une pièce qu'il contient (le dictionnaire des "
        "variables en PDF) n'a pas pu être produite à temps. Rien n'a été enregistré. "
        "Réessayez dans quelques minutes."
    ),
}


class JobRefused(Exception):
    """A job that may not be queued: the message to show (translated) and the HTTP status."""

    def __init__(self, message: object, status: int = 409) -> None:
        super().__init__(str(message))
        self.message = message
        self.status = status


class JobDeferred(Exception):
    """Raised by a runner: the job cannot run in this process now (an export whose codebook
    PDF is missing: evaluation/codebook.py, `render_ahead`). `run_job` puts it back in the
    queue, as it was (status queued, nothing kept; its page says what it waits for:
    `Runner.waiting`), calls `before` (the job worker's way of getting what the job waits
    for: prefill.py, `Rechain`), then queues its message again, due in `delay` seconds
    (0: at once; more when what it waits for is another process's work, which this worker
    cannot hasten). Counted (`Job.deferrals`): past MAX_DEFERRALS the job fails
    (JobError.WAITED) instead."""

    def __init__(self, before: Callable[[], None] = lambda: None, delay: float = 0.0) -> None:
        super().__init__("deferred")
        self.before = before
        self.delay = delay


class JobFailed(Exception):
    """Raised by a runner for a failure it can name (one of JobError)."""

    def __init__(self, error: JobError) -> None:
        super().__init__(error.value)
        self.error = error


Check = Callable[[Session, StaffUser, Mapping[str, Any]], None]

# How many times the job this thread runs was put back in the queue before (`Job.deferrals`):
# for a runner that decides whether waiting once more is worth it (prefill.Rechain.wait_for).
_deferrals: ContextVar[int] = ContextVar("selfcheck_job_deferrals", default=0)


def deferrals() -> int:
    """How many times the job being run was put back in the queue before (0 outside a job)."""
    return _deferrals.get()


@dataclass(frozen=True)
class Runner:
    """A kind of job: `check` raises JobRefused (before queueing, and again when it runs),
    `run` does the work and writes the file with `progress.write_result`."""

    check: Check
    run: Callable[[Session, Job, Mapping[str, Any], Progress], None]
    total: Callable[[Mapping[str, Any]], int] = lambda _params: 1
    # Exceptions of `check` that mean "not allowed (any more)", besides JobRefused.
    refusals: tuple[type[Exception], ...] = ()
    # Whether the person may still have the finished file (rights and scope, not the data):
    # raises JobRefused or one of `refusals`. Checked at each download.
    allowed: Check | None = None
    # What a job put back in the queue by its runner (JobDeferred) waits for, shown on its
    # page while it waits again (a lazy string).
    waiting: object | None = None


RUNNERS: dict[str, Runner] = {}


def register(kind: JobKind, runner: Runner) -> None:
    RUNNERS[kind.value] = runner


# --- the queue -------------------------------------------------------------------------------


# huey's messages are pickles, kept in a table of the app's database (PostgreSQL) or a file
# of the instance folder (SQLite): signed under the app's secret key, so that whoever can
# write there (the database's credentials, a hosting administrator) cannot make the job
# worker unpickle, so run, anything (attack16). A message not signed by this key (an older
# version's, a key changed since) is refused unread: its job, still queued, is queued again
# by `requeue_lost` within minutes.
SIGNING_SALT = "selfcheck.jobs.messages"


def make_huey(
    url: str | None, database_url: str, instance_path: Path, secret_key: str | bytes = ""
) -> Huey:
    """The queue: `url` (SELFCHECK_JOBS_URL) or one beside the app's database; its messages
    signed under `secret_key` (none: huey's plain pickles, for the immediate mode only)."""
    chosen = url or ""
    if chosen == IMMEDIATE:
        return MemoryHuey("selfcheck", immediate=True)
    if not secret_key:
        raise ValueError("a job queue's messages are signed: the app's secret key is needed")
    serializer = SignedSerializer(secret=secret_key, salt=SIGNING_SALT)
    if not chosen:
        backend = make_url(database_url).get_backend_name()
        if backend == "postgresql":
            chosen = database_url
        else:
            chosen = f"sqlite:///{instance_path / QUEUE_FILE}"
    parsed = make_url(chosen)
    if parsed.get_backend_name() == "postgresql":
        # psycopg's own connection string: the SQLAlchemy driver suffix dropped.
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        return _postgres_huey(dsn, serializer)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return _closed(SqliteHuey("selfcheck", filename=parsed.database, serializer=serializer))
    raise ValueError(f"{URL_KEY}: use a sqlite:/// or postgresql:// URL, got {chosen!r}")


def _postgres_huey(dsn: str, serializer: SignedSerializer, attempts: int = 5) -> Huey:
    """PostgresHuey creates its tables with CREATE TABLE IF NOT EXISTS, which is not safe
    when several processes run it at once on an empty database (gunicorn's workers, a second
    app instance, a job worker: PostgreSQL answers with a unique violation in its catalog).
    The tables exist once one of them has won: try again."""
    import psycopg.errors

    races = (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable)
    for attempt in range(attempts):
        try:
            return _closed(PostgresHuey("selfcheck", dsn=dsn, serializer=serializer))
        except races:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def _closed(huey: Huey) -> Huey:
    """huey connects to create its tables: close that connection, opened again on first use
    (so a web server that forks its workers after building the app shares no connection)."""
    huey.storage.close()
    return huey


class JobQueue:
    """One app's queue: its huey instance, the folder of result files, the limits."""

    def __init__(self, app: Flask, huey: Huey, results: Path) -> None:
        self.huey = huey
        self.results = results
        self.per_user = int(app.config.get(PER_USER_KEY, DEFAULT_PER_USER))
        self.keep = timedelta(minutes=int(app.config.get(KEEP_KEY, DEFAULT_KEEP_MINUTES)))
        database: Database = app.extensions["selfcheck.platform.db"]

        def run(job_id: str) -> None:
            with app.app_context():
                run_job(database, self, job_id)

        def periodic_sweep() -> None:
            with app.app_context(), database.session() as session:
                sweep(session, self)
                session.commit()
                requeue_lost(session, self)

        self.task = huey.task(name=TASK_NAME)(run)
        self.sweep_task = huey.periodic_task(crontab(minute="*"), name="selfcheck.sweep")(
            periodic_sweep
        )

    def close(self) -> None:
        self.huey.storage.close()


def init_app(app: Flask, instance_path: Path, database_url: str) -> None:
    url = app.config.get(URL_KEY) or None
    # Created when the first file is written: a web instance on a read-only disk starts.
    results = Path(app.config.get("SELFCHECK_JOBS_DIR") or instance_path / RESULTS_DIR)
    app.extensions[EXTENSION_KEY] = JobQueue(
        app, make_huey(url, database_url, instance_path, app.secret_key or ""), results
    )


def queue(app: Flask | None = None) -> JobQueue:
    found: JobQueue = (app or current_app).extensions[EXTENSION_KEY]
    return found


# --- the web side ----------------------------------------------------------------------------


def active_count(session: Session, user: StaffUser) -> int:
    query = select(func.count()).where(Job.user_id == user.id, Job.status.in_(ACTIVE))
    return int(session.scalar(query) or 0)


def _lock_writes(session: Session) -> None:
    """On SQLite, this transaction takes the database's write lock now (waiting for any other
    writer's commit, up to the busy timeout), so what it reads next is not changed by another
    writer before it commits. A transaction already open has written (pysqlite opens one only
    before a write, `db._begin_before_savepoint` aside), so it holds the lock already."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is not None and not dbapi_connection.in_transaction:
        dbapi_connection.execute("BEGIN IMMEDIATE")


def enqueue(session: Session, kind: JobKind, params: Mapping[str, Any], user: StaffUser) -> Job:
    """A new queued job, or JobRefused: permission first, then the per-user limit.

    Nothing is queued here: the caller commits, then calls `dispatch` (a worker must find
    the row when it takes the message). Never commits.
    """
    runner = RUNNERS[kind.value]
    runner.check(session, user, params)
    # Two requests of one person at once: the second waits for the first's commit before it
    # counts. PostgreSQL: the person's row is locked. SQLite ignores FOR UPDATE, and pysqlite
    # opens its transaction only at the INSERT, after the count: both requests counted the
    # same jobs and both inserted (measured, tests/platform/test_jobs.py). The write lock is
    # taken first there (BEGIN IMMEDIATE): the second request's count waits for the commit.
    _lock_writes(session)
    session.execute(select(StaffUser.id).where(StaffUser.id == user.id).with_for_update())
    limit = queue().per_user
    if active_count(session, user) >= limit:
        raise JobRefused(limit_reached(limit), 429)
    job = Job(
        id=secrets.token_hex(16),
        kind=kind.value,
        user_id=user.id,
        params=json.dumps(dict(params), ensure_ascii=False, sort_keys=True),
        status=JobStatus.QUEUED.value,
        progress=0,
        total=max(1, runner.total(params)),
        created_at=utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def limit_reached(limit: int) -> str:
    message: str = ngettext(
        "Vous avez déjà %(num)s fichier en préparation. Attendez qu'il soit prêt avant "
        "d'en demander un autre.",
        "Vous avez déjà %(num)s fichiers en préparation. Attendez qu'ils soient prêts "
        "avant d'en demander un autre.",
        limit,
    )
    return message


def dispatch(job: Job) -> None:
    """Hand a committed job to the queue (in immediate mode, run it now), and wake a job
    worker that is rendering codebooks instead of taking jobs (`wake_workers`)."""
    jobs = queue()
    jobs.task(job.id)
    if not jobs.huey.immediate:
        wake_workers(jobs)


WAKE_FILE = ".job-queued"  # in the folder of result files, which every worker sees
WAKE_BYTES = 64  # read of it at most (`wake_token`; weasy.py, `woken`)


def wake_file(jobs: JobQueue) -> Path:
    return jobs.results / WAKE_FILE


def wake_token(jobs: JobQueue) -> str:
    """The wake file's content now ("" if missing): what a chain of codebook renders
    compares it with (platform/weasy.py, `woken`, which reads it alike: keep both the same).
    What `wake_workers` writes is a few hex digits; anything else found there (attack14) is
    read without waiting (a FIFO), at most WAKE_BYTES of a regular file (not a huge file, not
    /dev/zero), and only its ASCII letters and digits kept: the token goes on the chain's
    command line (`--seen`), where a NUL failed `execv` and a "--" ended the options."""
    try:
        handle = os.open(wake_file(jobs), os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            return ""
        head = os.read(handle, WAKE_BYTES)
    except OSError:
        return ""
    finally:
        os.close(handle)
    return "".join(c for c in head.decode("ascii", "replace") if c.isascii() and c.isalnum())


def wake_workers(jobs: JobQueue) -> None:
    """Replace the wake file with a new token: a job is queued. A job worker rendering the
    export codebooks in a chain of processes that hold no app (selfcheck/prefill.py,
    `codebooks_first`; platform/weasy.py, `chain`) cannot read the queue; it reads this one
    small file between two renders and, when it changed, goes back to the worker at once.
    In the folder of result files because every app instance and worker must see that folder
    already (docs/jobs.md, "Shared files"). Best effort: a folder that cannot be written
    (read-only) leaves the job to wait for the renders, as before; never an error."""
    folder = jobs.results
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, draft = tempfile.mkstemp(dir=folder, prefix=".wake-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(secrets.token_hex(8))
            os.replace(draft, folder / WAKE_FILE)
        except BaseException:
            Path(draft).unlink(missing_ok=True)
            raise
    except OSError:
        log.warning("jobs: the wake file could not be written in %s", folder, exc_info=True)


def retry(session: Session, job: Job, user: StaffUser) -> Job:
    """A failed (or expired) job again, as a new job with the same parameters."""
    if job.status not in (JobStatus.FAILED.value, JobStatus.EXPIRED.value):
        raise JobRefused(_l("Ce fichier est déjà en préparation ou prêt."), 409)
    return enqueue(session, JobKind(job.kind), json.loads(job.params), user)


def visible_job(session: Session, job_id: str, user: StaffUser) -> Job | None:
    """The job if it is this user's (anyone else: None, as for an unknown id)."""
    job = session.get(Job, job_id) if len(job_id) == 32 and job_id.isalnum() else None
    if job is None or job.user_id != user.id:
        return None
    return job


def result_file(job: Job, jobs: JobQueue | None = None) -> Path | None:
    """The finished file, if the job is done, not expired and the file is whole."""
    if job.status != JobStatus.DONE.value or job.result_path is None:
        return None
    if job.expires_at is not None and _aware(job.expires_at) <= utcnow():
        return None
    path = (jobs or queue()).results / job.result_path
    return path if path.is_file() else None


def may_download(session: Session, job: Job, user: StaffUser) -> bool:
    """Whether `user` still has the rights the file was made under (grants and role may have
    changed since; the data may have too, which does not matter for a file already made)."""
    runner = RUNNERS.get(job.kind)
    if runner is None or runner.allowed is None:
        return True
    try:
        runner.allowed(session, user, json.loads(job.params))
    except Exception as refused:
        if isinstance(refused, (JobRefused, *runner.refusals)):
            return False
        raise
    return True


def error_message(job: Job) -> str:
    return str(ERRORS.get(job.error or "", ERRORS[JobError.FAILED]))


def waiting_message(job: Job) -> str | None:
    """What a queued job that already started once waits for (JobDeferred), else None."""
    if job.status != JobStatus.QUEUED.value or job.started_at is None:
        return None
    runner = RUNNERS.get(job.kind)
    return None if runner is None or runner.waiting is None else str(runner.waiting)


# --- the worker side -------------------------------------------------------------------------


class Progress:
    """What a runner reports: steps done, its file; each report is its own short commit."""

    def __init__(self, database: Database, jobs: JobQueue, job_id: str) -> None:
        self.database = database
        self.jobs = jobs
        self.job_id = job_id
        self.partial: Path | None = None

    def beat(self) -> None:
        """The job's worker is alive (every HEARTBEAT_EVERY seconds while it runs)."""
        with self.database.session() as session:
            session.execute(update(Job).where(Job.id == self.job_id).values(heartbeat_at=utcnow()))
            session.commit()

    @contextmanager
    def beating(self) -> Iterator[None]:
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(HEARTBEAT_EVERY):
                try:
                    self.beat()
                except Exception:  # a busy database: the next beat will do
                    log.warning("job %s: heartbeat not recorded", self.job_id, exc_info=True)

        thread = threading.Thread(target=loop, name=f"job-{self.job_id}-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def step(self, done: int, total: int | None = None) -> None:
        with self.database.session() as session:
            job = session.get(Job, self.job_id)
            if job is None:
                return
            job.progress = done
            if total is not None:
                job.total = max(1, total)
            job.heartbeat_at = utcnow()
            session.commit()

    @contextmanager
    def write_result(self, filename: str) -> Iterator[Path]:
        """A temporary path to write the file to; renamed into place when the block ends
        without error, deleted otherwise. Sets the final path (relative) for `finish`."""
        self.jobs.results.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = self.jobs.results / self.job_id
        folder.mkdir(mode=0o700, exist_ok=True)
        partial = folder / f".partial-{secrets.token_hex(4)}"
        final = folder / filename
        try:
            yield partial
            partial.chmod(0o600)
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)
        self.partial = final

    def discard(self) -> None:
        shutil.rmtree(self.jobs.results / self.job_id, ignore_errors=True)
        self.partial = None


def run_job(database: Database, jobs: JobQueue, job_id: str) -> None:
    """The worker's task: run one job, leaving it done (file whole) or failed (no file)."""
    with database.session() as session:
        # Taken only from queued, in one statement: a second message for the same job (queued
        # again by `requeue_lost` while the first was being taken, or by two sweeps at once)
        # finds it running already and does nothing. Never run twice.
        now = utcnow()
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
            .values(status=JobStatus.RUNNING.value, started_at=now, heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        job = session.get(Job, job_id)
        if job is None or not getattr(claimed, "rowcount", 0):
            # Not committed (the request failed) or already handled.
            log.info("job %s: not run (%s)", job_id, "unknown" if job is None else job.status)
            return
        params = json.loads(job.params)
        progress = Progress(database, jobs, job_id)
        runner = RUNNERS.get(job.kind)
        error = JobError.FAILED
        try:
            if runner is None:
                raise JobFailed(JobError.FAILED)
            user = session.get(StaffUser, job.user_id)
            if user is None or not user.active:
                raise JobFailed(JobError.REFUSED)
            with force_locale(str(params.get("locale") or "fr")):
                try:
                    runner.check(session, user, params)
                except Exception as refused:
                    if isinstance(refused, (JobRefused, *runner.refusals)):
                        raise JobFailed(JobError.REFUSED) from None
                    raise
                waited = _deferrals.set(job.deferrals)
                try:
                    with progress.beating():
                        runner.run(session, job, params, progress)
                finally:
                    _deferrals.reset(waited)
            if progress.partial is None:
                raise JobFailed(JobError.FAILED)
            job.status = JobStatus.DONE.value
            job.result_path = str(progress.partial.relative_to(jobs.results))
            job.filename = progress.partial.name
            job.progress = job.total
            job.finished_at = utcnow()
            job.expires_at = job.finished_at + jobs.keep
            session.commit()  # the rows the file stands for, with the job marked done
            return
        except JobDeferred as deferred:
            _put_back(session, jobs, job_id, progress, deferred)
            return
        except JobFailed as failure:
            error = failure.error
        except Exception:
            log.exception("job %s (%s) failed", job_id, job.kind)
        session.rollback()
        progress.discard()
        job = session.get(Job, job_id)
        if job is not None:
            job.status = JobStatus.FAILED.value
            job.error = error.value
            job.finished_at = utcnow()
            job.result_path = None
            session.commit()


def _put_back(
    session: Session, jobs: JobQueue, job_id: str, progress: Progress, deferred: JobDeferred
) -> None:
    """A deferred job back in the queue: nothing of its run kept, status queued (its
    `started_at` kept: its page tells it waits again, `Runner.waiting`), `deferred.before`
    called, then its message queued again (one message: the one taken is gone), due in
    `deferred.delay` seconds. Run once more, it is run exactly as if it had not started.
    Past MAX_DEFERRALS it fails instead (JobError.WAITED), nothing kept.

    The commit and the queueing are two steps (huey writes with its own connection): a
    worker killed between them (SIGKILL, out of memory) leaves the job queued without a
    message, which the next sweep of any worker queues again (`requeue_lost`: `queued_at`
    says when the message was due), at the latest REQUEUE_AFTER plus a minute later."""
    session.rollback()
    progress.discard()
    job = session.get(Job, job_id)
    if job is None:
        return
    now = utcnow()
    if job.deferrals >= MAX_DEFERRALS:
        _fail(job, JobError.WAITED, now)
        session.commit()
        log.warning("job %s (%s) failed: put back %d times", job_id, job.kind, job.deferrals)
        return
    job.status = JobStatus.QUEUED.value
    job.progress = 0
    job.heartbeat_at = None
    job.deferrals += 1
    job.queued_at = now + timedelta(seconds=deferred.delay)
    session.commit()
    log.info(
        "job %s (%s) put back in the queue (%d): it waits %s",
        job_id,
        job.kind,
        job.deferrals,
        f"{deferred.delay:.0f} s" if deferred.delay else "for the worker",
    )
    try:
        deferred.before()
    finally:
        _queue_message(jobs, job_id, deferred.delay)
        wake_workers(jobs)


def _queue_message(jobs: JobQueue, job_id: str, delay: float = 0.0) -> None:
    if delay > 0:
        jobs.task.schedule(args=(job_id,), delay=delay)
    else:
        jobs.task(job_id)


def messages(jobs: JobQueue) -> set[str] | None:
    """The ids of the jobs huey holds a message for, in its queue or its schedule; None when
    the queue cannot be read (then nothing is queued again). Each message read apart: one
    huey cannot read (another task's, an older version's) is skipped."""
    huey = jobs.huey
    ours = huey._registry.task_to_string(jobs.task.task_class)  # module-qualified name
    found: set[str] = set()
    try:
        raw = [*huey.storage.enqueued_items(), *huey.storage.scheduled_items()]
    except Exception:
        log.warning("jobs: huey's queue could not be read", exc_info=True)
        return None
    for data in raw:
        try:
            message = huey.serializer.deserialize(data)
        except Exception:
            continue
        name = getattr(message, "name", "")
        args = getattr(message, "args", None) or ()
        if name == ours and args:
            found.add(str(args[0]))
    return found


def requeue_lost(session: Session, jobs: JobQueue, now: datetime | None = None) -> list[str]:
    """Queue again the queued jobs whose message was lost: none in huey's queue or schedule
    REQUEUE_AFTER after it was handed over or due (`Job.queued_at`, else `created_at`).
    Their `queued_at` set and committed first, then the messages queued: killed between the
    two, the next sweep finds them again. A job queued twice this way still runs once
    (`run_job` takes it only from queued). The ids queued again. Commits."""
    if jobs.huey.immediate:
        return []
    now = now or utcnow()
    since = func.coalesce(Job.queued_at, Job.created_at)
    candidates = list(
        session.scalars(
            select(Job).where(Job.status == JobStatus.QUEUED.value, since < now - REQUEUE_AFTER)
        )
    )
    if not candidates:
        return []
    held = messages(jobs)
    if held is None:
        return []
    lost = [job for job in candidates if job.id not in held]
    for job in lost:
        job.queued_at = now
    session.commit()
    for job in lost:
        log.warning("job %s (%s): its message was lost; queued again", job.id, job.kind)
        _queue_message(jobs, job.id)
    if lost:
        wake_workers(jobs)
    return [job.id for job in lost]


def sweep(session: Session, jobs: JobQueue, now: datetime | None = None) -> int:
    """Expire finished jobs (their files deleted) and fail jobs no worker is running.

    Run every minute by the worker, and for one job when its page is opened. Never commits.
    """
    now = now or utcnow()
    changed = 0
    expired = select(Job).where(Job.status == JobStatus.DONE.value, Job.expires_at <= now)
    for job in session.scalars(expired):
        expire(job, jobs)
        changed += 1
    lost = select(Job).where(
        Job.status == JobStatus.RUNNING.value, Job.heartbeat_at < now - HEARTBEAT_STALE
    )
    for job in session.scalars(lost):
        _fail(job, JobError.WORKER_LOST, now)
        changed += 1
    waiting = select(Job).where(
        Job.status == JobStatus.QUEUED.value, Job.created_at < now - QUEUED_STALE
    )
    for job in session.scalars(waiting):
        _fail(job, JobError.NOT_STARTED, now)
        changed += 1
    return changed


def sweep_one(job: Job, jobs: JobQueue | None = None, now: datetime | None = None) -> None:
    """`sweep` for one job (its page or download was asked for). Never commits."""
    jobs = jobs or queue()
    now = now or utcnow()
    if job.status == JobStatus.DONE.value and job.expires_at and _aware(job.expires_at) <= now:
        expire(job, jobs)
    elif job.status == JobStatus.RUNNING.value and (
        job.heartbeat_at is None or _aware(job.heartbeat_at) < now - HEARTBEAT_STALE
    ):
        _fail(job, JobError.WORKER_LOST, now)
    elif job.status == JobStatus.QUEUED.value and _aware(job.created_at) < now - QUEUED_STALE:
        _fail(job, JobError.NOT_STARTED, now)


def expire(job: Job, jobs: JobQueue) -> None:
    shutil.rmtree(jobs.results / job.id, ignore_errors=True)
    job.status = JobStatus.EXPIRED.value
    job.result_path = None


def _fail(job: Job, error: JobError, now: datetime) -> None:
    job.status = JobStatus.FAILED.value
    job.error = error.value
    job.finished_at = now


def _aware(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back (stored in UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
