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
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session

from selfcheck.evaluation import bundle
from selfcheck.platform import jobs
from selfcheck.platform.db import Database
from selfcheck.platform.models import Job, Role
from selfcheck.questionnaire.model import Definition
from tests.conftest import AppFactory
from tests.platform.test_jobs import job_id_of, job_of, queued_app
from tests.services.evaluation.support import populate
from tests.staff import add_staff, signed_in
from tests.support import text_of

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
