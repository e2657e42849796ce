"""Anonymised exports and their codebook (issue 5)."""

from __future__ import annotations

from flask import Blueprint, render_template

from selfcheck.permissions import Permission, requires
from selfcheck.services.evaluation.scope import ScopeError
from selfcheck.views.evaluation_common import (
    current_filters,
    filter_form_context,
    render_scope_error,
)

blueprint = Blueprint("exports", __name__, url_prefix="/evaluate/exports")


@blueprint.get("/")
@requires(Permission.EVALUATE)
def index() -> str | tuple[str, int]:
    try:
        filters = current_filters()
    except ScopeError as error:
        return render_scope_error("evaluator/exports.html", error)
    return render_template("evaluator/exports.html", filters=filters, **filter_form_context())
