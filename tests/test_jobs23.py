"""jobs23 (round 23): what round 21 left of the background jobs.

1. An export's page said "étape 0 sur 1" for the whole export: the export now reports its
   real steps (bundle.STEPS), the page shows the step under way, and a job that counts no
   steps shows an indeterminate `<progress>`.
2. A codebook whose render failed was noted for good (until the next deployment's names):
   the note now has a time, and a noted codebook is tried again by the chain once its
   back-off is over (the worker when idle, or the next export), never beside the worker.
3. An export that found the codebooks' folder locked by another process waited about
   4 minutes before failing: now under 2 minutes, then the plain "try again" words.

On SQLite, and on PostgreSQL with SELFCHECK_TEST_DATABASE_URL.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session

from selfcheck import prefill
from selfcheck.evaluation import bundle, codebook
from selfcheck.evaluation.export import Shape
from selfcheck.paper import blank_cache
from selfcheck.platform import jobs
from selfcheck.platform.db import Database
from selfcheck.platform.models import Job, Role
from selfcheck.questionnaire.model import Definition
from tests.conftest import AppFactory
from tests.platform.test_jobs import job_id_of, job_of, queued_app
from tests.services.evaluation.support import populate
from tests.staff import add_staff, signed_in
from tests.support import text_of
from tests.test_prefill_book20 import books  # noqa: F401  (the fixture)

# --- 1. what the page says while an export runs -----------------------------------------------


def _status(html: str) -> str:
    found = re.search(r'role="status"[^>]*>(.*?)</div>', html, re.S)
    assert found is not None
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def _bar(html: str) -> str:
    found = re.search(r"<progress [^>]*>", html)
    assert found is not None
    return found.group(0)


def test_a_running_export_shows_the_step_under_way_never_step_0_of_1(
    make_app: AppFactory, tmp_path: Path, db_session: Session, definition: Definition
) -> None:
    """Tried as an evaluator (round 21): "En préparation : étape 0 sur 1" for the whole
    export. The export counts its real steps; the page shows the one under way (never 0),
    without JavaScript (the Refresh header, the links), the status in role="status"."""
    app = queued_app(make_app, tmp_path)
    database: Database = app.extensions["selfcheck.platform.db"]
    populate(db_session, definition, people=14, moved=5)
    evaluator = signed_in(app, add_staff(database, Role.EVALUATOR, departments=("44",)))
    job_id = job_id_of(evaluator.get("/evaluate/exports/download?format=csv&shape=long"))
    job = job_of(database, job_id)
    assert job.total == bundle.STEPS > 1
    shown: list[tuple[str, str]] = []
    for done in (0, 1, 2, 3):
        with database.session() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(status="running", progress=done, heartbeat_at=jobs.utcnow())
            )
            session.commit()
        page = evaluator.get(f"/staff/jobs/{job_id}")
        html = text_of(page)
        assert page.status_code == 200 and "Refresh" in page.headers
        assert "Arrêter la mise à jour automatique" in html
        shown.append((_status(html), _bar(html)))
    assert [status for status, _ in shown] == [
        f"En préparation : étape {n} sur {bundle.STEPS}." for n in (1, 2, 3, 4)
    ]
    assert [bar for _, bar in shown] == [
        f'<progress id="job-progress" max="{bundle.STEPS}" value="{n}">' for n in (0, 1, 2, 3)
    ]


def test_a_running_job_that_counts_no_steps_shows_an_indeterminate_bar(
    app: Flask, database: Database
) -> None:
    """A job of one step in all (an export queued before this version): no value on the
    `<progress>` element while it runs (indeterminate: busy), not a bar stuck at 0."""
    user = add_staff(database, Role.EVALUATOR, departments=("44",))
    with database.session() as session:
        session.add(
            Job(
                id="b" * 32,
                kind="export",
                user_id=user.id,
                params="{}",
                status="running",
                progress=0,
                total=1,
                heartbeat_at=jobs.utcnow(),
            )
        )
        session.commit()
    evaluator = signed_in(app, user)
    html = text_of(evaluator.get(f"/staff/jobs/{'b' * 32}"))
    assert _bar(html) == '<progress id="job-progress" max="1">'
    assert _status(html) == "En préparation : étape 1 sur 1."


@pytest.mark.slow  # one export run: 3-10 s on 2 shared cores
def test_an_export_job_reports_its_real_steps(
    app: Flask,
    db_session: Session,
    definition: Definition,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The codebook ready, the answers read and planned, the file written: each reported
    as it is done (its own short commit), then the job done at its last step."""
    steps: list[tuple[int, int | None]] = []
    step = jobs.Progress.step

    def counted(self: jobs.Progress, done: int, total: int | None = None) -> None:
        steps.append((done, total))
        step(self, done, total)

    monkeypatch.setattr(jobs.Progress, "step", counted)
    populate(db_session, definition, people=14, moved=5)
    evaluator = signed_in(app, add_staff(database, Role.EVALUATOR, departments=("44",)))
    job_id = job_id_of(evaluator.get("/evaluate/exports/download?format=csv&shape=wide"))
    assert steps == [(1, bundle.STEPS), (2, bundle.STEPS), (3, bundle.STEPS)]
    job = job_of(database, job_id)
    assert job.status == "done" and job.progress == job.total == bundle.STEPS


