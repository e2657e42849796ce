"""What the evaluator screens share: the current evaluator, their filters, the scope error page."""

from __future__ import annotations

from flask import current_app, render_template, request

from selfcheck.accounts.session import current_staff
from selfcheck.evaluation.scope import (
    FILTER_KEYS,
    EvaluationFilters,
    ScopeError,
    parse_filters,
    structures_for_choice,
)
from selfcheck.platform.db import get_session
from selfcheck.platform.models import StaffUser


def evaluator() -> StaffUser:
    user = current_staff()
    assert user is not None  # @requires saw to it
    return user


def k_threshold() -> int:
    return int(current_app.config["SELFCHECK_K_ANONYMITY"])


def current_filters() -> EvaluationFilters:
    """The filters of this request, checked against the evaluator's grants (ScopeError if not)."""
    return parse_filters(get_session(), evaluator(), request.args)


def current_scope() -> EvaluationFilters:
    """The evaluator's whole scope: every structure of their grants, no other filter."""
    return parse_filters(get_session(), evaluator(), {})


def filter_arguments() -> dict[str, list[str]]:
    """This request's filters as query arguments, for links that keep them. Only the filters:
    the query's other arguments could be url_for's own (`_method` made the link fail to
    build, a 500; `_external` an address built from the request's Host header)."""
    return {key: request.args.getlist(key) for key in FILTER_KEYS if request.args.get(key)}


def filter_form_context() -> dict[str, object]:
    """What templates/evaluator/_filters.html needs to draw the filter form."""
    return {
        "filter_structures": structures_for_choice(get_session(), evaluator()),
        "filter_values": {key: request.args.get(key, "") for key in request.args},
    }


def render_scope_error(template: str, error: ScopeError, **context: object) -> tuple[str, int]:
    """The page again with the message and the filter form, and no data at all; the error
    summary links to the filter the message is about, if any (templates/evaluator/_filters)."""
    return (
        render_template(
            template,
            scope_error=error.message,
            scope_error_field=error.field,
            **filter_form_context(),
            **context,
        ),
        error.status,
    )
