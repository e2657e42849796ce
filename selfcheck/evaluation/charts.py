"""Geometry of the dashboard's bar charts (inline SVG, drawn by templates/evaluator/_chart.html).

Horizontal bars of shares (0-100 %), one group per row of the table, one bar per column. Every
bar carries its value as text at its end (direct labels), and each series has its own fill
pattern (solid, hatched, dotted, cross-hatched) shown in a legend: nothing relies on colour. A
hidden cell draws no bar and says "masqué" / "< k" where the value would be. The chart is
`role="img"` labelled by its title; the table that follows it holds the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext

from selfcheck.evaluation.disclosure import Hidden, Table

LABEL_HEIGHT = 18  # a line of a row label, above its bars
LABEL_LINE = 34  # characters on a line of a row label: wider ran out of the chart (round 23)
BAR_AREA = 330  # 100 % of the scale
VALUE_WIDTH = 90
BAR_HEIGHT = 16
BAR_GAP = 4
GROUP_GAP = 14
LEGEND_ROW = 22
PATTERNS = ("solid", "hatch", "dots", "cross", "grid")


@dataclass(frozen=True)
class Bar:
    y: float
    width: float
    pattern: str
    text: str


@dataclass(frozen=True)
class Group:
    y: float
    label: str
    bars: tuple[Bar, ...]
    lines: tuple[str, ...] = ()  # the label on one or two lines, as drawn


@dataclass(frozen=True)
class LegendEntry:
    y: float
    pattern: str
    label: str


@dataclass(frozen=True)
class Chart:
    id: str
    width: int
    height: float
    bar_area: int
    bar_height: int
    groups: tuple[Group, ...]
    legend: tuple[LegendEntry, ...]


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _lines(text: str, limit: int = LABEL_LINE) -> tuple[str, ...]:
    """A row label on at most two lines of about `limit` characters, cut between words: a
    longer one ran out of the chart's right edge (its left edge right to left), at any
    width, the chart scaling its text with it (round 23). The table below says it whole."""
    if len(text) <= limit:
        return (text,)
    cut = text.rfind(" ", 0, limit + 1)
    if cut <= 0:
        return (_short(text, limit),)
    return (text[:cut], _short(text[cut + 1 :], limit))


def bar_chart(table: Table, k: int) -> Chart:
    series: list[str] = [str(column.label) for column in table.columns]
    if table.has_reference:
        series.append(str(table.reference_label))
    legend = tuple(
        LegendEntry(i * LEGEND_ROW, PATTERNS[i % len(PATTERNS)], label)
        for i, label in enumerate(series)
    )
    top = len(legend) * LEGEND_ROW + 8 if len(series) > 1 else 0
    groups = []
    y = float(top)
    for row in table.rows:
        bars = []
        values: list[tuple[float | None, str]] = []
        for cell in row.cells:
            if cell.hidden in (Hidden.SMALL, Hidden.SMALL_BASE):
                values.append((None, f"< {k}"))
            elif cell.hidden is Hidden.SECONDARY:
                values.append((None, gettext("masqué")))
            elif cell.share is None:
                values.append((None, "–"))
            else:
                values.append((cell.share, f"{cell.share:.0f} %"))
        if table.has_reference:
            ref = row.reference
            values.append((ref, "–" if ref is None else f"{ref:.0f} %"))
        label = _short(str(row.label))
        lines = _lines(label)
        label_height = LABEL_HEIGHT * len(lines)
        for index, (share, text) in enumerate(values):
            width = 0.0 if share is None else round(BAR_AREA * share / 100, 1)
            bars.append(
                Bar(
                    y + label_height + index * (BAR_HEIGHT + BAR_GAP),
                    width,
                    PATTERNS[index % len(PATTERNS)],
                    text,
                )
            )
        groups.append(Group(y, label, tuple(bars), lines))
        y += label_height + len(values) * (BAR_HEIGHT + BAR_GAP) + GROUP_GAP
    return Chart(
        id=f"chart-{table.key}",
        width=BAR_AREA + VALUE_WIDTH,
        height=y,
        bar_area=BAR_AREA,
        bar_height=BAR_HEIGHT,
        groups=tuple(groups),
        legend=legend if len(series) > 1 else (),
    )
