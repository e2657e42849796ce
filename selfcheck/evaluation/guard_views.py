"""Every view of aggregates passes here first: differencing between an evaluator's views
(evaluation/differencing.py). A selection shown is a release, so it is committed here."""

from __future__ import annotations

from collections.abc import Mapping

from flask import current_app, g
from flask_babel import gettext

from selfcheck.evaluation.dashboard import (
    PAIRED_FORMS,
    SPECS,
    _selection,
    data_stamp,
    group_of,
)
from selfcheck.evaluation.differencing import (
    Checked,
    Hashed,
    Hasher,
    guard_figures,
    guard_tables,
    guard_view,
    read_selection,
)
from selfcheck.evaluation.scope import EvaluationFilters, ScopeError
from selfcheck.evaluation.view_support import evaluator, k_threshold
from selfcheck.platform.db import get_session
from selfcheck.questionnaire.model import FormKind

CHECKED_KEY = "selfcheck.differencing_checked"
FIGURES_CHECKED_KEY = "selfcheck.differencing_figures_checked"

# Every sub-group a table of the dashboard's pages reads: name -> its forms (the dashboard's
# tables, and the paired tables of the task and change pages: pairs and retrospective forms).
GROUPS: Mapping[str, tuple[str, ...]] = {
    group_of(forms): tuple(form.value for form in forms)
    for forms in (
        *(forms for spec in SPECS for forms in spec.forms),
        *PAIRED_FORMS,
        *((form,) for form in FormKind),
    )
}
PAIRS_GROUP = group_of((FormKind.AFTER,))
STAMP_KEY = "selfcheck_data_stamp"  # on `flask.g`: this request's data stamp, read once
RETRO_GROUP = group_of((FormKind.RETRO,))


def _stamp() -> tuple[object, ...]:
    """The data stamp (dashboard.data_stamp) read once per request: the view's two checks
    (its selection and tables, its figures) key their memory by it. Nothing they write
    (export_log, export_selection) changes it."""
    stamp: tuple[object, ...] | None = g.get(STAMP_KEY)
    if stamp is None:
        stamp = data_stamp(get_session())
        setattr(g, STAMP_KEY, stamp)
    return stamp


def guard_view_here(filters: EvaluationFilters) -> frozenset[str]:
    """Before aggregates of `filters` are shown: refused (ScopeError 422) when they differ
    from an earlier selection of this evaluator by fewer than k people, else remembered
    (evaluation/differencing.py). Returns the sub-groups (`GROUPS`) whose tables must be
    withheld from this view (differencing.guard_tables); the rest is shown. Commits: a
    selection shown is a release."""
    session = get_session()
    user = evaluator()
    checked = current_app.extensions.setdefault(CHECKED_KEY, Checked())
    key = (user.id, k_threshold(), _selection(filters), _stamp())
    known = checked.get(key)
    if known is not None:
        return frozenset(known)
    secret = str(current_app.secret_key)
    try:
        # The selection's ids read and hashed once, for both checks.
        found = Hashed(Hasher(secret, user.id), read_selection(session, filters))
        guard_view(session, user, filters, k_threshold(), secret, found)
        refused = guard_tables(session, user, filters, GROUPS, k_threshold(), secret, found)
    except ScopeError:
        session.rollback()
        raise
    session.commit()
    checked.add(key, refused)
    return refused


def withheld_message(k: int) -> str:
    """Said in place of a table withheld by `guard_view_here` (and of its CSV)."""
    message: str = gettext(
        "Ce tableau n'est pas affiché : les personnes dont il parle diffèrent de moins de "
        "%(k)s personnes de celles du même tableau dans une sélection que vous avez déjà "
        "consultée, et les comparer permettrait de les reconnaître. Élargissez la période, "
        "ou reprenez la même sélection qu'avant.",
        k=k,
    )
    return message


def guard_figures_here(filters: EvaluationFilters, groups: dict[str, frozenset[int]]) -> bool:
    """Whether figures about sub-groups of the selection (`groups`: figure -> people) may be
    shown: False when one of them differs from the same figure of an earlier view of this
    evaluator by fewer than k people (differencing.guard_figures). Commits what it remembers.
    """
    session = get_session()
    user = evaluator()
    checked = current_app.extensions.setdefault(FIGURES_CHECKED_KEY, Checked())
    key = (user.id, k_threshold(), _selection(filters), _stamp())
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