def test_a_step_not_recorded_never_fails_the_export(
    app: Flask,
    db_session: Session,
    definition: Definition,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A busy database when a step is reported leaves the page a step behind, no more."""

    def busy(self: jobs.Progress, done: int, total: int | None = None) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(jobs.Progress, "step", busy)
    populate(db_session, definition, people=14, moved=5)
    evaluator = signed_in(app, add_staff(database, Role.EVALUATOR, departments=("44",)))
    job_id = job_id_of(evaluator.get("/evaluate/exports/download?format=csv&shape=long"))
    assert job_of(database, job_id).status == "done"


# --- 2. a codebook whose render failed is tried again after a back-off -----------------------


def _exporting_app(
    make_app: AppFactory, tmp_path: Path, db_session: Session, definition: Definition
) -> tuple[Flask, Database, jobs.JobQueue, Path, prefill.Rechain]:
    """An app with a queue run by hand, 14 people, and exports that wait on the codebook
    chain as a job worker's do (`prefill.Rechain`, its consumer left alone)."""
    app = queued_app(make_app, tmp_path)
    cache = blank_cache.folder(app)
    assert cache is not None
    populate(db_session, definition, people=14, moved=5)
    rechain = prefill.Rechain(app)
    rechain.stop_consumer = lambda: None
    app.extensions[codebook.WAIT_KEY] = rechain.wait_for
    return app, app.extensions["selfcheck.platform.db"], jobs.queue(app), cache, rechain


def _note(cache: Path, name: str, *ages: float) -> None:
    """`name`'s render noted as failed, once per age (seconds ago), as a link notes it."""
    cache.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with (cache / prefill.CRASHED_FILE).open("a") as note:
        note.write("".join(f"{name} {now - age:.0f}\n" for age in ages))


def test_the_back_off_of_a_failed_render_doubles_and_is_bounded(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _note(cache, "a.pdf", 0)
    _note(cache, "b.pdf", 1000, 0)
    _note(cache, "c.pdf", *([0] * 40))
    notes = prefill._notes(cache)
    now = time.time()
    assert notes["a.pdf"].failures == 1 and notes["b.pdf"].failures == 2
    assert notes["a.pdf"].due - now == pytest.approx(prefill.RETRY_FIRST, abs=2)
    assert notes["b.pdf"].due - now == pytest.approx(2 * prefill.RETRY_FIRST, abs=2)
    assert notes["c.pdf"].due - now == pytest.approx(prefill.RETRY_MAX, abs=2)
    assert prefill.RETRY_MAX <= 600  # "try again in a few minutes" stays true
    # A time in the future (a clock set back, a hand) counts as now: bounded all the same.
    (cache / prefill.CRASHED_FILE).write_text(f"d.pdf {now + 10**9:.0f}\nd.pdf nan\n../x 1\n")
    assert set(prefill._notes(cache)) == {"d.pdf"}
    assert prefill._notes(cache)["d.pdf"].due <= time.time() + prefill.RETRY_MAX + 2
    # The note of rounds 19-22 (names alone): the note's own time.
    (cache / prefill.CRASHED_FILE).write_text("e.pdf\n")
    assert prefill.held(cache) == {"e.pdf"}
    assert prefill.held(cache, time.time() + prefill.RETRY_FIRST + 1) == set()


def test_a_noted_codebook_is_rendered_again_by_the_chain_once_its_back_off_is_over(
    make_app: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Round 21 noted a failed codebook until the next deployment's names: neither the
    worker's start nor its idle chains tried it again. Now they do once its back-off is
    over (by the chain: never beside the worker); within it, they leave it out."""
    from tests.test_prefill_book20 import _Execed, _requests, chain_stood_in

    app, cache, names = chain_stood_in(make_app, monkeypatch)
    _note(cache, names[0], 0)  # failed just now
    _note(cache, names[1], prefill.RETRY_FIRST + 5)  # failed once, its back-off over
    with app.app_context():
        assert prefill.chainable(app, cache) == names[1:]
    with pytest.raises(_Execed) as execed:
        prefill.chain_codebooks(app, ["x"])
    rendered = {Path(r["output"]).name for r in _requests(execed.value)}
    assert names[1] in rendered and names[0] not in rendered
    # A codebook rendered since: its note dropped (its count of failures starts again).
    (cache / names[1]).write_bytes(b"%PDF-1.7\n%%EOF\n")
    assert prefill._crashed(cache) == {names[0]}
    assert set(prefill._notes(cache)) == {names[0]}


def test_an_export_fails_at_once_for_a_render_that_just_failed_and_waits_for_one_nearly_due(
    make_app: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export that had the chain try its codebook fails as soon as that render failed
    (the note's time, not the job's count of waits); one whose back-off ends within
    PATIENCE waits for it; past the back-off the chain tries it again for the export."""
    app = queued_app(make_app, tmp_path)
    cache = blank_cache.folder(app)
    assert cache is not None
    rechain = prefill.Rechain(app)
    _note(cache, "x.pdf", 0)
    with pytest.raises(jobs.JobFailed) as failed:
        rechain.wait_for("x.pdf")
    assert failed.value.error == jobs.JobError.WAITED
    (cache / prefill.CRASHED_FILE).unlink()
    _note(cache, "x.pdf", prefill.RETRY_FIRST - 10)
    soon = rechain.wait_for("x.pdf")
    assert soon is not None and soon.before is not rechain.request
    assert 5 <= soon.delay <= prefill.Rechain.PATIENCE
    (cache / prefill.CRASHED_FILE).unlink()
    _note(cache, "x.pdf", prefill.RETRY_FIRST + 1)
    again = rechain.wait_for("x.pdf")
    assert again is not None and again.before == rechain.request and again.delay == 0
    # Chained for by this process a moment ago (the chain did not begin): waits; a little
    # later (TRIED_FOR), asked again (round 21: never again in this process's life).
    assert rechain.take() == ["x.pdf"]
    later = rechain.wait_for("x.pdf")
    assert later is not None and later.delay == prefill.Rechain.AGAIN_AFTER
    monkeypatch.setattr(prefill.Rechain, "TRIED_FOR", 0.0)
    asked = rechain.wait_for("x.pdf")
    assert asked is not None and asked.before == rechain.request


@pytest.mark.slow  # export runs: 5-15 s on 2 shared cores
def test_try_again_succeeds_once_the_cause_of_a_failed_render_is_gone(
    make_app: AppFactory,
    tmp_path: Path,
    db_session: Session,
    definition: Definition,
    books: list[Any],  # noqa: F811
) -> None:
    """A codebook whose render just failed: the export fails at once in plain words, with
    "Try again". Once its back-off is over (and the cause gone), "Try again" has the chain
    render it (here: its file written, as the chain would) and the export is made, never
    rendered beside the worker."""
    app, database, queue, cache, rechain = _exporting_app(
        make_app, tmp_path, db_session, definition
    )
    with app.app_context():
        name = codebook.pdf_name(Shape.LONG.value, False, app.config["SELFCHECK_LANGUAGES"], "fr")
    _note(cache, name, 0)
    evaluator = signed_in(app, add_staff(database, Role.EVALUATOR, departments=("44",)))
    job_id = job_id_of(evaluator.get("/evaluate/exports/download?format=csv&shape=long"))
    queue.huey.execute(queue.huey.dequeue())
    job = job_of(database, job_id)
    assert job.status == "failed" and job.error == "waited" and job.deferrals == 0
    page = text_of(evaluator.get(f"/staff/jobs/{job_id}"))
    assert "Réessayez dans quelques minutes" in page and "Réessayer" in page
    (cache / prefill.CRASHED_FILE).write_text(
        f"{name} {time.time() - prefill.RETRY_FIRST - 1:.0f}\n"
    )
    page = text_of(evaluator.get(f"/staff/jobs/{job_id}"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    again = job_id_of(evaluator.post(f"/staff/jobs/{job_id}/retry", {"csrf_token": token.group(1)}))
    queue.huey.execute(queue.huey.dequeue())
    assert job_of(database, again).status == "queued"
    assert rechain.take() == [name]
    (cache / name).write_bytes(b"%PDF-1.7\n% the chain's\n%%EOF\n")  # the chain renders it
    queue.huey.execute(queue.huey.dequeue())
    assert job_of(database, again).status == "done" and not books


# --- 3. a folder another process holds: under 1.5 minutes, then plain words ------------------


@pytest.mark.slow  # export runs: 5-15 s on 2 shared cores
def test_an_export_gives_up_on_a_busy_codebook_folder_in_under_90_seconds(
    make_app: AppFactory,
    tmp_path: Path,
    db_session: Session,
    definition: Definition,
    books: list[Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process holds the codebooks' folder for good (another worker's long chain, a
    render stuck): the export waits again in the queue, each time LOCK_WAIT for the lock
    then AGAIN_AFTER in huey's schedule, never renders beside the worker, and fails in plain
    words ("try again in a few minutes") within 90 seconds of waiting in all (round 21:
    8 waits of 10 + 30 s, about 5 minutes)."""
    import fcntl

    lock_wait = prefill.Rechain.LOCK_WAIT
    monkeypatch.setattr(prefill.Rechain, "LOCK_WAIT", 0.2)  # the real one counted below
    app, database, queue, cache, rechain = _exporting_app(
        make_app, tmp_path, db_session, definition
    )
    evaluator = signed_in(app, add_staff(database, Role.EVALUATOR, departments=("44",)))
    cache.mkdir(parents=True, exist_ok=True)
    waited = 0.0
    with (cache / prefill.LOCK_FILE).open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process's, for good
        job_id = job_id_of(evaluator.get("/evaluate/exports/download?format=csv&shape=long"))
        message = queue.huey.dequeue()
        far = queue.huey._get_timestamp() + timedelta(hours=1)
        for _ in range(jobs.MAX_DEFERRALS + 2):
            queue.huey.execute(message, far)
            waited += lock_wait
            job = job_of(database, job_id)
            if job.status != "queued":
                break
            due = jobs._aware(job.queued_at) - jobs.utcnow()  # type: ignore[arg-type]
            waited += due.total_seconds()
            message = queue.huey.dequeue()  # due later: run as if then
    job = job_of(database, job_id)
    assert job.status == "failed" and job.error == "waited" and not books
    assert rechain.take() == []
    assert 60 <= waited <= 90, waited
    page = text_of(evaluator.get(f"/staff/jobs/{job_id}"))
    assert "Réessayez dans quelques minutes" in page and "Réessayer" in page


def test_a_note_spoilt_by_bytes_that_are_not_text_still_holds_what_is_appended(
    tmp_path: Path,
) -> None:
    """Round 21 rewrote a note it could not read; notes are now appended to (one line per
    failed render): a spoilt line must not hide the lines after it, or a render that ends
    the worker would be tried again at each of its restarts."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / prefill.CRASHED_FILE).write_bytes(b"\xff\xfe\x00garbage \xc3\x28\n")
    _note(cache, "x.pdf", 0)
    assert prefill._crashed(cache) == {"x.pdf"}
