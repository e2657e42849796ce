"""SPSS system file (.sav), uncompressed, written row by row.

Records as in the PSPP documentation of the system file format: the file header (its case
count is -1, then filled in by `close()`), one variable record per 8-byte segment, value
labels (records 3 and 4), machine information (7.3, 7.4), long variable names (7.13, since
short names are 8 bytes), the UTF-8 character encoding (7.20), the end of the dictionary
(999), then the cases. Numbers are doubles (system-missing is -DBL_MAX); strings are padded
with spaces to 8-byte segments. Strings are cut at 255 bytes (no very long strings): free
text longer than that is cut in .sav files only, as the codebook says.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from selfcheck.evaluation.writers.base import Column, Missing, Row, Writer, truncate_utf8
from selfcheck.questionnaire.answer_types import ExportKind

SYSMIS = -sys.float_info.max
HIGHEST = sys.float_info.max
LOWEST = -1.7976931348623155e308  # the next double above SYSMIS
MAX_STR = 255
MAX_VAR_LABEL = 255
MAX_VALUE_LABEL = 120
FORMAT_F = 5
FORMAT_A = 1
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _format(kind: int, width: int, decimals: int = 0) -> int:
    return (kind << 16) | (width << 8) | decimals


def _padded(raw: bytes, multiple: int) -> bytes:
    return raw + b" " * (-len(raw) % multiple)


class SavWriter(Writer):
    extension: ClassVar[str] = "sav"
    media_type: ClassVar[str] = "application/x-spss-sav"

    def __init__(self, path: Path, columns: Sequence[Column], title: str) -> None:
        super().__init__(path, columns, title)
        self.widths = [min(max(c.width, 1), MAX_STR) for c in self.columns]
        self.segments = [
            1 if c.kind is ExportKind.INT else -(-self.widths[i] // 8)
            for i, c in enumerate(self.columns)
        ]
        self.file = path.open("w+b")
        self._header(sum(self.segments))
        short_names: list[str] = []
        dictionary_index: list[int] = []
        position = 1
        for index, column in enumerate(self.columns):
            short = f"V{index + 1:05d}"
            short_names.append(short)
            dictionary_index.append(position)
            self._variable(column, short, index)
            position += self.segments[index]
        for index, column in enumerate(self.columns):
            if column.value_labels and column.kind is ExportKind.INT:
                self._value_labels(column, dictionary_index[index])
        self._extension(3, 4, struct.pack("<8l", 1, 0, 0, -1, 1, 1, 2, 65001))
        self._extension(4, 8, struct.pack("<3d", SYSMIS, HIGHEST, LOWEST))
        long_names = "\t".join(
            f"{short}={column.name}"
            for short, column in zip(short_names, self.columns, strict=True)
        )
        self._extension(13, 1, long_names.encode("utf-8"))
        self._extension(20, 1, b"UTF-8")
        self.file.write(struct.pack("<ll", 999, 0))
        self.packers = [
            struct.Struct("<d")
            if c.kind is ExportKind.INT
            else struct.Struct(f"<{self.segments[i] * 8}s")
            for i, c in enumerate(self.columns)
        ]

    def _header(self, case_size: int) -> None:
        now = datetime.now(UTC)
        month = [
            "Jan",
            "Feb",
            "Mar",
            "Apr",
            "May",
            "Jun",
            "Jul",
            "Aug",
            "Sep",
            "Oct",
            "Nov",
            "Dec",
        ][now.month - 1]
        self.file.write(b"$FL2")
        self.file.write(b"@(#) SPSS DATA FILE selfcheck".ljust(60, b" "))
        self.file.write(struct.pack("<lllll", 2, case_size, 0, 0, -1))
        self.file.write(struct.pack("<d", 100.0))
        self.file.write(f"{now:%d} {month} {now:%y}".encode().ljust(9, b" "))
        self.file.write(f"{now:%H:%M:%S}".encode())
        self.file.write(truncate_utf8(self.title, 64).ljust(64, b" "))
        self.file.write(b"\0\0\0")

    def _variable(self, column: Column, short: str, index: int) -> None:
        if column.kind is ExportKind.INT:
            kind, fmt = 0, _format(FORMAT_F, 8)
        else:
            kind, fmt = self.widths[index], _format(FORMAT_A, self.widths[index])
        label = truncate_utf8(column.label, MAX_VAR_LABEL)
        # Numbers: the missing codes are user-missing (discrete values); strings: none.
        missing = [float(m.value) for m in Missing] if column.kind is ExportKind.INT else []
        record = struct.pack("<llllll", 2, kind, 1 if label else 0, len(missing), fmt, fmt)
        record += short.encode().ljust(8, b" ")
        if label:
            record += struct.pack("<l", len(label)) + label + b" " * (-len(label) % 4)
        record += b"".join(struct.pack("<d", value) for value in missing)
        self.file.write(record)
        for _ in range(self.segments[index] - 1):
            self.file.write(struct.pack("<llllll", 2, -1, 0, 0, 0, 0) + b" " * 8)

    def _value_labels(self, column: Column, dictionary_index: int) -> None:
        record = struct.pack("<ll", 3, len(column.value_labels))
        for value, label in column.value_labels:
            raw = truncate_utf8(label, MAX_VALUE_LABEL)
            record += struct.pack("<dB", float(value), len(raw)) + raw
            record += b" " * (-(len(raw) + 1) % 8)
        record += struct.pack("<lll", 4, 1, dictionary_index)
        self.file.write(record)

    def _extension(self, subtype: int, size: int, data: bytes) -> None:
        self.file.write(struct.pack("<llll", 7, subtype, size, len(data) // size) + data)

    def write(self, row: Row) -> None:
        parts = []
        for index, value in enumerate(row):
            if self.columns[index].kind is ExportKind.INT:
                number = SYSMIS if value is None else float(_number(value))
                parts.append(self.packers[index].pack(number))
            else:
                text = value.text if isinstance(value, Missing) else str(value or "")
                raw = truncate_utf8(text, self.widths[index])
                parts.append(self.packers[index].pack(_padded(raw, self.segments[index] * 8)))
        self.file.write(b"".join(parts))
        self.rows += 1

    def close(self) -> None:
        self.file.seek(80)
        self.file.write(struct.pack("<l", self.rows))
        self.file.close()


def _number(value: int | str | Missing) -> int | float:
    if isinstance(value, Missing):
        return value.value
    return float(value)
