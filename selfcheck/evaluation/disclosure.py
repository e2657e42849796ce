"""Aggregate tables and their small-cell protection (k-anonymity of published counts).

Every table of the dashboard (on screen and in CSV) is a `Table` of `Cell`s, each a count of
people (or forms) over a base (the denominator of its share). `protect` hides, before anything
is shown or written:

1. primary suppression: every cell whose count is between 1 and k - 1, and every cell whose
   base is under k (a share over 3 people tells too much);
2. secondary suppression: in a column whose rows add up to its published base (a single
   choice: each person is in exactly one row), a single hidden cell could be recomputed as
   base minus the others, so the smallest other non-zero cell is hidden too;
3. a base under k hides its whole column, base included.

Zero stays visible (nobody is described by it). Hidden cells keep no number at all: the
count is dropped from the object, so no template or CSV writer can leak it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace


def is_small(count: int, k: int) -> bool:
    """A count that would describe fewer than k people: from 1 to k - 1 (zero describes nobody)."""
    return 0 < count < k


def any_small(counts: Sequence[int], k: int) -> bool:
    return any(is_small(count, k) for count in counts)


class Hidden(enum.StrEnum):
    SMALL = "small"  # fewer than k (primary)
    SECONDARY = "secondary"  # could have been recomputed from the total
    SMALL_BASE = "small_base"  # the base itself is under k
    # Its people differ from those of the same figure in an earlier view of the evaluator by
    # 1 to k - 1 (differencing.guard_tables): not shown at all.
    WITHHELD = "withheld"


def shown_share(count: int | None, base: int | None, hidden: Hidden | None) -> float | None:
    """Percentage of the base (None when hidden or when the base is zero)."""
    if hidden is not None or count is None or not base:
        return None
    return 100.0 * count / base


@dataclass(frozen=True)
class Cell:
    count: int | None  # None once hidden
    base: int | None  # the denominator of the share; None once hidden
    hidden: Hidden | None = None

    @property
    def share(self) -> float | None:
        return shown_share(self.count, self.base, self.hidden)


@dataclass(frozen=True)
class Row:
    key: str
    label: object
    cells: tuple[Cell, ...]
    reference: float | None = None  # the reference survey's share, when there is one


@dataclass(frozen=True)
class Column:
    key: str
    label: object


@dataclass(frozen=True)
class Table:
    """One aggregate table. `additive`: in each column the rows add up to the base."""

    key: str
    title: object
    row_header: object
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    additive: bool = False
    note: object | None = None
    # True when each cell has its own base (shown in the cell), not one base per column.
    base_per_cell: bool = False
    bases: tuple[int | None, ...] = ()  # per column, None once hidden
    unit: str = "people"  # or "forms", "fields": what the counts count
    reference_label: object | None = None
    hidden_cells: int = field(default=0)

    @property
    def has_reference(self) -> bool:
        return any(row.reference is not None for row in self.rows)


def column_bases(rows: Sequence[Row], columns: int) -> tuple[int, ...]:
    """Each column's base, read from its first cell (all cells of a column share it)."""
    bases = []
    for index in range(columns):
        cell = rows[0].cells[index] if rows else None
        bases.append(cell.base or 0 if cell is not None else 0)
    return tuple(bases)


def _hide(cell: Cell, why: Hidden) -> Cell:
    return Cell(count=None, base=None, hidden=why)


def protect(table: Table, k: int) -> Table:
    """The table with every cell under k hidden, plus secondary suppression (see module)."""
    grid = [list(row.cells) for row in table.rows]
    raw_bases = table.bases or column_bases(table.rows, len(table.columns))
    bases: list[int | None] = list(raw_bases)
    for c in range(len(table.columns)):
        base = raw_bases[c] if c < len(raw_bases) else None
        small_base = base is not None and is_small(base, k)
        if small_base:
            bases[c] = None
        for row in grid:
            cell = row[c]
            if cell.hidden is not None or cell.count is None:
                continue
            if small_base or (cell.base is not None and is_small(cell.base, k)):
                row[c] = _hide(cell, Hidden.SMALL_BASE)
            elif is_small(cell.count, k):
                row[c] = _hide(cell, Hidden.SMALL)
        if table.additive and not small_base:
            _secondary(grid, c)
    hidden = sum(1 for row in grid for cell in row if cell.hidden is not None)
    rows = tuple(replace(row, cells=tuple(grid[i])) for i, row in enumerate(table.rows))
    return replace(table, rows=rows, bases=tuple(bases), hidden_cells=hidden)


def _secondary(grid: list[list[Cell]], column: int) -> None:
    """While exactly one cell of the column is hidden, hide the smallest visible non-zero one."""
    while True:
        hidden = [row[column] for row in grid if row[column].hidden is not None]
        visible = [
            (row[column].count or 0, index)
            for index, row in enumerate(grid)
            if row[column].hidden is None and (row[column].count or 0) > 0
        ]
        if len(hidden) != 1 or not visible:
            return
        _count, index = min(visible)
        grid[index][column] = _hide(grid[index][column], Hidden.SECONDARY)


def distribution(
    counts: Mapping[str, int],
    options: Sequence[tuple[str, object]],
    base: int | None = None,
) -> tuple[list[tuple[str, object, int]], int]:
    """Rows (code, label, count) in option order and the base (sum of rows by default)."""
    rows = [(code, label, int(counts.get(code, 0))) for code, label in options]
    return rows, base if base is not None else sum(count for _c, _l, count in rows)
