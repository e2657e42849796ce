"""Every view of aggregates passes here first: differencing between an evaluator's views
(evaluation/differencing.py). A selection shown is a release, so it is committed here."""

from __future__ import annotations

from flask import current_app

from selfcheck.evaluation.dashboard import _selection, data_stamp
from selfcheck.evaluation.differencing import Checked, guard_figures, guard_view
from selfcheck.evaluation.scope import EvaluationFilters, ScopeError
from selfcheck.evaluation.view_support import evaluator, k_threshold
from selfcheck.platform.db import get_session

CHECKED_KEY = "selfcheck.differencing_checked"
FIGURES_CHECKED_KEY = "selfcheck.differencing_figures_checked"


def guard_view_here(filters: EvaluationFilters) -> None:
    """Before aggregates of `filters` are shown: refused (ScopeError 422) when they differ
    from an earlier selection of this evaluator by fewer than k people, else remembered
    (evaluation/differencing.py). Commits: a selection shown is a release."""
    session = get_session()
    user = evaluator()
    checked = current_app.extensions.setdefault(CHECKED_KEY, Checked())
    key = (user.id, k_threshold(), _selection(filters), data_stamp(session))
    if key in checked:
        return
    try:
        guard_view(session, user, filters, k_threshold(), str(current_app.secret_key))
    except ScopeError:
        session.rollback()
        raise
    session.commit()
    checked.add(key)


def guard_figures_here(filters: EvaluationFilters, groups: dict[str, frozenset[int]]) -> bool:
    """Whether figures about sub-groups of the selection (`groups`: figure -> people) may be
    shown: False when one of them differs from the same figure of an earlier view of this
    evaluator by fewer than k people (differencing.guard_figures). Commits what it remembers.
    """
    session = get_session()
    user = evaluator()
    checked = current_app.extensions.setdefault(FIGURES_CHECKED_KEY, Checked())
    key = (user.id, k_threshold(), _selection(filters), data_stamp(session))
    if key in checked:
        return True
    if not guard_figures(
        session, user, filters, groups, k_threshold(), str(current_app.secret_key)
    ):
        session.rollback()
        return False
    session.commit()
    checked.add(key)
    return True
