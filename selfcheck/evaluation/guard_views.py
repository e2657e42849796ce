"""Every view of aggregates passes here first: differencing between an evaluator's views
(evaluation/differencing.py). A selection shown is a release, so it is committed here."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import current_app, g
from flask_babel import gettext

from selfcheck.evaluation import facts, figures_seal, retention
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
    Seal,
    cell_sums_of,
    forgetting_mark,
    guard_figures,
    guard_tables,
    guard_view,
    memory_stamp,
    patched_view,
    read_selection,
    sealed_view,
    selection_sums,
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
# On `flask.g`: the people of each selection checked in this request (the check counts them:
# the dashboard need not count them again), keyed by `_selection`.
PEOPLE_KEY = "selfcheck_people_checked"
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
    k = k_threshold()
    key = (user.id, k, _selection(filters), _stamp())
    known = checked.get(key)
    if isinstance(known, tuple):
        refused, people, paper = known
        _checked_people(filters, people, paper)
        return frozenset(refused)
    secret = str(current_app.secret_key)
    try:
        # The evaluator's forgetting mark, before anything of the selection is read.
        mark = forgetting_mark(session, user.id)
        # First the selection's cells (a few hundred rows of fact_cell): the same responses
        # as a view whose full check is sealed and still valid need no new check (issue 18).
        sums = cell_sums_of(session, filters)
        seal = Seal(sums, GROUPS) if sums is not None else None
        sealed = sealed_view(session, user, filters, k, secret, seal) if seal else None
        if sealed is not None:
            guard_view(session, user, filters, k, secret, sealed)
            refused = guard_tables(session, user, filters, GROUPS, k, secret, sealed)
            people, paper = sealed.people, sealed.paper
        else:
            cell_key = facts.session_cell_key(session)
            # After new answers inside the selection: its lines from those of the last full
            # check and the responses added since, the same as read in full (dash16).
            patched = (
                patched_view(session, user, filters, secret, seal.sums, GROUPS, cell_key)
                if seal is not None
                else None
            )
            found: Hashed
            if patched is not None:
                found, paper, newest = patched, patched.paper, patched.newest
            else:
                # The selection's ids read and hashed once, for both checks.
                selection = read_selection(session, filters)
                found = Hashed(Hasher(secret, user.id), selection)
                paper = selection.paper_people
                newest = int(selection.response.max()) if selection.response.size else 0
                if seal is not None and selection_sums(selection, cell_key) != seal.sums:
                    seal = None  # facts not up to date with the responses: nothing sealed
            found.forgotten = mark
            # The memory as both checks begin: what their seal is valid from (_seal).
            since = memory_stamp(session, user)
            row = guard_view(session, user, filters, k, secret, found)
            if seal is not None:
                seal = Seal(seal.sums, seal.groups, paper=paper, newest=newest, row=row)
            refused = guard_tables(
                session, user, filters, GROUPS, k, secret, found, seal=seal, since=since
            )
            people = found.people
    except ScopeError:
        session.rollback()
        raise
    session.commit()
    checked.add(key, (refused, people, paper))
    _checked_people(filters, people, paper)
    return refused


def _checked_people(filters: EvaluationFilters, people: int, paper: int | None) -> None:
    found: dict[tuple[object, ...], tuple[int, int | None]] = g.setdefault(PEOPLE_KEY, {})
    found[_selection(filters)] = (people, paper)


def checked_people(filters: EvaluationFilters) -> int | None:
    """The people of `filters` counted by this request's check (`guard_view_here`), if any."""
    found: dict[tuple[object, ...], tuple[int, int | None]] = g.get(PEOPLE_KEY, {})
    counted = found.get(_selection(filters))
    return None if counted is None else counted[0]


def checked_paper(filters: EvaluationFilters) -> int | None:
    """The people of `filters` with a paper response, counted by this request's check (or
    kept with its sealed verdict), if any: the headline need not count them again."""
    found: dict[tuple[object, ...], tuple[int, int | None]] = g.get(PEOPLE_KEY, {})
    counted = found.get(_selection(filters))
    return None if counted is None else counted[1]


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


def guard_figures_here(
    filters: EvaluationFilters,
    counted: retention.Counted,
    load: Callable[[], retention.Followed | None],
) -> retention.Followed | retention.Counted | None:
    """The follow-up figures to show (None: withheld): None when one of their groups differs
    from the same figure's group in an earlier view of this evaluator by fewer than k people
    (differencing.guard_figures). `counted`: the figures and their groups' digests from the
    cells (retention.count); when a full check already passed on groups of the same digests
    and is still valid (figures_seal.sealed), they are shown as they are, else the groups are
    read (`load`: retention.load) and checked, and the figures shown are those of the people
    checked. Commits what it remembers (and the seal of a check that passed)."""
    session = get_session()
    user = evaluator()
    k = k_threshold()
    secret = str(current_app.secret_key)
    checked = current_app.extensions.setdefault(FIGURES_CHECKED_KEY, Checked())
    # The groups' digests are in the key: the groups depend on the day as well as on the data
    # (who is due a follow-up), and the data stamp moves only with the data.
    key = (user.id, k, _selection(filters), _stamp(), tuple(sorted(counted.digests.items())))
    if key in checked:
        return counted
    if figures_seal.sealed(session, user, filters, k, secret, counted.digests):
        checked.add(key)
        return counted
    mark = forgetting_mark(session, user.id)  # before the groups are read
    followed = load() or retention.Followed({}, {}, frozenset(), frozenset())
    definition = current_app.extensions["selfcheck.definition"]
    groups = retention.figure_groups(followed, definition)
    before = figures_seal.snapshot(session, user)
    if not guard_figures(session, user, filters, groups, k, secret, mark):
        session.rollback()
        return None
    same = (
        retention.digests_of(followed, definition, facts.session_cell_key(session))
        == counted.digests
    )
    if same:  # the cells hold the people checked: the next views of them need no check
        figures_seal.seal(session, user, filters, k, secret, counted.digests, before)
    session.commit()
    if same:
        checked.add(key)
    return followed
