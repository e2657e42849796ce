"""jobs21 (round 21): a job whose message was lost is queued again within a minute or two,
never run twice; an export whose codebook the chain cannot render now waits again (a bounded
number of times, then fails in plain words) instead of rendering it beside the worker.

platform/jobs.py: `requeue_lost`, `run_job`'s claim, `_put_back`'s count (`MAX_DEFERRALS`);
selfcheck/prefill.py: `Rechain.wait_for`, `chain_codebooks` (`wanted` codebooks noted as
failed). On SQLite, and on PostgreSQL with SELFCHECK_TEST_DATABASE_URL (then the queue is
PostgresHuey in the same database, as in production).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from selfcheck import prefill
from selfcheck.evaluation import codebook
from selfcheck.paper import blank_cache
from selfcheck.platform import jobs
from selfcheck.platform.db import Database
from selfcheck.platform.models import Beneficiary, ExportLog, Job, Role, Structure
from selfcheck.questionnaire.model import Definition
from tests.conftest import AppFactory
from tests.platform.test_jobs import CODED, job_id_of, job_of, queued_app
from tests.services.evaluation.support import populate
from tests.staff import add_staff, signed_in
from tests.support import count
from tests.test_prefill_book20 import books  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parents[1]
LATER = jobs.REQUEUE_AFTER + timedelta(seconds=1)


class _Killed(BaseException):
    """The worker's process ends here (SIGKILL, out of memory): nothing after it runs."""


def _killed(*_args: Any, **_kwargs: Any) -> None:
    raise _Killed


def _job_ids_held(queue: jobs.JobQueue) -> set[str]:
    held = jobs.messages(queue)
    assert held is not None
    return held


# --- 1. a message lost between a commit and its queueing -------------------------------------


