"""What every writer shares: the column specification and the writer protocol."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from selfcheck.questionnaire.answer_types import ExportKind


class Missing(enum.Enum):
    """Why a cell has no value, when it is not simply "not asked" (None).

    The value is the code written in every format: user-missing values in .sav, extended
    missing values in .dta (`.a`, `.b`), `missingValues` in datapackage.json. A string cell
    gets the same code as text.
    """

    NO_ANSWER = -8  # asked, no answer given
    MASKED = -7  # masked for anonymity

    @property
    def text(self) -> str:
        return str(self.value)


Value = int | str | Missing | None
Row = Sequence[Value]


@dataclass(frozen=True)
class Column:
    """One column of an export: a valid Stata/SPSS name, a label, a kind, value labels.

    `width` is the largest string length in UTF-8 bytes (strings only); longer strings are cut.
    """

    name: str
    label: str
    kind: ExportKind = ExportKind.INT
    value_labels: tuple[tuple[int, str], ...] = ()
    width: int = 0


def truncate_utf8(text: str, limit: int) -> bytes:
    """`text` in UTF-8, cut to at most `limit` bytes without splitting a character."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return raw
    return raw[:limit].decode("utf-8", errors="ignore").encode("utf-8")


class Writer:
    """Writes one data file at `path`; subclasses implement the three steps."""

    extension: ClassVar[str] = ""
    media_type: ClassVar[str] = "application/octet-stream"

    def __init__(self, path: Path, columns: Sequence[Column], title: str) -> None:
        self.path = path
        self.columns = tuple(columns)
        self.title = title
        self.rows = 0

    def write(self, row: Row) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def prepare(self, value: Value) -> object:
        """One cell as `write_prepared` takes it. The export remembers a variable's prepared
        cells per distinct answer, so a writer's per-cell work done here is done once."""
        return value

    def write_prepared(self, row: Sequence[object]) -> None:
        """A row of cells that went through `prepare`."""
        self.write(row)  # type: ignore[arg-type]  # prepare is the identity here

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


# A spreadsheet reads a cell starting with one of these as a formula (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(text: str) -> str:
    """`text` as spreadsheet-safe text: a leading quote when it could start a formula.

    The missing codes ("-7", "-8") are numbers a spreadsheet reads as such: left as they are.
    """
    if text.startswith(FORMULA_STARTS) and text not in MISSING_TEXTS:
        return "'" + text
    return text


MISSING_TEXTS = frozenset(m.text for m in Missing)
