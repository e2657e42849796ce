"""CSV wide read once (`csv_wide`, issue 18 part 4) writes the very bytes of the plain path
(`anonymise.plan`, then `export.write_rows` reading the people again in the plan's order),
with the same plan, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from selfcheck.evaluation import anonymise, bundle, csv_wide
from selfcheck.evaluation.export import FORMS, Layout, Shape, write_rows
from selfcheck.evaluation.scope import parse_filters
from selfcheck.evaluation.writers import WRITERS
from selfcheck.evaluation.writers.csv_writer import CsvWriter
from selfcheck.platform.models import Answer, Response, StaffUser
from selfcheck.questionnaire.model import NO_ANSWER, Definition

K = 3
KEY = b"k" * 32
# Cells the csv module quotes, or that look like it might: each delimiter, quotes, line
# ends, a formula start, accents, spaces, empty.
TRICKY = ["", " ", "a,b", "a;b", 'say "hi"', '"', "line\nbreak", "cr\rhere", "=1+2", "é à ç", "x"]


@pytest.mark.parametrize("fmt", ["csv", "csv-excel"])
def test_a_row_written_from_pieces_is_the_row_of_the_csv_module(tmp_path: Path, fmt: str) -> None:
    writer = WRITERS[fmt](tmp_path / fmt, [], "t")
    assert isinstance(writer, CsvWriter)
    try:
        rng = random.Random(4)
        for _ in range(200):
            cells = [rng.choice(TRICKY) for _ in range(rng.randint(2, 6))]
            cut = rng.randint(1, len(cells) - 1)
            expected = io.StringIO()
            csv.writer(expected, delimiter=writer.delimiter, lineterminator="\r\n").writerow(cells)
            pieces = writer.delimiter.join([writer.text(cells[:cut]), writer.text(cells[cut:])])
            assert pieces + "\r\n" == expected.getvalue(), cells
    finally:
        writer.close()


def _free_text_variable(definition: Definition) -> tuple[Any, Any]:
    """The first free-text variable of the forms, with its form."""
    return next(
        (form, variable)
        for form in FORMS
        for variable in definition.variables(form)
        if variable.item.type.free_text
    )


def _spied_reads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each read of the read-once path, as its `split` flag (True: split at the separator)."""
    reads: list[bool] = []
    real_read = csv_wide._read

    def spied(*args: object, split: bool) -> csv_wide.ReadOnce:
        reads.append(split)
        return real_read(*args, split=split)  # type: ignore[arg-type]

    monkeypatch.setattr(csv_wide, "_read", spied)
    return reads


def _plain_then_read_once(
    db: Session, admin: StaffUser, definition: Definition, tmp_path: Path
) -> tuple[Any, Any, bytes]:
    """The plain path's plan and file (tmp_path/plain), then the read-once path's plan and
    bytes (tmp_path/fast), both in the same seeded order."""
    filters = parse_filters(db, admin, {})
    layout = Layout(definition, Shape.WIDE, True)
    plain = WRITERS["csv"](tmp_path / "plain", layout.columns, "t")
    plan = anonymise.plan(db, filters, K, definition, rng=random.Random(9))
    write_rows(db, filters, layout, plan, KEY, plain.write_prepared, plain.prepare)
    plain.close()
    fast = WRITERS["csv"](tmp_path / "fast", layout.columns, "t")
    again, _written = bundle.plan_and_write(
        db, filters, K, definition, None, None, layout, fast, KEY, rng=random.Random(9)
    )
    fast.close()
    return plan, again, (tmp_path / "fast").read_bytes()


def _add_free_text(db: Session, definition: Definition) -> None:
    """Free text with commas, quotes, line breaks, a formula start and accents on some forms
    that ask for it, and a 'Sans réponse' on another: what the demo people never write."""
    form, variable = _free_text_variable(definition)
    responses = list(
        db.scalars(select(Response.id).where(Response.form == form.value).order_by(Response.id))
    )
    texts = ['Un "mot", puis\nune ligne', "=SOMME(A1)", "déjà vu; encore", NO_ANSWER] * 3
    assert len(responses) >= len(texts)
    db.execute(delete(Answer).where(Answer.variable == variable.code))
    db.execute(
        insert(Answer),
        [
            {"response_id": response, "variable": variable.code, "value": text}
            for response, text in zip(responses, texts, strict=False)
        ],
    )
    # As every writer of answers, the responses' rows too (journey/row_guard.py).
    db.execute(update(Response).where(Response.id.in_(responses)).values(locale=Response.locale))
    db.commit()


