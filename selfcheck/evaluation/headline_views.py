"""The dashboard's pages (issue 14): headline figures, one page per part, the task table, the
paired change with its uncertainty, and the CSV of each of their tables.

Registered on the evaluator blueprint by `register` (views.py). Each part of the dashboard is
its own page (`/evaluate/people`, `/evaluate/path`, ...), so no page is much longer than a few
screens; every page shows the filter form and the contents list.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

from flask import Blueprint, Response, current_app, render_template
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from selfcheck.accounts.permissions import Permission, requires
from selfcheck.evaluation import charts, headline, paired, tasks_table
from selfcheck.evaluation.dashboard import (
    PATH_FORMS,
    PROFILE_FORMS,
    Dashboard,
    build_dashboard,
    group_of,
    withhold,
)
from selfcheck.evaluation.disclosure import Hidden
from selfcheck.evaluation.first_view import announced
from selfcheck.evaluation.guard_views import (
    PAIRS_GROUP,
    RETRO_GROUP,
    guard_view_here,
    withheld_message,
)
from selfcheck.evaluation.scope import (
    EvaluationFilters,
    ScopeError,
    require_at_least_k,
    require_complement_at_least_k,
)
from selfcheck.evaluation.view_support import (
    current_filters,
    evaluator,
    filter_form_context,
    k_threshold,
    render_scope_error,
)
from selfcheck.platform.db import get_session
from selfcheck.platform.models import ExportLog
from selfcheck.questionnaire.model import Definition, FormKind

# The dashboard's parts, each on its own page: (URL and endpoint suffix, section key). The
# sections "profile", "path" and "evolution" are long: each is cut in two pages (PART_TABLES), whose
# titles say which half they show (PART_TITLES).
PARTS: tuple[tuple[str, str], ...] = (
    ("people", "profile"),
    ("equipment", "profile"),
    ("path", "path"),
    ("sessions", "path"),
    ("evolution", "evolution"),
    ("progress", "evolution"),
    ("profiles", "typology"),
    ("quality", "quality"),
)
PART_TABLES: dict[str, frozenset[str]] = {
    "people": frozenset({"age", "gender", "diploma", "status", "area"}),
    "equipment": frozenset({"internet_home", "devices", "device_use"}),
    "path": frozenset({"reasons", "prescribed", "modality"}),
    "sessions": frozenset({"sessions", "session_length", "topics"}),
    "evolution": frozenset({"comfort", "comfort_change", "competences"}),
    "progress": frozenset(
        {"new_things", "new_things_which", "progress_felt", "progress"}
        | {"progress_domains", "changes"}
    ),
}
PART_TITLES: dict[str, object] = {
    "people": _l("Les personnes qui ont répondu"),
    "equipment": _l("Leur équipement"),
    "path": _l("Leur accompagnement : raisons et modalités"),
    "sessions": _l("Leur accompagnement : séances et sujets"),
    "evolution": _l("Ce qui a changé : aisance et compétences"),
    "progress": _l("Ce qui a changé : progrès ressentis"),
}
PART_TEMPLATE = "evaluator/part.html"
TASKS_TEMPLATE = "evaluator/tasks.html"
CHANGE_TEMPLATE = "evaluator/change.html"
FIGURES = ("headline", "tasks_pairs", "tasks_retro", "change_pairs", "change_retro")
METHOD_NAMES = {
    "wilcoxon_exact": _l("Wilcoxon, exact"),
    "wilcoxon_asymptotic": _l("Wilcoxon"),
    "mcnemar_exact": _l("McNemar, exact"),
    "mcnemar_asymptotic": _l("McNemar"),
}
UNKNOWN_FIGURE = _l("Ce tableau n'existe pas. Choisissez un tableau depuis le tableau de bord.")


def _definition() -> Definition:
    definition: Definition = current_app.extensions["selfcheck.definition"]
    return definition


def checked_filters() -> tuple[EvaluationFilters, frozenset[str]]:
    """This request's filters, with at least k people in it and in its complement, and the
    sub-groups whose tables are withheld from this view (guard_views.guard_view_here)."""
    filters = current_filters()
    session = get_session()
    require_complement_at_least_k(session, evaluator(), filters, k_threshold())
    require_at_least_k(session, filters, k_threshold())
    return filters, guard_view_here(filters)


def board_of(filters: EvaluationFilters, refused: frozenset[str] = frozenset()) -> Dashboard:
    """The dashboard's tables (no cache: they are sums over the maintained facts, as in
    views.py), without those withheld (`refused` sub-groups: dashboard.withhold)."""
    return withhold(build_dashboard(get_session(), _definition(), filters, k_threshold()), refused)


# The paired tables of the task and change pages, by the sub-group each reads.
PAIRED_GROUPS = {
    "tasks_pairs": PAIRS_GROUP,
    "tasks_retro": RETRO_GROUP,
    "change_pairs": PAIRS_GROUP,
    "change_retro": RETRO_GROUP,
}


def withheld_tables(refused: frozenset[str]) -> frozenset[str]:
    """The paired tables (`PAIRED_GROUPS`) withheld from this view."""
    return frozenset(key for key, group in PAIRED_GROUPS.items() if group in refused)


def contents() -> tuple[tuple[str, object], ...]:
    """The dashboard's pages in reading order: (endpoint, title)."""
    from selfcheck.evaluation.dashboard import SECTIONS

    titles = {key: title for key, title, _intro in SECTIONS}
    return (
        ("evaluator.dashboard", _l("L'essentiel")),
        *(
            (f"evaluator.part_{slug}", PART_TITLES.get(slug, titles[section]))
            for slug, section in PARTS
        ),
        ("evaluator.tasks", _l("Les tâches, avant et après")),
        ("evaluator.change", _l("Évolution et incertitude")),
    )


