"""The page of one background job (platform/jobs.py): its progress, then its file.

Works without JavaScript: a `<progress>` element and a status message in a `role="status"`
region, and while the job waits or runs the page asks the browser to load it again every
few seconds (the HTTP `Refresh` header, the same as a meta refresh and untouched by the
Content-Security-Policy), with a "Refresh" link and a link that stops the automatic
refresh (WCAG 2.2.1: a person reading slowly or with a screen reader keeps control).
Each load puts the focus on the status (templates/staff/job.html), the "stop" link one Tab
after it; the refresh comes less often as the job gets older (`refresh_seconds`), so a long
export does not reload the page under a keyboard or screen-reader user every 3 seconds.
Only the person who asked sees a job; anyone else gets 404, as for an unknown job.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, abort, redirect, render_template, request, send_file, url_for
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as HttpResponse

from selfcheck.accounts.permissions import Permission, requires
from selfcheck.accounts.session import current_staff
from selfcheck.platform import jobs
from selfcheck.platform.db import get_session
from selfcheck.platform.models import Job, StaffUser, utcnow

blueprint = Blueprint("jobs", __name__, url_prefix="/staff/jobs")

REFRESH_SECONDS = 3
# (age of the job, seconds between refreshes from then on): 3 s at first, then slower.
SLOWER_REFRESH = ((timedelta(seconds=20), 5), (timedelta(minutes=1), 10))
TITLES = {
    jobs.JobKind.EXPORT.value: _l("Export anonymisé"),
    jobs.JobKind.PRINT_BATCH.value: _l("Questionnaires avec codes"),
}
MIMETYPES = {".zip": "application/zip", ".pdf": "application/pdf"}


def _user() -> StaffUser:
    user = current_staff()
    assert user is not None  # guaranteed by @requires
    return user


def _job(job_id: str) -> Job:
    session = get_session()
    job = jobs.visible_job(session, job_id, _user())
    if job is None:
        abort(404)
    before = job.status
    jobs.sweep_one(job)
    if job.status != before:
        session.commit()
    return job


def refresh_seconds(job: Job, now: datetime) -> int:
    """How long the page waits before loading itself again: longer for an older job."""
    created = job.created_at
    if created.tzinfo is None:  # SQLite gives naive datetimes back (stored in UTC)
        created = created.replace(tzinfo=UTC)
    age = now - created
    seconds = REFRESH_SECONDS
    for older_than, slower in SLOWER_REFRESH:
        if age >= older_than:
            seconds = slower
    return seconds


def render_job(job: Job, status: int = 200, refused: str | None = None) -> HttpResponse:
    active = job.status in jobs.ACTIVE
    auto = active and request.args.get("auto") != "0"
    page = render_template(
        "staff/job.html",
        job=job,
        title=TITLES.get(job.kind, _l("Fichier")),
        active=active,
        auto=auto,
        error=jobs.error_message(job) if job.status == jobs.JobStatus.FAILED.value else None,
        waiting=jobs.waiting_message(job),
        refused=refused,
        keep_minutes=int(jobs.queue().keep.total_seconds() // 60),
    )
    response = HttpResponse(page, status=status, mimetype="text/html")
    if auto:
        response.headers["Refresh"] = str(refresh_seconds(job, utcnow()))
    return response


@blueprint.get("/<job_id>")
@requires(Permission.ACCOUNT)
def status(job_id: str) -> HttpResponse:
    return render_job(_job(job_id))


@blueprint.get("/<job_id>/download")
@requires(Permission.ACCOUNT)
def download(job_id: str) -> HttpResponse:
    """The finished file, whole; after its expiry (or before it is ready): 404 and why."""
    job = _job(job_id)
    path = jobs.result_file(job)
    if path is None or job.filename is None:
        return render_job(job, 404)
    if not jobs.may_download(get_session(), job, _user()):  # grants withdrawn since
        return render_job(job, 403, str(jobs.ERRORS[jobs.JobError.REFUSED]))
    response = send_file(
        path,
        mimetype=MIMETYPES.get(path.suffix, "application/octet-stream"),
        as_attachment=True,
        download_name=job.filename,
        max_age=0,
    )
    # Our own ASCII names, quoted as the direct downloads always were.
    response.headers["Content-Disposition"] = f'attachment; filename="{job.filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.post("/<job_id>/retry")
@requires(Permission.ACCOUNT)
def retry(job_id: str) -> HttpResponse:
    job = _job(job_id)
    session = get_session()
    try:
        again = jobs.retry(session, job, _user())
    except jobs.JobRefused as refusal:
        session.rollback()
        return render_job(job, refusal.status, str(refusal.message))
    session.commit()
    jobs.dispatch(again)
    return redirect(url_for("jobs.status", job_id=again.id), 303)


def started(job: Job) -> HttpResponse:
    """What a view answers once it queued `job`: its page (303: reloading never re-posts)."""
    return redirect(url_for("jobs.status", job_id=job.id), 303)
