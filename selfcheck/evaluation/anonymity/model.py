"""What the anonymity engine takes and gives: quasi-identifier specs, the release, its report.

No Flask, no database: plain records in, plain records out.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, overload


class Masked:
    """The value of a cell masked for anonymity (one instance: `MASKED`).

    Distinct from None, which the engine reads as "no value" (not asked, no answer): the
    export gives the two different missing codes.
    """

    _instance: Masked | None = None

    def __new__(cls) -> Masked:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MASKED"

    def __reduce__(self) -> str:
        return "MASKED"


MASKED: Final = Masked()

Value = Hashable


class Columns(Sequence[Mapping[str, Any]]):
    """Records kept by column: `columns[name][i]` is record i's value of `name`.

    The same records as a list of dicts (`records[i]` gives record i as a dict; a column not
    held reads as None, as `get` would), for a caller that builds many records: one list per
    column rather than one dict per record (about a fifth of the memory), and the engine
    reads its columns as they are instead of gathering them record by record."""

    def __init__(self, columns: Mapping[str, Sequence[Any]], size: int) -> None:
        for name, values in columns.items():
            if len(values) != size:
                raise ValueError(f"{name}: {len(values)} values for {size} records")
        self.columns = dict(columns)
        self.size = size

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.size))]
        if not -self.size <= index < self.size:
            raise IndexError(index)
        return {name: values[index] for name, values in self.columns.items()}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self[i] for i in range(self.size))

    def column(self, name: str) -> Sequence[Any]:
        """The values of `name`, record by record (None for each when not held)."""
        values = self.columns.get(name)
        return values if values is not None else (None,) * self.size


# One rung of a ladder: a function or a mapping from the RAW value to a coarser value.
Level = Callable[[Any], Any] | Mapping[Any, Any]


@dataclass(frozen=True)
class QuasiIdentifier:
    """A column that can single someone out, and how it may be coarsened.

    `ladder` lists the levels above the raw value (level 0), each applied to the raw value
    (not to the previous level) and each coarser than the one before; the engine adds the
    last level itself: every cell masked. None (no value) is never passed to a level: it
    stays None, a value of its own, until the column is masked. `weight` is the analysis
    focus: a column of weight 5 costs five times as much to coarsen or mask as one of
    weight 1, so it is kept finer at the others' expense. `names` optionally names the
    levels above the raw one (for the report), in the order of `ladder`.

    `fixed`: the column cannot be coarsened nor masked because the release shows it anyway
    (the forms present show in which forms have answers). It is a stratum: every released
    group of k lies within one of its values, and a person whose value is shared by fewer
    than k is left out. Its ladder and weight are unused.

    `whole`: False (the default) lets the search mask the column for everyone (its last
    level) like any other; True keeps that last level for the release of last resort only
    (every column masked), so that a column the evaluator needs for everyone (a
    demographic) is masked cell by cell, for the few people of the suppression limit,
    rather than for all: then the limit bounds the people who lose a value of it.
    """

    column: str
    ladder: Sequence[Level] = ()
    weight: float = 1.0
    names: Sequence[str] = ()
    fixed: bool = False
    whole: bool = False

    def __post_init__(self) -> None:
        if not self.column:
            raise ValueError("a quasi-identifier needs a column name")
        if not self.weight > 0:
            raise ValueError(f"{self.column}: the weight must be positive, not {self.weight}")
        if self.names and len(self.names) != len(self.ladder):
            raise ValueError(f"{self.column}: one name per level of the ladder")

    def apply(self, level: int, value: Any) -> Any:
        """The value at ladder `level` (0 = raw; len(ladder) + 1 = masked)."""
        if self.fixed and level:
            raise ValueError(f"{self.column}: a fixed column is released as it is")
        if level == 0 or value is None:
            return MASKED if level > len(self.ladder) else value
        if level > len(self.ladder):
            return MASKED
        rung = self.ladder[level - 1]
        if isinstance(rung, Mapping):
            try:
                return rung[value]
            except KeyError:
                raise ValueError(
                    f"{self.column}: level {level} of the ladder has no value for {value!r}"
                ) from None
        return rung(value)

    def level_name(self, level: int) -> str:
        if level == 0:
            return "raw"
        if level > len(self.ladder):
            return "masked"
        return self.names[level - 1] if self.names else f"level {level}"


@dataclass(frozen=True)
class CategoryShift:
    """One category of a released column: its share among known values, true and released,
    both over the people released (those left out are counted apart: `UtilityReport`)."""

    category: Any
    true_count: int
    true_share: float
    released_count: int
    released_share: float

    @property
    def shift(self) -> float:
        """Released share minus true share, in points (0-100)."""
        return 100.0 * (self.released_share - self.true_share)


@dataclass(frozen=True)
class ColumnReport:
    column: str
    level: int
    level_name: str
    constant: bool  # the same value for everyone: never generalised
    cells_masked: int  # among released records (all of them when the level is "masked")
    cells_masked_locally: int
    released: int
    # Per category at the chosen level, among known values (None and MASKED apart); empty
    # when the whole column is masked. Counts are given so that the caller can hold back
    # categories of fewer than k people before showing them.
    shares: tuple[CategoryShift, ...]

    @property
    def masked_share(self) -> float:
        return self.cells_masked / self.released if self.released else 0.0

    @property
    def largest_shift(self) -> float:
        """Largest absolute shift of a category's share, in points."""
        return max((abs(s.shift) for s in self.shares), default=0.0)


@dataclass(frozen=True)
class UtilityReport:
    k: int
    people: int
    released: int
    left_out: int
    loss: float  # weighted information loss, 0 (raw data) to 1 (nothing left)
    columns: tuple[ColumnReport, ...]
    nodes_evaluated: int  # groupings of every record made by the search
    # True: every node whose generalisation loss is below the loss released was visited.
    # False: the search stopped at its budget; the release is the best found, not a proof.
    exhaustive: bool

    def column(self, name: str) -> ColumnReport:
        return next(c for c in self.columns if c.column == name)


@dataclass(frozen=True)
class Release:
    """The records as released and how they were chosen.

    `records[i]` is a copy of input record `kept[i]`, its quasi-identifier cells generalised
    or `MASKED`; `left_out` lists the input indexes of the records not released at all.
    Released without rows (`anonymise(..., rows=False)`): `records` is empty and
    `columns[name][i]` is the released value of quasi-identifier `name` for record
    `kept[i]`.
    """

    k: int
    levels: Mapping[str, int]
    records: list[dict[str, Any]]
    kept: list[int]
    left_out: list[int]
    report: UtilityReport
    columns: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    # Released without rows, per column the engine generalised (not a constant one): a code
    # per released record (`codes[name][0][i]` for record `kept[i]`, a numpy array) and the
    # value of each code (`codes[name][1]`, MASKED last): `columns[name][i]` is
    # `codes[name][1][codes[name][0][i]]`, the same object for the same code.
    codes: Mapping[str, tuple[Any, Sequence[Any]]] = field(default_factory=dict)

    def people_with_any_masked(self, columns: Sequence[str]) -> int:
        """Released people with at least one of `columns` masked (people left out apart)."""
        return sum(1 for r in self.records if any(r.get(c) is MASKED for c in columns))