def overview_context(
    filters: EvaluationFilters,
    refused: frozenset[str] = frozenset(),
    people: int | None = None,
    paper: int | None = None,
) -> dict[str, object]:
    """What the dashboard's first page adds: the headline figures (those of a `refused`
    sub-group withheld: `guarded_headline`). `people`: the people in scope, when counted
    already (the dashboard's tables count them: one COUNT(DISTINCT) less); `paper`: those
    with a paper form, when counted already (the differencing check: one more less)."""
    k = k_threshold()
    changes, _pairs, _retro = paired.changes(get_session(), _definition(), filters, k)
    found = headline.build_headline(
        get_session(), _definition(), filters, k, changes, people=people, paper=paper
    )
    return {
        "headline": guarded_headline(found, refused),
        "withheld_figures_text": withheld_figures_message(k),
        "contents": contents(),
    }


# The sub-group each headline figure reads (its people: the forms of its share, or the pairs).
HEADLINE_GROUPS: dict[str, str] = {
    "pairs": group_of((FormKind.BEFORE,)),
    **dict.fromkeys(
        ("aged_60_plus", "women", "below_bac", "internet_at_home", "switch_device"),
        group_of(PROFILE_FORMS),
    ),
    **dict.fromkeys(
        ("procedures_among_topics", "procedures_only_topic", "new_things", "progress"),
        group_of(PATH_FORMS),
    ),
    "at_ease": PAIRS_GROUP,
}


def guarded_headline(found: headline.Headline, refused: frozenset[str]) -> headline.Headline:
    """The headline without the figures of a refused sub-group (guard_views.guard_view_here):
    nothing of them is kept (no count, base, interval or change)."""
    withheld = {key for key, group in HEADLINE_GROUPS.items() if group in refused}
    if not withheld:
        return found
    figures = tuple(
        replace(figure, count=None, base=None, hidden=Hidden.WITHHELD, interval=None, change=None)
        if figure.key in withheld
        else figure
        for figure in found.figures
    )
    return replace(found, figures=figures)


def withheld_figures_message(k: int) -> str:
    message: str = gettext(
        "Les chiffres marqués « non affiché » ne sont pas donnés : les personnes dont ils "
        "parlent diffèrent de moins de %(k)s personnes de celles d'une sélection que vous avez "
        "déjà consultée, et les comparer permettrait de les reconnaître. Élargissez la "
        "période, ou reprenez la même sélection qu'avant.",
        k=k,
    )
    return message


def _on_page(slug: str, section: str, table: str) -> bool:
    """Whether a table of a cut section is on this page: its own tables, and on the section's
    last page any table no page names (a table added later is never lost)."""
    if table in PART_TABLES[slug]:
        return True
    pages = [page for page, key in PARTS if key == section]
    named = set().union(*(PART_TABLES.get(page, frozenset()) for page in pages))
    return slug == pages[-1] and table not in named


