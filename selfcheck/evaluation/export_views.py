"""Anonymised exports and their codebook (issue 5).

Thin views: `services/evaluation/bundle.py` does the work (scope, anonymisation, files, log).
A download is a GET (the filters and the chosen format in the query string, as the filter
form): it starts a background job (export_job.py) whose page shows the progress and then
the zip, kept for a while in the instance folder and then deleted (platform/jobs.py).
"""

from __future__ import annotations

import json
from typing import Any

from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_decimal, get_locale
from werkzeug.wrappers import Response as WerkzeugResponse

from selfcheck.accounts.permissions import Permission, requires
from selfcheck.evaluation import bundle, codebook, export_job
from selfcheck.evaluation.guard_views import guard_view_here
from selfcheck.evaluation.scope import (
    EvaluationFilters,
    ScopeError,
    count_people_up_to,
    require_complement_at_least_k,
)
from selfcheck.evaluation.view_support import (
    current_filters,
    evaluator,
    filter_form_context,
    k_threshold,
    render_scope_error,
)
from selfcheck.platform import jobs, security
from selfcheck.platform.db import get_session
from selfcheck.platform.i18n import text_direction
from selfcheck.questionnaire.model import Definition
from selfcheck.site import job_views

blueprint = Blueprint("exports", __name__, url_prefix="/evaluate/exports")

TEMPLATE = "evaluator/exports.html"
# The download is a GET that starts a job: only from this site's pages, or typed by hand
# ("none"). Browsers send Sec-Fetch-Site (Fetch Metadata); a client without it is let in.
FETCHED_FROM_HERE = ("same-origin", "none")
# The page's preview plans the whole export's anonymisation in the request: about 0.1-0.2 ms
# a person (10,000 people: 2 s under load, 1,000,000: minutes and 2 GB). Past this many
# people it is left to the export's job, whose zip holds the same report (docs/evaluation.md).
PREVIEW_MAX_PEOPLE = 10_000


def _choices() -> dict[str, Any]:
    return {
        "format_choices": [(code, str(label)) for code, label in bundle.FORMAT_LABELS.items()],
        "shape_choices": [(code, str(label)) for code, label in bundle.SHAPE_LABELS.items()],
        "chosen_format": request.args.get("format", "xlsx"),
        "chosen_shape": request.args.get("shape", "wide"),
        "focus_choices": bundle.focus_choices(current_app.extensions["selfcheck.definition"]),
        "chosen_focus": request.args.get("focus", ""),
        "k": k_threshold(),
    }


@blueprint.get("/")
@requires(Permission.EVALUATE)
def index() -> str | tuple[str, int]:
    try:
        filters = current_filters()
        definition = current_app.extensions["selfcheck.definition"]
        require_complement_at_least_k(get_session(), evaluator(), filters, k_threshold())
        preview = _preview(filters, definition)
    except ScopeError as error:
        return render_scope_error(TEMPLATE, error, **_choices())
    return render_template(
        TEMPLATE,
        filters=filters,
        preview=preview,
        preview_limit=str(format_decimal(PREVIEW_MAX_PEOPLE)),
        free_text=evaluator().can_read_free_text,
        **_choices(),
        **filter_form_context(),
    )


def _preview(filters: EvaluationFilters, definition: Definition) -> list[str] | None:
    """The anonymisation report an export of these filters would give, or None when the
    selection has more than `PREVIEW_MAX_PEOPLE` people (counted up to that many only).

    The report shows true shares: checked as a view like the dashboard (`guard_view_here`,
    which also remembers it as seen). Without a report the page shows no figure: nothing to
    check nor to remember (the export itself is checked by its job)."""
    session = get_session()
    if count_people_up_to(session, filters, PREVIEW_MAX_PEOPLE + 1) > PREVIEW_MAX_PEOPLE:
        return None
    guard_view_here(filters)
    plan = bundle.preview(
        session,
        filters,
        k_threshold(),
        definition,
        bundle.parse_focus(request.args.get("focus"), definition),
        bundle.remembered(session, evaluator(), str(current_app.secret_key or "")),
    )
    return bundle.report_lines(plan.report())


@blueprint.get("/download")
@requires(Permission.EVALUATE)
def download() -> WerkzeugResponse | tuple[str, int]:
    """Start the export as a background job (export_job.py) and show its page.

    The scope is checked here, before anything is queued: filters outside the grants, an
    unknown format or fewer than k people give the export page with the message.
    """
    kept: dict[str, Any] = security.link_arguments(request.args)
    if "format" not in request.args:  # no choice made yet: the export page, filters kept
        return redirect(url_for("exports.index", **kept))
    if request.headers.get("Sec-Fetch-Site", "none") not in FETCHED_FROM_HERE:
        # A link or form of another site must not export in the evaluator's name (the
        # export log, a selection the differencing check then holds against them): the
        # export page instead, filters kept, where they choose to download.
        return redirect(url_for("exports.index", **kept))
    session = get_session()
    chosen = export_job.params(request.args.to_dict(), str(get_locale()))
    try:
        job = jobs.enqueue(session, jobs.JobKind.EXPORT, chosen, evaluator())
    except ScopeError as error:
        session.rollback()
        return render_scope_error(TEMPLATE, error, **_choices())
    except jobs.JobRefused as refusal:
        session.rollback()
        refused = ScopeError(refusal.message, refusal.status)
        return render_scope_error(TEMPLATE, refused, **_choices())
    session.commit()
    jobs.dispatch(job)
    return job_views.started(job)


@blueprint.get("/codebook")
@requires(Permission.EVALUATE)
def codebook_page() -> str | tuple[str, int]:
    shapes = [(code, str(label)) for code, label in bundle.SHAPE_LABELS.items()]
    try:
        shape = bundle.parse_shape(request.args.get("shape"))
    except ScopeError as error:
        page = render_template("evaluator/codebook.html", error=error.message, shape_choices=shapes)
        return page, error.status
    book = codebook.build(
        current_app.extensions["selfcheck.definition"],
        shape,
        evaluator().can_read_free_text,
    )
    return render_template(
        "evaluator/codebook.html",
        codebook=book,
        shape=shape.value,
        lang=str(get_locale()),
        form_names=codebook.form_names(),
        missing=codebook.missing_rows(text_direction(str(get_locale()))),
        shape_choices=shapes,
    )


@blueprint.get("/log")
@requires(Permission.EVALUATE)
def log() -> str:
    entries = []
    for entry in bundle.export_log(get_session(), evaluator()):
        report = json.loads(entry.report or "{}")
        entries.append(
            {
                "at": entry.at,
                "who": entry.user.email if entry.user else "",
                "kind": entry.kind,
                "rows": entry.row_count,
                "k": entry.k,
                "filters": json.loads(entry.filters or "{}"),
                "report": bundle.report_lines(report) if "k" in report else [],
            }
        )
    return render_template("evaluator/export_log.html", entries=entries)
