"""Small-cell protection of the dashboard's tables (disclosure.protect)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from selfcheck.evaluation.disclosure import Cell, Column, Hidden, Row, Table, protect

K = 5


def table(counts: list[int], additive: bool = True, base: int | None = None) -> Table:
    total = sum(counts) if base is None else base
    return Table(
        key="t",
        title="t",
        row_header="r",
        columns=(Column("people", "Personnes"),),
        rows=tuple(Row(str(i), str(i), (Cell(n, total),)) for i, n in enumerate(counts)),
        additive=additive,
    )


def column(t: Table) -> list[Cell]:
    return [row.cells[0] for row in t.rows]


def test_cells_under_k_are_hidden_without_their_number() -> None:
    protected = protect(table([40, 3, 0, 20, 2]), K)
    cells = column(protected)
    assert [c.hidden for c in cells] == [None, Hidden.SMALL, None, None, Hidden.SMALL]
    assert cells[1].count is None and cells[1].base is None and cells[1].share is None
    assert cells[2].count == 0  # zero describes nobody: shown
    assert protected.bases == (65,)
    assert protected.hidden_cells == 2


def test_a_single_hidden_cell_takes_the_smallest_other_with_it() -> None:
    cells = column(protect(table([40, 3, 12, 20]), K))
    assert [c.hidden for c in cells] == [None, Hidden.SMALL, Hidden.SECONDARY, None]
    assert [c.count for c in cells] == [40, None, None, 20]


def test_multiple_choice_columns_do_not_add_up_so_no_secondary() -> None:
    cells = column(protect(table([40, 3, 12], additive=False, base=50), K))
    assert [c.hidden for c in cells] == [None, Hidden.SMALL, None]


def test_a_base_under_k_hides_the_whole_column() -> None:
    protected = protect(table([2, 2, 0]), K)
    assert all(c.hidden is Hidden.SMALL_BASE for c in column(protected)[:2])
    assert protected.bases == (None,)


def test_a_cell_with_its_own_small_base_is_hidden() -> None:
    t = Table(
        key="t",
        title="t",
        row_header="r",
        columns=(Column("a", "a"),),
        rows=(Row("x", "x", (Cell(3, 4),)), Row("y", "y", (Cell(30, 40),))),
        base_per_cell=True,
        bases=(0,),
    )
    cells = column(protect(t, K))
    assert cells[0].hidden is Hidden.SMALL_BASE and cells[1].count == 30


@given(st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=8))
def test_no_visible_cell_under_k_and_never_exactly_one_hidden(counts: list[int]) -> None:
    cells = column(protect(table(counts), K))
    visible = [c.count for c in cells if c.hidden is None]
    assert all(n == 0 or n >= K for n in visible if n is not None)
    hidden = [c for c in cells if c.hidden is not None]
    if sum(counts) >= K:
        assert len(hidden) != 1  # else: total minus the others gives it back
    else:
        assert all(c.hidden is not None for c, n in zip(cells, counts, strict=True) if n)