def _part_view(slug: str, section: str) -> Callable[[], str | tuple[str, int]]:
    def view() -> str | tuple[str, int]:
        k = k_threshold()
        try:
            filters, refused = checked_filters()
            board = board_of(filters, refused)
        except ScopeError as error:
            return render_scope_error(PART_TEMPLATE, error, contents=contents())
        found = next((s for s in board.sections if s.key == section), None)
        if found is not None and slug in PART_TABLES:
            found = replace(
                found,
                title=PART_TITLES[slug],
                tables=tuple(t for t in found.tables if _on_page(slug, section, t.key)),
            )
        return render_template(
            PART_TEMPLATE,
            filters=filters,
            board=board,
            section=found,
            contents=contents(),
            chart_of=lambda table: charts.bar_chart(table, k),
            withheld_text=withheld_message(k),
            **filter_form_context(),
        )

    view.__name__ = f"part_{slug}"
    return view


def tasks() -> str | tuple[str, int]:
    k = k_threshold()
    try:
        filters, refused = checked_filters()
    except ScopeError as error:
        return render_scope_error(TASKS_TEMPLATE, error, contents=contents())
    _changes, pairs, retro = paired.changes(get_session(), _definition(), filters, k)
    withheld = withheld_tables(refused)
    return render_template(
        TASKS_TEMPLATE,
        filters=filters,
        tables=[
            replace(table, rows=()) if table.key in withheld else table
            for table in tasks_table.task_tables(_definition(), pairs, retro, k)
        ],
        withheld=withheld,
        withheld_text=withheld_message(k),
        k=k,
        contents=contents(),
        **filter_form_context(),
    )


def change() -> str | tuple[str, int]:
    k = k_threshold()
    try:
        filters, refused = checked_filters()
    except ScopeError as error:
        return render_scope_error(CHANGE_TEMPLATE, error, contents=contents())
    changes, _pairs, _retro = paired.changes(get_session(), _definition(), filters, k)
    withheld = withheld_tables(refused)
    return render_template(
        CHANGE_TEMPLATE,
        filters=filters,
        changes=replace(
            changes,
            pairs=() if "change_pairs" in withheld else changes.pairs,
            retro=() if "change_retro" in withheld else changes.retro,
        ),
        withheld=withheld,
        withheld_text=withheld_message(k),
        k=k,
        method_names=METHOD_NAMES,
        contents=contents(),
        **filter_form_context(),
    )


def figure_download(figure: str) -> Response | tuple[str, int]:
    """One of the new tables as CSV (the same protected cells as on screen), logged."""
    k = k_threshold()
    if figure not in FIGURES:
        return render_scope_error(
            CHANGE_TEMPLATE, ScopeError(UNKNOWN_FIGURE, 404), contents=contents()
        )
    try:
        filters, refused = checked_filters()
        if figure in withheld_tables(refused):  # nothing of a withheld table is released
            raise ScopeError(withheld_message(k), 422)
    except ScopeError as error:
        return render_scope_error(CHANGE_TEMPLATE, error, contents=contents())
    session = get_session()
    definition = _definition()
    changes, pairs, retro = paired.changes(session, definition, filters, k)
    if figure == "headline":
        found = headline.build_headline(session, definition, filters, k, changes)
        found = guarded_headline(found, refused)
        body, rows = headline.headline_csv(found), len(found.figures)
    elif figure.startswith("tasks_"):
        by_key = {t.key: t for t in tasks_table.task_tables(definition, pairs, retro, k)}
        body, rows = tasks_table.task_csv(by_key[figure]), len(by_key[figure].rows)
    else:
        chosen = changes.pairs if figure == "change_pairs" else changes.retro
        body, rows = paired.changes_csv(chosen, k), len(chosen)
    session.add(
        ExportLog(
            user_id=evaluator().id,
            kind="table",
            filters=json.dumps(filters.as_dict()),
            row_count=rows,
            k=k,
            report=json.dumps({"table": figure}),
        )
    )
    session.commit()
    return Response(
        "\ufeff" + body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="selfcheck-{figure}.csv"'},
    )


def register(blueprint: Blueprint) -> None:
    """Add the dashboard's pages to the evaluator blueprint."""
    guard = requires(Permission.EVALUATE)
    for slug, section in PARTS:
        view = announced(_part_view(slug, section))
        blueprint.add_url_rule(f"/{slug}", f"part_{slug}", guard(view))
    blueprint.add_url_rule("/tasks", "tasks", guard(announced(tasks)))
    blueprint.add_url_rule("/change", "change", guard(announced(change)))
    blueprint.add_url_rule("/figures/<figure>.csv", "figure_download", guard(figure_download))