@pytest.mark.slow  # two export runs: 5-15 s on 2 shared cores
def test_a_deferred_export_whose_worker_died_before_queueing_it_again_is_queued_again(
    make_app: AppFactory,
    tmp_path: Path,
    db_session: Session,
    definition: Definition,
    books: list[Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker puts the export back (its codebook is missing), commits, and dies before
    the job's message is queued again: the job is queued with no message. Not touched while
    a message may be on its way (REQUEUE_AFTER); then the sweep queues it again, once, and
    it runs once its codebook is there."""
    app = queued_app(make_app, tmp_path)
    database: Database = app.extensions["selfcheck.platform.db"]
    queue = jobs.queue(app)
    cache = blank_cache.folder(app)
    assert cache is not None
    populate(db_session, definition, people=14, moved=5)
    rechain = prefill.Rechain(app)
    rechain.stop_consumer = lambda: None
    app.extensions[codebook.WAIT_KEY] = rechain.wait_for
    evaluator = signed_in(app, add_staff(database, Role.EVALUATOR, departments=("44",)))
    job_id = job_id_of(evaluator.get("/evaluate/exports/download?format=csv&shape=wide"))
    message = queue.huey.dequeue()
    with monkeypatch.context() as patch:
        patch.setattr(jobs, "_queue_message", _killed)
        with pytest.raises(_Killed):
            queue.huey.execute(message)
    job = job_of(database, job_id)
    assert job.status == "queued" and job.deferrals == 1 and job.queued_at is not None
    assert job_id not in _job_ids_held(queue) and queue.huey.pending_count() == 0
    with database.session() as session, app.app_context():
        assert jobs.requeue_lost(session, queue) == []  # a message may be on its way
        assert jobs.requeue_lost(session, queue, jobs.utcnow() + LATER) == [job_id]
        assert jobs.requeue_lost(session, queue, jobs.utcnow() + 2 * LATER) == []  # held now
    assert queue.huey.pending_count() == 1
    [wanted] = rechain.take()
    (cache / wanted).write_bytes(b"%PDF-1.7\n% the chain's\n%%EOF\n")  # the chain renders it
    queue.huey.execute(queue.huey.dequeue())
    job = job_of(database, job_id)
    assert job.status == "done" and count(database, ExportLog) == 1 and not books
    assert queue.huey.pending_count() == 0


def test_a_job_whose_request_died_before_dispatch_is_queued_again(
    make_app: AppFactory, tmp_path: Path, structure: Structure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web request committed its job and died before `dispatch`: queued again by the
    sweep. A job whose message waits in huey's schedule (a delayed wait) is left alone."""
    app = queued_app(make_app, tmp_path)
    database: Database = app.extensions["selfcheck.platform.db"]
    queue = jobs.queue(app)
    queue.huey.flush()  # PostgresHuey: the test database's queue, whatever an earlier test left
    staff = signed_in(app, add_staff(database, Role.MEDIATOR, structure))
    with monkeypatch.context() as patch:
        patch.setattr(jobs, "dispatch", lambda job: None)
        staff.get("/staff/print")
        lost = job_id_of(staff.post("/staff/print", CODED))
    staff.get("/staff/print")
    scheduled = job_id_of(staff.post("/staff/print", CODED))
    queue.huey.flush()  # the second job's message: moved to the schedule, 5 minutes ahead
    queue.task.schedule(args=(scheduled,), delay=300)
    assert _job_ids_held(queue) == {scheduled}
    with database.session() as session, app.app_context():
        assert jobs.requeue_lost(session, queue) == []
        assert jobs.requeue_lost(session, queue, jobs.utcnow() + LATER) == [lost]
    assert job_of(database, lost).queued_at is not None
    [again] = [task for task in queue.huey.pending() if task.args == (lost,)]
    queue.huey.execute(again)
    assert job_of(database, lost).status == "done" and count(database, Beneficiary) == 3
    queue.huey.flush()


def test_two_messages_for_one_job_run_it_once(
    make_app: AppFactory, tmp_path: Path, structure: Structure
) -> None:
    """Two sweeps queued it again at once, or one did while a consumer was taking the first
    message: the job is taken only from queued, in one statement; the second does nothing."""
    app = queued_app(make_app, tmp_path)
    database: Database = app.extensions["selfcheck.platform.db"]
    queue = jobs.queue(app)
    queue.huey.flush()  # PostgresHuey: the test database's queue, whatever an earlier test left
    staff = signed_in(app, add_staff(database, Role.MEDIATOR, structure))
    staff.get("/staff/print")
    job_id = job_id_of(staff.post("/staff/print", CODED))
    queue.task(job_id)
    assert queue.huey.pending_count() == 2
    queue.huey.execute(queue.huey.dequeue())
    done = job_of(database, job_id)
    queue.huey.execute(queue.huey.dequeue())
    again = job_of(database, job_id)
    assert again.status == "done" and again.finished_at == done.finished_at
    assert again.result_path == done.result_path and count(database, Beneficiary) == 3


WEB_PROCESS = textwrap.dedent(
    """
    import os, signal, sys
    from selfcheck import create_app
    from selfcheck.platform import jobs
    from tests.staff import sign_in
    from tests.support import Visitor

    app = create_app()
    visitor = Visitor(app.test_client())
    assert sign_in(visitor, sys.argv[1], sys.argv[2]).status_code == 302
    visitor.get("/staff/print")

    def killed(job):  # the job is committed; the web process dies before queueing it
        print(job.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    jobs.dispatch = killed
    coded = {"kind": "coded", "form": "before", "language": "fr", "copies": "5"}
    visitor.post("/staff/print", coded)
    """
)


@pytest.mark.slow  # a real worker's start: > 8 s on 2 shared cores
def test_a_worker_queues_again_at_its_start_a_job_whose_message_was_lost(
    database_url: str, database: Database, structure: Structure, tmp_path: Path
) -> None:
    """A web process killed (SIGKILL) between its job's commit and its message: a real
    `selfcheck worker` started later finds the job with no message and runs it."""
    account = add_staff(database, Role.MEDIATOR, structure)
    env = {
        **os.environ,
        "SELFCHECK_DATABASE_URL": database_url,
        "SELFCHECK_SECRET_KEY": "test-only-secret-key-for-the-worker-test",
        "SELFCHECK_JOBS_DIR": str(tmp_path / "files"),
        "PYTHONPATH": str(ROOT),
        "SELFCHECK_PREFILL": "0",  # no codebooks rendered first (minutes)
    }
    if not database_url.startswith("postgresql"):
        env["SELFCHECK_JOBS_URL"] = f"sqlite:///{tmp_path / 'queue.db'}"
    web = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS, account.email, account.password],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert web.returncode == -signal.SIGKILL, web.stderr
    job_id = web.stdout.strip().splitlines()[-1]
    assert job_of(database, job_id).status == "queued"
    with database.session() as session:  # the worker starts after REQUEUE_AFTER
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(created_at=jobs.utcnow() - LATER)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    worker = subprocess.Popen(
        [sys.executable, "-c", "from selfcheck.cli import main; main()", "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # A worker's start, then a batch of 5: seconds on a quiet machine; up to minutes on
        # 2 shared cores at load 20 and more (its imports alone took 120 s once).
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and job_of(database, job_id).status in jobs.ACTIVE:
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            _out, err = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            _out, err = worker.communicate()
    log = err.decode(errors="replace")
    assert job_of(database, job_id).status == "done", log[-2000:]
    assert "its message was lost; queued again" in log
    assert count(database, Beneficiary) == 5


# --- 2. never rendered beside the worker: wait again, a bounded number of times ---------------


@pytest.mark.slow  # export runs: 5-15 s on 2 shared cores
def test_an_export_whose_codebook_the_chain_did_not_render_waits_then_fails_in_plain_words(
    make_app: AppFactory,
    tmp_path: Path,
    db_session: Session,
    definition: Definition,
    books: list[Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chained for once and still missing (another worker held the lock, the render failed):
    the export waits again (its message due AGAIN_AFTER later), never renders the codebook
    beside the worker; past MAX_DEFERRALS it fails in plain words, nothing kept, and may be
    tried again."""
    monkeypatch.setattr(jobs, "MAX_DEFERRALS", 3)
    app = queued_app(make_app, tmp_path)
    database: Database = app.extensions["selfcheck.platform.db"]
    queue = jobs.queue(app)
    populate(db_session, definition, people=14, moved=5)
    rechain = prefill.Rechain(app)
    rechain.stop_consumer = lambda: None
    app.extensions[codebook.WAIT_KEY] = rechain.wait_for
    evaluator = signed_in(app, add_staff(database, Role.EVALUATOR, departments=("44",)))
    job_id = job_id_of(evaluator.get("/evaluate/exports/download?format=csv&shape=long"))
    queue.huey.execute(queue.huey.dequeue())
    assert job_of(database, job_id).status == "queued"
    assert len(rechain.take()) == 1  # the chain begins, and leaves it missing
    queue.huey.execute(queue.huey.dequeue())
    job = job_of(database, job_id)
    assert job.status == "queued" and job.deferrals == 2 and not books
    assert queue.huey.pending_count() == 1 and _job_ids_held(queue) == {job_id}
    waits = jobs._aware(job.queued_at) - jobs.utcnow()  # type: ignore[arg-type]
    assert timedelta(seconds=prefill.Rechain.AGAIN_AFTER - 10) < waits
    assert waits <= timedelta(seconds=prefill.Rechain.AGAIN_AFTER)
    page = evaluator.get(f"/staff/jobs/{job_id}")
    assert page.status_code == 200 and "dictionnaire des variables (PDF)" in evaluator.text
    due = queue.huey._get_timestamp() + timedelta(minutes=1)
    for expected in ("queued", "failed"):
        message = queue.huey.dequeue()
        assert not queue.huey.ready_to_run(message)
        queue.huey.execute(message)  # due later: the consumer keeps it in huey's schedule
        assert queue.huey.scheduled_count() == 1 and _job_ids_held(queue) == {job_id}
        [message] = queue.huey.read_schedule(due)  # ... until it is due
        queue.huey.execute(message, due)
        assert job_of(database, job_id).status == expected
    job = job_of(database, job_id)
    assert job.error == "waited" and job.deferrals == 3 and not books
    assert count(database, ExportLog) == 0 and not (queue.results / job_id).exists()
    assert queue.huey.pending_count() == 0 and queue.huey.scheduled_count() == 0
    page = evaluator.get(f"/staff/jobs/{job_id}")
    assert "n'a pas pu être produite à temps" in evaluator.text
    assert "Réessayer" in evaluator.text
    assert "Refresh" not in page.headers


def test_a_codebook_noted_as_failed_is_tried_again_by_the_chain_once_per_export(
    make_app: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A codebook whose render failed once is no longer rendered beside the worker: an
    export that needs it sends the worker into the chain for it (noted or not, once its
    back-off is over: round 23); if that render failed again, the export fails at once
    (round 23: the note's time says so, not the job's count of waits). Another process
    holding the folder's lock: the export waits AGAIN_AFTER, never renders it here."""
    import fcntl

    app = queued_app(make_app, tmp_path)
    cache = blank_cache.folder(app)
    assert cache is not None
    rechain = prefill.Rechain(app)
    cache.mkdir(parents=True, exist_ok=True)
    long_ago = time.time() - prefill.RETRY_MAX - 1
    (cache / prefill.CRASHED_FILE).write_text(f"codebook-b.pdf {long_ago:.0f}\n")
    first = rechain.wait_for("codebook-b.pdf")
    assert first is not None and first.before == rechain.request and first.delay == 0
    with (cache / prefill.CRASHED_FILE).open("a") as note:  # the chain's render failed
        note.write(f"codebook-b.pdf {time.time():.0f}\n")
    with pytest.raises(jobs.JobFailed) as failed:
        rechain.wait_for("codebook-b.pdf")
    assert failed.value.error == jobs.JobError.WAITED
    (cache / prefill.CRASHED_FILE).unlink()
    assert rechain.take() == ["codebook-b.pdf"]
    later = rechain.wait_for("codebook-b.pdf")  # chained for once by this process
    assert later is not None and later.delay == prefill.Rechain.AGAIN_AFTER
    monkeypatch.setattr(prefill.Rechain, "LOCK_WAIT", 0.3)
    with (cache / prefill.LOCK_FILE).open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another worker's chain
        busy = rechain.wait_for("codebook-c.pdf")
    assert busy is not None and busy.delay == prefill.Rechain.AGAIN_AFTER
    assert rechain.take() == []


def test_the_chain_renders_a_wanted_codebook_even_if_noted_as_failed(
    make_app: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`chain_codebooks` with `wanted` takes a noted codebook too (an export waits for it);
    without `wanted` (the worker's start, an idle queue) noted ones are still left out."""
    from tests.test_prefill_book20 import _Execed, _requests, chain_stood_in

    app, cache, names = chain_stood_in(make_app, monkeypatch)
    cache.mkdir(parents=True, exist_ok=True)
    (cache / prefill.CRASHED_FILE).write_text(names[0] + "\n")
    with pytest.raises(_Execed) as execed:
        prefill.chain_codebooks(app, ["x"], [names[0]])
    assert [Path(r["output"]).name for r in _requests(execed.value)] == [names[0]]
    with pytest.raises(_Execed) as execed:
        prefill.chain_codebooks(app, ["x"])
    assert names[0] not in {Path(r["output"]).name for r in _requests(execed.value)}


# --- 4. what a person waiting sees ----------------------------------------------------------


def test_a_coded_batch_reports_its_copies_while_they_are_stamped(
    app: Any, database: Database, structure: Structure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried as a mediator printing 200 coded forms: the page said "step 1 of 201" for the
    whole stamping (minutes on a loaded machine). The copies are now reported as they are
    stamped (at most every PROGRESS_EVERY seconds; here every copy), the last one with the
    file."""
    from selfcheck.paper import batch

    monkeypatch.setattr(batch, "PROGRESS_EVERY", 0.0)
    steps: list[int] = []
    step = jobs.Progress.step

    def counted(self: jobs.Progress, done: int, total: int | None = None) -> None:
        steps.append(done)
        step(self, done, total)

    monkeypatch.setattr(jobs.Progress, "step", counted)
    staff = signed_in(app, add_staff(database, Role.MEDIATOR, structure))
    staff.get("/staff/print")
    job_id = job_id_of(staff.post("/staff/print", CODED))
    assert steps == [1, 2, 3, 4]
    job = job_of(database, job_id)
    assert job.status == "done" and job.progress == job.total == 4
