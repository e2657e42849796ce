"""The impact dashboard (issue 5): indicators computed in SQL, charts with their data tables."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, render_template
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from selfcheck.accounts.permissions import Permission, requires
from selfcheck.evaluation import charts, facts, headline_views, retention, sentences
from selfcheck.evaluation.dashboard import (
    TABLE_KEYS,
    Dashboard,
    UnknownTable,
    build_dashboard,
    table_csv,
    withhold,
)
from selfcheck.evaluation.first_view import announced
from selfcheck.evaluation.guard_views import (
    checked_paper,
    checked_people,
    guard_figures_here,
    guard_view_here,
    withheld_message,
)
from selfcheck.evaluation.scope import (
    EvaluationFilters,
    ScopeError,
    require_complement_at_least_k,
)
from selfcheck.evaluation.view_support import (
    current_filters,
    evaluator,
    filter_arguments,
    filter_form_context,
    k_threshold,
    render_scope_error,
)
from selfcheck.platform import clock
from selfcheck.platform.db import get_session
from selfcheck.platform.models import ExportLog

blueprint = Blueprint("evaluator", __name__, url_prefix="/evaluate")
TEMPLATE = "evaluator/dashboard.html"
OVERVIEW_TEMPLATE = "evaluator/overview.html"  # the first page: headline figures, contents
CACHE_KEY = "selfcheck.dashboard_cache"  # no longer filled (kept for the benchmark)
UNKNOWN_TABLE = _l("Ce tableau n'existe pas. Choisissez un tableau depuis le tableau de bord.")


def _dashboard(only: list[str] | None = None) -> tuple[EvaluationFilters, Dashboard]:
    """The protected dashboard of this request's filters (ScopeError if it cannot be shown)."""
    filters = current_filters()
    require_complement_at_least_k(get_session(), evaluator(), filters, k_threshold())
    refused = guard_view_here(filters)
    # No cache: the figures are sums over the maintained facts (facts.py), read in
    # milliseconds, and a cache's freshness check would read the responses on every view.
    board = build_dashboard(
        get_session(),
        current_app.extensions["selfcheck.definition"],
        filters,
        k_threshold(),
        only=only,
        people=checked_people(filters),
    )
    return filters, withhold(board, refused)


@blueprint.get("/")
@requires(Permission.EVALUATE)
@announced
def dashboard() -> str | tuple[str, int]:
    k = k_threshold()
    try:
        filters, board = _dashboard()
    except ScopeError as error:
        return render_scope_error(OVERVIEW_TEMPLATE, error, contents=headline_views.contents())
    return render_template(
        OVERVIEW_TEMPLATE,
        filters=filters,
        board=board,
        chart_of=lambda table: charts.bar_chart(table, k),
        retention=_retention(filters, k),
        **headline_views.overview_context(
            filters, board.refused, board.people, checked_paper(filters)
        ),
        **filter_form_context(),
    )


def _retention(filters: EvaluationFilters, k: int) -> list[tuple[str, str]]:
    """What lasts (issue 15): each retention figure as (what, plain sentence), none under k."""
    definition = current_app.extensions["selfcheck.definition"]
    now, zone = clock.now(), clock.zone_in(current_app.config)
    session = get_session()
    # The numbers from the cells (a few thousand rows); the people themselves are read only
    # when their check must run (guard_figures_here).
    counted = retention.count(
        session, definition, filters, now=now, zone=zone, key=facts.session_cell_key(session)
    )
    if counted is None:
        return []
    shown = guard_figures_here(
        filters,
        counted,
        lambda: retention.load(session, definition, filters, now=now, zone=zone),
    )
    if shown is None:
        withheld = gettext(
            "Ces chiffres ne sont pas donnés : les personnes dont ils parlent diffèrent de "
            "moins de %(k)s personnes de celles d'une sélection que vous avez déjà consultée, "
            "et les comparer permettrait de les reconnaître. Reprenez la même sélection ou "
            "élargissez-la.",
            k=k,
        )
        return [(gettext("Ce qui dure, quelques mois après"), withheld)]
    result = retention.retention(shown, definition, k=k)
    lines = [
        (
            gettext("Réponse au questionnaire de suivi"),
            sentences.share_sentence(
                result.response_rate,
                k=k,
                what=gettext("ont répondu au questionnaire de suivi une fois celui-ci ouvert"),
            ),
        ),
        (
            gettext("Progrès gardés, toutes compétences"),
            sentences.share_sentence(
                result.overall,
                k=k,
                what=gettext("ont gardé, quelques mois après, tous leurs progrès de la fin"),
            ),
        ),
    ]
    for row in result.by_competence:
        label = gettext(definition.competences[row.competence].label)
        lines.append(
            (
                label,
                sentences.share_sentence(
                    row.kept,
                    k=k,
                    what=gettext("ont gardé leurs progrès dans ce domaine"),
                ),
            )
        )
    return lines


@blueprint.get("/tables/<table>.csv")
@requires(Permission.EVALUATE)
def table_download(table: str) -> Response | tuple[str, int]:
    k = k_threshold()
    if table not in TABLE_KEYS:
        return render_scope_error(TEMPLATE, ScopeError(UNKNOWN_TABLE, 404))
    session = get_session()
    try:
        filters, board = _dashboard(only=[table])
        protected = board.table(table)
        if table in board.withheld:  # differencing.guard_tables: nothing of it is released
            raise ScopeError(withheld_message(k), 422)
    except ScopeError as error:
        return render_scope_error(TEMPLATE, error)
    except UnknownTable:
        return render_scope_error(TEMPLATE, ScopeError(UNKNOWN_TABLE, 404))
    body = table_csv(protected, k)
    session.add(
        ExportLog(
            user_id=evaluator().id,
            kind="table",
            filters=json.dumps(filters.as_dict()),
            row_count=len(protected.rows),
            k=k,
            report=json.dumps({"table": table, "hidden_cells": protected.hidden_cells}),
        )
    )
    session.commit()
    return Response(
        "\ufeff" + body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="selfcheck-{table}.csv"',
        },
    )


# The filters of this request, for the links between the evaluation's pages.
blueprint.add_app_template_global(filter_arguments, "evaluation_filter_arguments")
headline_views.register(blueprint)  # the other pages of the dashboard (issue 14)
