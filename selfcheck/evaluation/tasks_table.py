"""The task table: for each task, the share of people at each rung before and after.

Built from `paired.matrices` (one before x after matrix per task): among the people who placed
the task on the autonomy ladder both times ("does not concern me" and blanks left out), the
share at each rung before, at each rung after, and how many went up, stayed, went down a rung
or more. Pairs (the same people's 'before' and 'after' forms) and retrospective forms (one form
saying "before" and "today", perceived change) are two separate tables, never added up.

Each group of cells that adds up to n (the rungs before, the rungs after, up/same/down) is
protected like a dashboard column (`disclosure.protect`): a count from 1 to k - 1 is hidden,
and so is the next smallest of its group; under k people, the whole task is hidden.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from selfcheck.evaluation import paired
from selfcheck.evaluation.dashboard import cell_text, legend_rows, share_text
from selfcheck.evaluation.disclosure import Cell, Column, Row, Table, protect
from selfcheck.questionnaire.model import Definition, Option

SOURCES: tuple[tuple[str, object], ...] = (
    ("pairs", _l("Départ et fin : les mêmes personnes")),
    ("retro", _l("Rétrospectif : avant et aujourd'hui dits en une fois")),
)


@dataclass(frozen=True)
class TaskRow:
    code: str  # the item code (shown only in the CSV, like the dashboard's option codes)
    label: str
    competence: str
    n: int | None  # people who placed the task on the ladder both times; None when hidden
    before: tuple[Cell, ...]  # one per rung, lowest first
    after: tuple[Cell, ...]
    moves: tuple[Cell, ...]  # up, same, down


@dataclass(frozen=True)
class TaskTable:
    key: str  # "tasks_pairs" or "tasks_retro": the CSV's name
    title: object
    rungs: tuple[str, ...]  # the rungs' short labels, lowest first
    rows: tuple[TaskRow, ...]
    k: int

    @property
    def hidden_cells(self) -> int:
        return sum(
            1
            for row in self.rows
            for cell in (*row.before, *row.after, *row.moves)
            if cell.hidden is not None
        )


def protect_group(counts: Sequence[int], n: int, k: int) -> tuple[Cell, ...]:
    """Cells that add up to n, protected as one additive column of the dashboard."""
    table = Table(
        key="group",
        title="",
        row_header="",
        columns=(Column("n", ""),),
        rows=tuple(Row(str(i), "", (Cell(count, n),)) for i, count in enumerate(counts)),
        additive=True,
        bases=(n,),
    )
    return tuple(row.cells[0] for row in protect(table, k).rows)


def _rungs(definition: Definition) -> tuple[Option, ...]:
    tasks = definition.task_items()
    if not tasks:
        return ()
    return tuple(sorted((o for o in tasks[0].options if o.rank is not None), key=_rank))


def _rank(option: Option) -> int:
    return option.rank or 0


def task_table(
    definition: Definition, matrices: paired.Matrices, key: str, title: object, k: int
) -> TaskTable:
    rungs = _rungs(definition)
    competences = definition.competences
    rows = []
    for item in definition.task_items():
        ranks = paired.ranked(matrices.by_item.get(item.code, {}), item)
        n = sum(ranks.values())
        before = [sum(v for (b, _a), v in ranks.items() if b == o.rank) for o in rungs]
        after = [sum(v for (_b, a), v in ranks.items() if a == o.rank) for o in rungs]
        up = sum(v for (b, a), v in ranks.items() if a > b)
        down = sum(v for (b, a), v in ranks.items() if a < b)
        competence = competences.get(item.competence or "")
        rows.append(
            TaskRow(
                code=item.code,
                label=gettext(item.label),
                competence=gettext(competence.label) if competence else "",
                n=n if n >= k else None,
                before=protect_group(before, n, k),
                after=protect_group(after, n, k),
                moves=protect_group([up, n - up - down, down], n, k),
            )
        )
    return TaskTable(
        key=key,
        title=title,
        rungs=tuple(gettext(o.label_short or o.label) for o in rungs),
        rows=tuple(rows),
        k=k,
    )


def task_tables(
    definition: Definition, pairs: paired.Matrices, retro: paired.Matrices, k: int
) -> tuple[TaskTable, TaskTable]:
    (pairs_key, pairs_title), (retro_key, retro_title) = SOURCES
    return (
        task_table(definition, pairs, f"tasks_{pairs_key}", pairs_title, k),
        task_table(definition, retro, f"tasks_{retro_key}", retro_title, k),
    )


def task_csv(table: TaskTable) -> str:
    """The protected task table as CSV: counts and shares, the same cells as on screen."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = [gettext("code"), gettext("Tâche"), gettext("Type de compétence"), gettext("Base")]
    for when in (gettext("Avant"), gettext("Après")):
        for rung in table.rungs:
            header += [
                gettext("%(when)s, %(rung)s : nombre", when=when, rung=rung),
                gettext("%(when)s, %(rung)s : %%", when=when, rung=rung),
            ]
    for move in (gettext("En progrès"), gettext("Au même niveau"), gettext("En recul")):
        header += [
            gettext("%(column)s : nombre", column=move),
            gettext("%(column)s : %%", column=move),
        ]
    writer.writerow(header)
    k = table.k
    for row in table.rows:
        line = [row.code, row.label, row.competence, f"< {k}" if row.n is None else str(row.n)]
        for cell in (*row.before, *row.after, *row.moves):
            line += [cell_text(cell, k), share_text(cell)]
        writer.writerow(line)
    writer.writerows(legend_rows(k))
    return out.getvalue()
