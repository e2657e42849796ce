"""The impact dashboard (issue 5): indicators computed in SQL, charts with their data tables."""

from __future__ import annotations

from flask import Blueprint, render_template

from selfcheck.permissions import Permission, requires
from selfcheck.services.evaluation.scope import ScopeError
from selfcheck.views.evaluation_common import (
    current_filters,
    filter_form_context,
    render_scope_error,
)

blueprint = Blueprint("evaluator", __name__, url_prefix="/evaluate")


@blueprint.get("/")
@requires(Permission.EVALUATE)
def dashboard() -> str | tuple[str, int]:
    try:
        filters = current_filters()
    except ScopeError as error:
        return render_scope_error("evaluator/dashboard.html", error)
    return render_template("evaluator/dashboard.html", filters=filters, **filter_form_context())
