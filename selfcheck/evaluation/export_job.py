"""Anonymised exports as background jobs (platform/jobs.py).

The scope is checked before the job is queued (filters against the evaluator's grants, the
format and shape, at least k people) and again when the worker runs it, since grants or data
may have changed in between. The worker writes the zip with `bundle.run_export` into the
job's folder and logs the export (export_log) in the transaction that marks the job done:
an export is logged when its file exists, as when it was a direct download.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from selfcheck.accounts.permissions import Permission, has_permission
from selfcheck.evaluation import bundle, joins
from selfcheck.evaluation.export import DataChanged
from selfcheck.evaluation.scope import (
    ScopeError,
    count_people_up_to,
    parse_filters,
    require_at_least_k,
    require_complement_at_least_k,
)
from selfcheck.platform import jobs
from selfcheck.platform.models import Job, StaffUser

log = logging.getLogger(__name__)

NOT_ALLOWED = "403"


def params(args: Mapping[str, str], locale: str) -> dict[str, Any]:
    """The request's filters, format and shape (the query string), and the language."""
    return {"args": {key: value for key, value in args.items() if value}, "locale": locale}


def _k() -> int:
    return int(current_app.config["SELFCHECK_K_ANONYMITY"])


def check(session: Session, user: StaffUser, chosen: Mapping[str, Any]) -> None:
    """ScopeError (shown on the export page) or JobRefused; nothing is queued then."""
    if not has_permission(user, Permission.EVALUATE):
        raise jobs.JobRefused(NOT_ALLOWED, 403)
    args = chosen.get("args")
    if not isinstance(args, dict):
        raise jobs.JobRefused(NOT_ALLOWED, 400)
    filters = parse_filters(session, user, args)
    bundle.parse_request(args, current_app.extensions["selfcheck.definition"])
    # At least k people: counted up to k only, so the request stays quick at any scale.
    k = _k()
    require_at_least_k(session, filters, k, lambda db, chosen: count_people_up_to(db, chosen, k))
    require_complement_at_least_k(session, user, filters, k)


def allowed(session: Session, user: StaffUser, chosen: Mapping[str, Any]) -> None:
    """At download: still an evaluator, and the filters still within their grants."""
    if not has_permission(user, Permission.EVALUATE):
        raise jobs.JobRefused(NOT_ALLOWED, 403)
    args = chosen.get("args")
    parse_filters(session, user, args if isinstance(args, dict) else {})


def _report(progress: jobs.Progress, done: int) -> None:
    """One of the export's steps done, on its page (its own short commit, as a heartbeat).
    A busy database only leaves the page a step behind: never a failed export."""
    try:
        progress.step(done, bundle.STEPS)
    except Exception:
        log.warning("export job %s: step %d not recorded", progress.job_id, done, exc_info=True)


def run(session: Session, job: Job, chosen: Mapping[str, Any], progress: jobs.Progress) -> None:
    user = session.get(StaffUser, job.user_id)
    assert user is not None  # run_job checked
    args = chosen["args"]
    try:
        filters = parse_filters(session, user, args)
        request = bundle.parse_request(args, current_app.extensions["selfcheck.definition"])
    except ScopeError:
        raise jobs.JobFailed(jobs.JobError.REFUSED) from None
    progress.jobs.results.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix=".export-", dir=progress.jobs.results)
    try:
        result = bundle.run_export(
            session,
            current_app.extensions["selfcheck.definition"],
            user,
            filters,
            request,
            _k(),
            Path(folder),
            secret=str(current_app.secret_key or ""),
            step=lambda done: _report(progress, done),
        )
        with progress.write_result(result.filename) as path:
            shutil.move(result.zip_path, path)
    except ScopeError as refused:
        # 503: withheld as stale, not refused (`differencing.hold_unchanged`: an erasure
        # rewrote the evaluator's memory after the selection was read, or the memory was
        # held too long): run it again, as when the data moved.
        stale = refused.status == 503
        raise jobs.JobFailed(jobs.JobError.CHANGED if stale else jobs.JobError.REFUSED) from None
    except (joins.MemoryChanged, DataChanged):
        # Planned on data or a memory that moved meanwhile: nothing is released; the same
        # request run again plans on the new state.
        raise jobs.JobFailed(jobs.JobError.CHANGED) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


jobs.register(
    jobs.JobKind.EXPORT,
    jobs.Runner(
        check=check,
        run=run,
        # Its real steps (bundle.STEPS: the codebook, the answers read, the file written,
        # the bundle), not "step 0 of 1" for the whole export (round 23).
        total=lambda _chosen: bundle.STEPS,
        refusals=(ScopeError,),
        allowed=allowed,
        # Put back in the queue by `codebook.render_ahead` while its codebook is rendered.
        waiting=_l(
            "En attente : le dictionnaire des variables (PDF) de cet export est en "
            "préparation ; l'export commence ensuite."
        ),
    ),
)
