"""attack14: an export put back in the queue for its codebook (`jobs.JobDeferred`) whose
evaluator lost the right meanwhile is refused when it finally runs: nothing exported, no
file, no export logged (platform/jobs.py `run_job` checks the rights again at each run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from selfcheck import prefill
from selfcheck.evaluation import codebook
from selfcheck.paper import blank_cache
from selfcheck.platform import jobs
from selfcheck.platform.db import Database
from selfcheck.platform.models import ExportLog, Role, StaffUser
from selfcheck.questionnaire.model import Definition
from tests.conftest import AppFactory
from tests.platform.test_jobs import job_id_of, job_of, queued_app
from tests.services.evaluation.support import populate
from tests.staff import add_staff, signed_in
from tests.support import count
from tests.test_prefill_book20 import books  # noqa: F401 (a fixture)


@pytest.mark.parametrize("lost", ["role", "grant", "inactive"])
def test_attack14_a_deferred_export_is_refused_when_its_evaluator_lost_the_right(
    make_app: AppFactory,
    tmp_path: Path,
    db_session: Session,
    definition: Definition,
    books: list[Any],  # noqa: F811
    lost: str,
) -> None:
    app = queued_app(make_app, tmp_path)
    database: Database = app.extensions["selfcheck.platform.db"]
    queue = jobs.queue(app)
    cache = blank_cache.folder(app)
    assert cache is not None
    populate(db_session, definition, people=14, moved=5)
    rechain = prefill.Rechain(app)
    rechain.stop_consumer = lambda: None
    app.extensions[codebook.WAIT_KEY] = rechain.wait_for
    account = add_staff(database, Role.EVALUATOR, departments=("44",))
    evaluator = signed_in(app, account)
    job_id = job_id_of(evaluator.get("/evaluate/exports/download?format=csv&shape=wide"))
    queue.huey.execute(queue.huey.dequeue())
    assert job_of(database, job_id).status == "queued"  # deferred for its codebook
    [wanted] = rechain.take()
    with database.session() as session:
        user = session.get(StaffUser, account.id)
        assert user is not None
        if lost == "role":
            user.role = Role.MEDIATOR.value
        elif lost == "inactive":
            user.active = False
        else:
            for grant in list(user.grants):
                session.delete(grant)
        session.commit()
    (cache / wanted).write_bytes(b"%PDF-1.7\n% the chain's\n%%EOF\n")
    queue.huey.execute(queue.huey.dequeue())
    job = job_of(database, job_id)
    assert (job.status, job.error) == ("failed", "refused")
    assert count(database, ExportLog) == 0 and not books
    assert not (queue.results / job_id).exists()
    assert queue.huey.pending_count() == 0
