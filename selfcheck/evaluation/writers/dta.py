"""Stata .dta, format 118 (Stata 14 and later), written row by row.

Layout as documented in `help dta` (https://www.stata.com/help.cgi?dta): a header holding the
number of observations, a map of section offsets, the variable descriptors, the data (fixed
width rows) and the value labels. The observation count and the map are written as zeros
first and filled in by `close()`, which seeks back: the file must be a real file. Whole
numbers are `long` (missing is Stata's "."), strings `strN` (UTF-8, N bytes, cut if longer).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from selfcheck.evaluation.writers.base import Column, Missing, Row, Writer, truncate_utf8
from selfcheck.questionnaire.answer_types import ExportKind

TYPE_LONG = 65528
LONG_MISSING = 2147483621  # "."
# Extended missing values: .a (no answer), .b (masked for anonymity).
EXTENDED = {Missing.NO_ANSWER: LONG_MISSING + 1, Missing.MASKED: LONG_MISSING + 2}
EXTENDED_CODES = {missing.value: number for missing, number in EXTENDED.items()}
LONG_MAX = 2147483620
MAX_STR = 2045
NAME_BYTES = 129
FORMAT_BYTES = 57
LABEL_BYTES = 321
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _fixed(text: str, size: int) -> bytes:
    """Null-terminated, null-padded, cut to fit (one byte kept for the terminator)."""
    return truncate_utf8(text, size - 1).ljust(size, b"\0")


def _tag(name: str, body: bytes = b"") -> bytes:
    return f"<{name}>".encode() + body + f"</{name}>".encode()


class DtaWriter(Writer):
    extension: ClassVar[str] = "dta"
    media_type: ClassVar[str] = "application/x-stata-dta"

    def __init__(self, path: Path, columns: Sequence[Column], title: str) -> None:
        super().__init__(path, columns, title)
        self.widths = [min(max(c.width, 1), MAX_STR) for c in self.columns]
        self.file = path.open("w+b")
        self.map = [0] * 14
        self.file.write(b"<stata_dta><header>")
        self.file.write(_tag("release", b"118") + _tag("byteorder", b"LSF"))
        self.file.write(_tag("K", struct.pack("<H", len(self.columns))))
        self.file.write(b"<N>")
        self.n_offset = self.file.tell()
        self.file.write(struct.pack("<Q", 0) + b"</N>")
        label = truncate_utf8(title, 80)
        self.file.write(_tag("label", struct.pack("<H", len(label)) + label))
        now = datetime.now(UTC)
        stamp = f"{now.day:02d} {MONTHS[now.month - 1]} {now.year} {now:%H:%M}".encode()
        self.file.write(_tag("timestamp", struct.pack("<B", len(stamp)) + stamp) + b"</header>")
        self.map[1] = self.file.tell()
        self.file.write(_tag("map", b"\0" * (8 * 14)))
        self._section(2, "variable_types", self._types())
        self._section(3, "varnames", b"".join(_fixed(c.name, NAME_BYTES) for c in self.columns))
        self._section(4, "sortlist", b"\0\0" * (len(self.columns) + 1))
        self._section(5, "formats", b"".join(self._format(i) for i in range(len(self.columns))))
        self._section(
            6,
            "value_label_names",
            b"".join(_fixed(c.name if c.value_labels else "", NAME_BYTES) for c in self.columns),
        )
        self._section(
            7, "variable_labels", b"".join(_fixed(c.label, LABEL_BYTES) for c in self.columns)
        )
        self._section(8, "characteristics", b"")
        self.map[9] = self.file.tell()
        self.file.write(b"<data>")
        self.packers = [self._packer(i) for i in range(len(self.columns))]

    def _section(self, index: int, name: str, body: bytes) -> None:
        self.map[index] = self.file.tell()
        self.file.write(_tag(name, body))

    def _types(self) -> bytes:
        return b"".join(
            struct.pack("<H", TYPE_LONG if c.kind is ExportKind.INT else self.widths[i])
            for i, c in enumerate(self.columns)
        )

    def _format(self, index: int) -> bytes:
        column = self.columns[index]
        text = "%12.0g" if column.kind is ExportKind.INT else f"%-{min(self.widths[index], 244)}s"
        return _fixed(text, FORMAT_BYTES)

    def _packer(self, index: int) -> struct.Struct:
        if self.columns[index].kind is ExportKind.INT:
            return struct.Struct("<l")
        return struct.Struct(f"<{self.widths[index]}s")

    def write(self, row: Row) -> None:
        parts = []
        for index, value in enumerate(row):
            if self.columns[index].kind is ExportKind.INT:
                if isinstance(value, Missing):
                    number = EXTENDED[value]
                else:
                    number = LONG_MISSING if value is None else int(value)
                    if not -LONG_MAX <= number <= LONG_MAX:
                        number = LONG_MISSING
                parts.append(self.packers[index].pack(number))
            else:
                text = value.text if isinstance(value, Missing) else str(value or "")
                parts.append(self.packers[index].pack(truncate_utf8(text, self.widths[index])))
        self.file.write(b"".join(parts))
        self.rows += 1

    def close(self) -> None:
        self.file.write(b"</data>")
        self._section(10, "strls", b"")
        self.map[11] = self.file.tell()
        self.file.write(b"<value_labels>")
        for column in self.columns:
            if column.value_labels:
                self.file.write(self._label_table(column))
        self.file.write(b"</value_labels>")
        self.map[12] = self.file.tell()
        self.file.write(b"</stata_dta>")
        self.map[13] = self.file.tell()
        self.file.seek(self.n_offset)
        self.file.write(struct.pack("<Q", self.rows))
        self.file.seek(self.map[1] + len(b"<map>"))
        self.file.write(struct.pack("<14Q", *self.map))
        self.file.close()

    @staticmethod
    def _label_table(column: Column) -> bytes:
        offsets, values, text = [], [], b""
        for value, label in column.value_labels:
            offsets.append(len(text))
            values.append(EXTENDED_CODES.get(value, value))
            text += truncate_utf8(label, 32000) + b"\0"
        count = len(values)
        table = struct.pack(f"<ll{count}l{count}l", count, len(text), *offsets, *values) + text
        body = struct.pack("<l", len(table)) + _fixed(column.name, NAME_BYTES) + b"\0" * 3
        return _tag("lbl", body + table)