@pytest.mark.slow  # about 3.5 s on the shared 2-core machine (four plans): CI runs it
@pytest.mark.usefixtures("request_context")
def test_read_once_writes_the_bytes_of_the_plain_path(
    populated: Session, admin: StaffUser, definition: Definition, tmp_path: Path
) -> None:
    _add_free_text(populated, definition)
    filters = parse_filters(populated, admin, {})
    for fmt, free_text in (("csv", True), ("csv-excel", False)):
        layout = Layout(definition, Shape.WIDE, free_text)
        plain_path, fast_path = tmp_path / f"plain-{fmt}-{free_text}", tmp_path / "fast"
        plain = WRITERS[fmt](plain_path, layout.columns, "t")
        plan = anonymise.plan(populated, filters, K, definition, rng=random.Random(9))
        expected = write_rows(
            populated, filters, layout, plan, KEY, plain.write_prepared, plain.prepare
        )
        plain.close()
        fast = WRITERS[fmt](fast_path, layout.columns, "t")
        assert csv_wide.reads_once(layout, fast)
        seen: list[anonymise.Plan] = []
        again, written = bundle.plan_and_write(
            populated,
            filters,
            K,
            definition,
            None,
            None,
            layout,
            fast,
            KEY,
            before_writing=seen.append,
            rng=random.Random(9),
        )
        fast.close()
        assert seen == [again]
        assert again.decisions == plan.decisions and again.order == plan.order
        assert again.report() == plan.report()
        assert (written.rows, written.people, written.released) == (
            expected.rows,
            expected.people,
            expected.released,
        )
        assert written.rows > 20
        data = fast_path.read_bytes()
        assert data == plain_path.read_bytes(), (fmt, free_text)
        if free_text:
            assert b"'=SOMME(A1)" in data and b'"Un ""mot"", puis\nune ligne"' in data


def test_spool_gives_back_each_persons_forms() -> None:
    spool = csv_wide._Spool()
    people: dict[int, list[str | None]] = {
        7: ["a,b", None, "", "é" * 3000, None],
        3: [None] * len(FORMS),
        9: ["x", "y", "z", "", "ü"],
    }
    try:
        for person, texts in people.items():
            spool.add(person, texts)
        spool.flush()
        for person in (9, 3, 7):
            assert spool.texts(person) == people[person]
    finally:
        spool.close()


@pytest.mark.usefixtures("request_context")
def test_a_value_holding_the_separator_is_read_again_as_json(
    populated: Session,
    admin: StaffUser,
    definition: Definition,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL splits each form's values at `SEPARATOR`: a value holding it (nothing typed
    in can, but the database does not forbid it) gives more pieces than answers, and the
    people are read again as JSON; the file is the plain path's. SQLite reads JSON."""
    form, variable = _free_text_variable(definition)
    response = populated.scalars(
        select(Response.id).where(Response.form == form.value).order_by(Response.id)
    ).first()
    assert response is not None
    populated.execute(delete(Answer).where(Answer.variable == variable.code))
    text = "avant" + csv_wide.SEPARATOR + "après"
    populated.execute(
        insert(Answer), [{"response_id": response, "variable": variable.code, "value": text}]
    )
    # As every writer of answers, the responses' rows too (journey/row_guard.py).
    populated.execute(update(Response).values(locale=Response.locale))
    populated.commit()
    reads = _spied_reads(monkeypatch)
    _plan, _again, data = _plain_then_read_once(populated, admin, definition, tmp_path)
    assert data == (tmp_path / "plain").read_bytes()
    assert text.encode() in data
    postgres = populated.get_bind().dialect.name == "postgresql"
    assert reads == ([True, False] if postgres else [True])


# attack11: answers an adversary (or an odd import) could store. The separator path must give
# the JSON path's bytes: printf-like text (the rows are put together by `bytes %`), control
# characters next to the separator, line and paragraph separators, the empty string, numbers
# that JSON or float would read otherwise, JSON-looking text, very long text, astral planes.
HOSTILE = [
    "%b",
    "%s%%%b%",
    "100 %",
    "",
    "\r\n",
    "\u2028x\u2029",
    "\U0001f600" * 10,
    "1e309",
    "-0",
    "NaN",
    "\\x1f",
    "\x1e\x1d\x1c",
    "\t\v\f",
    "null",
    '["a", "b"]',
    '"]',
    "\x7f\x80",
    "x" * 100_000,
]


@pytest.mark.usefixtures("request_context")
def test_attack11_hostile_free_text_gives_the_plain_paths_bytes_without_reading_again(
    populated: Session,
    admin: StaffUser,
    definition: Definition,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    form, variable = _free_text_variable(definition)
    responses = list(
        populated.scalars(
            select(Response.id).where(Response.form == form.value).order_by(Response.id)
        )
    )
    values = list(HOSTILE)
    if populated.get_bind().dialect.name == "sqlite":
        values.append("nul\x00here")  # PostgreSQL's text cannot hold it
    populated.execute(delete(Answer).where(Answer.variable == variable.code))
    rows = [
        {"response_id": response, "variable": variable.code, "value": value}
        for response, value in zip(responses, values, strict=False)
    ]
    # Several values of one variable side by side, the empty string among them.
    rows += [
        {"response_id": responses[-1], "variable": variable.code, "value": value}
        for value in ("", "%b", "a\nb", "z")
    ]
    assert len(responses) > len(values)
    populated.execute(insert(Answer), rows)
    populated.execute(update(Response).values(locale=Response.locale))
    populated.commit()
    reads = _spied_reads(monkeypatch)
    plan, again, data = _plain_then_read_once(populated, admin, definition, tmp_path)
    assert again.decisions == plan.decisions and again.order == plan.order
    assert again.report() == plan.report()
    assert data == (tmp_path / "plain").read_bytes()
    assert b"x" * 100_000 in data and "\U0001f600".encode() in data
    assert reads == [True]  # no value held the separator: read once
