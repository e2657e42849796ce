"""Anonymised exports and their codebook (issue 5).

Thin views: `services/evaluation/bundle.py` does the work (scope, anonymisation, files, log).
A download is a GET (the filters and the chosen format in the query string, as the filter
form): it writes the zip into a temporary folder, sends it and removes the folder afterwards.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import get_locale
from werkzeug.wrappers import Response as WerkzeugResponse

from selfcheck.accounts.permissions import Permission, requires
from selfcheck.evaluation import bundle, codebook
from selfcheck.evaluation.scope import ScopeError
from selfcheck.evaluation.view_support import (
    current_filters,
    evaluator,
    filter_form_context,
    k_threshold,
    render_scope_error,
)
from selfcheck.platform.db import commit_or_rollback, get_session

blueprint = Blueprint("exports", __name__, url_prefix="/evaluate/exports")

TEMPLATE = "evaluator/exports.html"


def _choices() -> dict[str, Any]:
    return {
        "format_choices": [(code, str(label)) for code, label in bundle.FORMAT_LABELS.items()],
        "shape_choices": [(code, str(label)) for code, label in bundle.SHAPE_LABELS.items()],
        "chosen_format": request.args.get("format", "xlsx"),
        "chosen_shape": request.args.get("shape", "wide"),
        "k": k_threshold(),
    }


@blueprint.get("/")
@requires(Permission.EVALUATE)
def index() -> str | tuple[str, int]:
    try:
        filters = current_filters()
        plan = bundle.preview(
            get_session(),
            filters,
            k_threshold(),
            current_app.extensions["selfcheck.definition"],
        )
    except ScopeError as error:
        return render_scope_error(TEMPLATE, error, **_choices())
    return render_template(
        TEMPLATE,
        filters=filters,
        preview=bundle.report_lines(plan.report()),
        free_text=evaluator().can_read_free_text,
        **_choices(),
        **filter_form_context(),
    )


@blueprint.get("/download")
@requires(Permission.EVALUATE)
def download() -> WerkzeugResponse | tuple[str, int]:
    if "format" not in request.args:  # no choice made yet: the export page, filters kept
        kept: dict[str, Any] = request.args.to_dict()
        return redirect(url_for("exports.index", **kept))
    folder = Path(tempfile.mkdtemp(prefix="selfcheck-export-"))
    try:
        filters = current_filters()
        chosen = bundle.parse_request(request.args)
        result = bundle.run_export(
            get_session(),
            current_app.extensions["selfcheck.definition"],
            evaluator(),
            filters,
            chosen,
            k_threshold(),
            folder,
        )
        commit_or_rollback(get_session())  # the export log
    except ScopeError as error:
        shutil.rmtree(folder, ignore_errors=True)
        return render_scope_error(TEMPLATE, error, **_choices())
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    # Open the zip, then remove the folder: the open file stays readable until sent (POSIX),
    # and nothing is left on disk even if the client goes away.
    data = result.zip_path.open("rb")
    shutil.rmtree(folder, ignore_errors=True)
    response = send_file(
        data,
        mimetype="application/zip",
        as_attachment=True,
        download_name=result.filename,
        max_age=0,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


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
