"""CSV wide, read once: the people in scope are read in one pass that gives both the
anonymisation plan's records and each person's answers already written as CSV text.

The plain path (`export.write_rows`) reads the people twice, once for the plan (their
quasi-identifiers) and once for the file (in the plan's random order), and codes every
cell of every row in Python. Here:

- one statement (`stream_people`'s aggregation, all answers; on PostgreSQL each form's
  variables and values joined by `SEPARATOR`, split in C) reads every submitted form in
  scope, its answers picked by variable (`_Shape`), so the plan and the file see the same
  snapshot and no person is read twice (nor needs `export.as_planned`); the plan's records
  are kept by column (`anonymise.ColumnRecorder`);
- a form's answer cells depend on its answers only, not on the plan: each form is written
  as CSV text at once (each variable's text remembered per distinct answer, as
  `export.WideCoder` does, and looked up without a Python step per variable), and spooled
  to a temporary file (memory stays bounded by the plan's records, not by the answers);
- once the plan is made, each row is its head (pseudonym, released quasi-identifiers),
  each form's released details, and the spooled text, put together in bytes from a
  template per combination of released values (`_RowBytes`): the same bytes as the plain
  path (`tests/services/evaluation/test_csv_wide.py`).

Only for CSV (`CsvWriter.text`: the csv module quotes each cell on its own, so a row can
be written from pieces) in the wide shape; other formats and shapes take the plain path.
"""

from __future__ import annotations

import itertools
import json
import operator
import os
import tempfile
from array import array
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import ColumnElement, Select, Text, func, literal, select, true
from sqlalchemy import cast as sa_cast
from sqlalchemy.orm import Session

from selfcheck.evaluation import anonymise
from selfcheck.evaluation.anonymise import Plan
from selfcheck.evaluation.export import (
    CACHE_MAX,
    FORMS,
    RESPONSE_DETAILS,
    Layout,
    Shape,
    Written,
    fetch_rows,
)
from selfcheck.evaluation.scope import EvaluationFilters, response_conditions
from selfcheck.evaluation.writers.base import Writer
from selfcheck.evaluation.writers.csv_writer import CsvWriter
from selfcheck.platform.models import Answer, Response
from selfcheck.questionnaire.answer_types import ExportKind

ABSENT = -1  # spooled length of a form the person did not send
FLUSH_BYTES = 1 << 18  # spooled text written to the file by chunks of about 256 kB
GROUPINGS_MAX = 4096  # lists of variables whose grouping is remembered
HEX = "0123456789abcdef"
_NOT_SENT = ABSENT.__eq__  # a form's spooled length -> whether it was not sent


def reads_once(layout: Layout, writer: Writer) -> bool:
    """Whether this export takes the read-once path (CSV in UTF-8, wide)."""
    return (
        layout.shape is Shape.WIDE
        and isinstance(writer, CsvWriter)
        and writer.encoding in ("utf-8", "utf-8-sig")
    )


# --- the rows: one per submitted form, answers grouped by variable --------------------------

# A variable's answer as a key: its value (a string) when it has one, the tuple of its values
# in the order read when it has several (a multiple choice); never equal to each other.
Key = str | tuple[str, ...]


def _grouped(names: Sequence[str | None], values: Sequence[str]) -> dict[str, Key]:
    """One response's answers (parallel lists) by variable, each as its key."""
    grouped: dict[str, Key] = {}
    for variable, value in zip(names, values, strict=True):
        if variable is None:  # the outer join's empty row (SQLite): no answer
            continue
        held = grouped.get(variable)
        if held is None:
            grouped[variable] = value
        elif isinstance(held, tuple):
            grouped[variable] = (*held, value)
        else:
            grouped[variable] = (held, value)
    return grouped


def key_values(key: Key) -> list[str]:
    """The values of a key, as `stream_people` gives them (a list, in the order read)."""
    return [key] if isinstance(key, str) else list(key)


def _places(names: Sequence[str | None]) -> dict[str, int | slice] | None:
    """Where each variable's values are among a response's values read with `names` (an
    index, or a slice for several values side by side). None when a variable's values are
    not side by side, or a name is None (the outer join's empty row, SQLite)."""
    places: dict[str, int | slice] = {}
    at = 0
    for name, same in itertools.groupby(names):
        count = sum(1 for _ in same)
        if name is None or name in places:
            return None
        places[name] = at if count == 1 else slice(at, at + count)
        at += count
    return places


SEPARATOR = "\x1f"  # between a response's variables and between its values (PostgreSQL)


class Ambiguous(Exception):
    """A response's variables or values hold the separator (`SEPARATOR`): they cannot be
    split without doubt, so the people are read again with JSON texts."""


def _postgres_query(conditions: list[ColumnElement[bool]], split: bool = True) -> Select[Any]:
    """PostgreSQL: each response's answers aggregated by a lateral subquery (an index-only
    scan of `uq_answer_value` per response) as `stream_people` reads them, but as two texts
    (one string each to fetch and parse, not an array of strings) and their number.

    `split`: the variables and the values joined by `SEPARATOR` (`string_agg`), which the
    reader splits in C and checks against the number of answers (a value holding the
    separator gives more pieces: `Ambiguous`); else JSON arrays (`json_agg`), parsed by
    `json.loads`, which any value survives. Both aggregates run over the same rows in the
    same pass, so in the same order: a variable's values side by side, as the index
    gives them."""
    names: ColumnElement[Any]
    values: ColumnElement[Any]
    if split:
        separator = literal(SEPARATOR, Text)
        names = func.string_agg(Answer.variable, separator)
        values = func.string_agg(Answer.value, separator)
    else:
        names = sa_cast(func.json_agg(Answer.variable), Text)
        values = sa_cast(func.json_agg(Answer.value), Text)
    answers = (
        select(
            func.count().label("answer_count"),
            names.label("names"),
            values.label("answer_values"),
        )
        .where(Answer.response_id == Response.id)
        .lateral("answers")
    )
    return (
        select(*RESPONSE_DETAILS, answers.c.answer_count, answers.c.names, answers.c.answer_values)
        .select_from(Response)
        .outerjoin(answers, true())
        .where(*conditions)
        .order_by(Response.beneficiary_id, Response.form)
    )


def _sqlite_query(conditions: list[ColumnElement[bool]]) -> Select[Any]:
    """SQLite: `export.sqlite_query` (JSON arrays), with the number of answers."""
    return (
        select(
            *RESPONSE_DETAILS,
            func.count(Answer.id),
            func.json_group_array(Answer.variable),
            func.json_group_array(Answer.value),
        )
        .select_from(Response)
        .outerjoin(Answer, Answer.response_id == Response.id)
        .where(*conditions)
        .group_by(Response.id)
        .order_by(Response.beneficiary_id, Response.form)
    )


def form_rows(
    db: Session, filters: EvaluationFilters, split: bool = True
) -> tuple[Generator[tuple[Any, ...], None, None], Callable[[str], list[Any]] | None]:
    """Every submitted form in scope, by person then form: its details (`RESPONSE_DETAILS`),
    its number of answers, then the texts of its variables and of its values; and how to
    split those texts (None: JSON arrays). PostgreSQL joins them by `SEPARATOR` when
    `split`; SQLite gives JSON arrays (`export.sqlite_query`'s aggregation)."""
    conditions = response_conditions(filters)
    if db.get_bind().dialect.name == "postgresql":
        query = _postgres_query(conditions, split)
        splitter = operator.methodcaller("split", SEPARATOR) if split else None
    else:
        query = _sqlite_query(conditions)
        splitter = None
    return fetch_rows(db, query), splitter


@dataclass(frozen=True)
class _Shape:
    """How to read the answers of one form whose variables are some list: `count` values,
    the keys of the form's layout variables (`_FormText.codes`) and of the QI items
    (`ColumnRecorder.items`) picked from the values by C getters (a value, a tuple of
    values side by side, or the None put after the last value when a variable has none)."""

    count: int
    text_keys: Callable[[tuple[Any, ...]], tuple[Key | None, ...]]
    qi_keys: Callable[[tuple[Any, ...]], tuple[Key | None, ...]]


def _picker(items: Sequence[int | slice]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A getter of `items` that always gives a tuple (`itemgetter` gives one item bare)."""
    if not items:
        return lambda values: ()
    if len(items) == 1:
        item = items[0]
        return lambda values: (values[item],)
    getter: Callable[[tuple[Any, ...]], tuple[Any, ...]] = operator.itemgetter(*items)
    return getter


def _shape(
    names: Sequence[str | None], text_codes: Sequence[str], qi_codes: Sequence[str]
) -> _Shape | None:
    """The `_Shape` of a form whose variables are `names` (as read), or None when a
    variable's values are not side by side or a name is None (read then by `_grouped`)."""
    places = _places(names)
    if places is None:
        return None
    missing = len(names)  # the None put after the values
    return _Shape(
        len(names),
        _picker([places.get(code, missing) for code in text_codes]),
        _picker([places.get(code, missing) for code in qi_codes]),
    )


class _Shapes(dict[str | None, _Shape | None]):
    """The `_Shape` of one form per text of its variables, worked out on first sight: the
    variables of a form take few distinct lists."""

    def __init__(
        self,
        parse: Callable[[str], list[Any]],
        text_codes: Sequence[str],
        qi_codes: Sequence[str],
    ) -> None:
        super().__init__()
        self.parse = parse
        self.text_codes = tuple(text_codes)
        self.qi_codes = tuple(qi_codes)

    def __missing__(self, names: str | None) -> _Shape | None:
        if names is None:  # no answer (PostgreSQL): every key the None after no value
            nothing = _picker([0] * len(self.text_codes)), _picker([0] * len(self.qi_codes))
            found: _Shape | None = _Shape(0, *nothing)
        else:
            found = _shape(self.parse(names), self.text_codes, self.qi_codes)
        if len(self) < GROUPINGS_MAX:
            self[names] = found
        return found


# --- a form's answers as CSV text ------------------------------------------------------------


class _VariableText(dict[Key | None, str]):
    """One variable's cells as CSV text, per key (`Keyed`): coded on first sight
    (`__missing__`), remembered up to `CACHE_MAX` keys (never for free text), so that a
    lookup is a plain dict lookup. None: not asked (blank cells)."""

    def __init__(
        self, layout: Layout, fields: Sequence[Any], writer: CsvWriter, remember: bool
    ) -> None:
        super().__init__()
        self.layout = layout
        self.fields = tuple(fields)
        self.code = self.fields[0].variable.code
        self.writer = writer
        self.remember = remember
        self[None] = writer.delimiter * (len(self.fields) - 1)

    def __missing__(self, key: Key | None) -> str:
        assert key is not None  # None is always there
        answers = {self.code: key_values(key)}
        cell, prepare = self.layout.cell, self.writer.prepare
        text = self.writer.text([prepare(cell(f, answers)) for f in self.fields])
        if self.remember and len(self) <= CACHE_MAX:
            self[key] = text
        return text


class _CellText(dict[Any, str]):
    """A released cell (place, quasi-identifier, form detail) as CSV text, per value: these
    take few distinct values, each prepared and quoted once."""

    def __init__(self, writer: CsvWriter) -> None:
        super().__init__()
        self.writer = writer

    def __missing__(self, value: Any) -> str:
        text = self.writer.quote(self.writer.prepare(value))
        if len(self) < CACHE_MAX:
            self[value] = text
        return text


_ABSENT = object()  # a released column the person's decisions do not hold (`_HeadText`)


class _HeadText(dict[tuple[Any, ...], str]):
    """A row's head after the pseudonym (place, quasi-identifiers, forms present) as CSV
    text, per combination of the released values it is made of (`Layout.head_columns`,
    `_ABSENT` for a column not in the decisions): people released alike share it, so
    `qi_cells` and the quoting run once per combination, not once per person."""

    def __init__(self, layout: Layout, writer: CsvWriter, cell: Callable[[Any], str]) -> None:
        super().__init__()
        self.layout = layout
        self.names = layout.head_columns()
        self.absent = (_ABSENT,) * len(self.names)
        self.delimiter = writer.delimiter
        self.cell = cell

    def key(self, released: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(map(released.get, self.names, self.absent))

    def __missing__(self, values: tuple[Any, ...]) -> str:
        released = {
            name: value
            for name, value in zip(self.names, values, strict=True)
            if value is not _ABSENT
        }
        _pseudonym, *head = self.layout.qi_cells("", released)
        text = self.delimiter.join(map(self.cell, head))
        if len(self) < CACHE_MAX:
            self[values] = text
        return text


class _DetailsText(dict[tuple[Any, ...], str]):
    """One form's released details (month, channel, wording, version) as CSV text, per
    combination of their released values (`Layout.details` reads these only)."""

    def __init__(self, layout: Layout, form: Any, writer: CsvWriter, cell: Callable[[Any], str]):
        super().__init__()
        self.layout = layout
        self.form = form
        self.names = tuple(layout.detail_names[form])
        self.delimiter = writer.delimiter
        self.cell = cell

    def key(self, released: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(map(released.get, self.names))

    def __missing__(self, values: tuple[Any, ...]) -> str:
        released = dict(zip(self.names, values, strict=True))
        text = self.delimiter.join(map(self.cell, self.layout.details(released, self.form)))
        if len(self) < CACHE_MAX:
            self[values] = text
        return text


class _FormText:
    """A form's answer cells as CSV text, in the layout's order, from its keys by variable."""

    def __init__(self, layout: Layout, form: Any, writer: CsvWriter) -> None:
        self.delimiter = writer.delimiter
        fields = layout.fields[form]
        self.empty = not fields
        codes: list[str] = []
        lookups: list[Callable[[Key | None], str]] = []
        # A variable's fields are side by side (`form_fields`): one text each.
        for code, same in itertools.groupby(fields, key=lambda f: f.variable.code):
            group = list(same)
            remember = group[0].item.type.export_kind is not ExportKind.STR
            codes.append(code)
            lookups.append(_VariableText(layout, group, writer, remember).__getitem__)
        self.codes = tuple(codes)
        self.lookups = tuple(lookups)

    def text(self, keys: Sequence[Key | None]) -> str:
        """The form's text from the keys of its variables (`codes`' order, None: absent).
        No Python step per variable: every lookup is done by map over C functions."""
        return self.delimiter.join(map(operator.call, self.lookups, keys))


# --- the spool: each person's forms as text, in a temporary file -----------------------------


@dataclass
class _Spool:
    """Each person's forms as CSV text, UTF-8, in a temporary file: per person their offset,
    and per form the text's length in bytes (ABSENT when not sent)."""

    # Closed by `close` (ReadOnce is the context manager), removed by the system at once.
    file: IO[bytes] = field(default_factory=lambda: tempfile.TemporaryFile(prefix="export-"))  # noqa: SIM115
    # Arrays while the plan is made (its peak of memory); the index by person once written.
    people: array[int] = field(default_factory=lambda: array("q"))
    position: dict[int, int] | None = None  # beneficiary id -> index, made by `index`
    offsets: array[int] = field(default_factory=lambda: array("q", [0]))
    lengths: array[int] = field(default_factory=lambda: array("i"))
    pending: list[bytes] = field(default_factory=list)
    pending_size: int = 0

    def add(self, beneficiary_id: int, texts: Sequence[str | None]) -> None:
        encoded = [None if text is None else text.encode() for text in texts]
        data = b"".join(piece for piece in encoded if piece is not None)
        self.people.append(beneficiary_id)
        self.offsets.append(self.offsets[-1] + len(data))
        self.lengths.extend(ABSENT if piece is None else len(piece) for piece in encoded)
        self.pending.append(data)
        self.pending_size += len(data)
        if self.pending_size >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        self.file.write(b"".join(self.pending))
        self.file.flush()
        self.pending.clear()
        self.pending_size = 0

    def index(self) -> dict[int, int]:
        """Beneficiary id -> their place in the spool."""
        if self.position is None:
            self.position = {person: index for index, person in enumerate(self.people)}
        return self.position

    def data(self, index: int) -> tuple[bytes, array[int]]:
        """The person at `index`: their forms' texts one after the other (UTF-8), and each
        form's length in bytes (ABSENT: not sent)."""
        start, end = self.offsets[index], self.offsets[index + 1]
        lengths = self.lengths[index * len(FORMS) : (index + 1) * len(FORMS)]
        return os.pread(self.file.fileno(), end - start, start), lengths

    def texts(self, beneficiary_id: int) -> list[str | None]:
        data, lengths = self.data(self.index()[beneficiary_id])
        texts: list[str | None] = []
        at = 0
        for length in lengths:
            if length == ABSENT:
                texts.append(None)
            else:
                texts.append(data[at : at + length].decode())
                at += length
        return texts

    def close(self) -> None:
        self.file.close()


@dataclass
class ReadOnce:
    """The people in scope, read once: the plan's inputs (`anonymise.plan_records`: their
    records kept by column) and the spooled text of their forms. Close it (a context
    manager) to drop the temporary file."""

    ids: list[int]
    records: Sequence[Mapping[str, Any]]
    departments: dict[str, str]
    spool: _Spool

    def __enter__(self) -> ReadOnce:
        return self

    def __exit__(self, *exc: object) -> None:
        self.spool.close()


def read_once(
    db: Session, filters: EvaluationFilters, layout: Layout, writer: CsvWriter
) -> ReadOnce:
    """Every person in scope: their raw quasi-identifier record (as `anonymise.collect`
    makes it, kept by column) and their forms' answers as CSV text (spooled).

    PostgreSQL splits each form's answers joined by `SEPARATOR`; should one hold it
    (`Ambiguous`: no answer typed in holds a control character, but the database does not
    forbid it), everything read is dropped and the people are read again as JSON."""
    try:
        return _read(db, filters, layout, writer, split=True)
    except Ambiguous:
        return _read(db, filters, layout, writer, split=False)


def _read(
    db: Session, filters: EvaluationFilters, layout: Layout, writer: CsvWriter, split: bool
) -> ReadOnce:
    definition = layout.definition
    places = anonymise.structure_places(db, filters.structure_ids)
    recorder = anonymise.ColumnRecorder(places, definition)
    source, splitter = form_rows(db, filters, split)
    parse = splitter or json.loads
    profiles = set(anonymise.PROFILE_FORMS)
    no_qi = tuple[Key | None, ...]()
    # Per form: its index in FORMS, its text, its shapes, whether it describes the person.
    forms: dict[str, tuple[int, _FormText, _Shapes, bool]] = {}
    for index, form in enumerate(FORMS):
        text = _FormText(layout, form, writer)
        profile = form.value in profiles
        qi_codes = recorder.items if profile else ()
        forms[form.value] = (index, text, _Shapes(parse, text.codes, qi_codes), profile)
    form_bits = anonymise.FORM_BITS
    details = recorder.details
    spool = _Spool()
    ids: list[int] = []
    person: int | None = None
    structure: int | None = None
    pattern = 0
    qi: list[tuple[Key | None, ...]] = []
    sent: list[tuple[Any, ...] | None] = [None] * len(FORMS)
    texts: list[str | None] = [None] * len(FORMS)
    try:
        for row in source:
            beneficiary_id, structure_id, form, channel, wording, version, sent_at = row[:7]
            count, names, values = row[7:]
            if beneficiary_id != person:
                if person is not None:
                    ids.append(person)
                    recorder.add(structure, pattern, qi, sent)
                    spool.add(person, texts)
                person, structure, pattern = beneficiary_id, structure_id, 0
                qi = []
                sent = [None] * len(FORMS)
                texts = [None] * len(FORMS)
            elif structure is None or structure_id > structure:
                structure = structure_id
            pattern |= form_bits.get(form, 0)
            known = forms.get(form)
            if known is None:  # not a form of the export: its structure only counts
                continue
            index, text, shapes, profile = known
            shape = shapes[names]
            if shape is None:  # a variable's values apart, or none (SQLite): by variable
                variables, given = parse(names), parse(values)
                if splitter is not None and not len(variables) == len(given) == count:
                    raise Ambiguous
                keys_of = _grouped(variables, given).get
                text_keys: tuple[Key | None, ...] = tuple(map(keys_of, text.codes))
                qi_keys = tuple(map(keys_of, shapes.qi_codes))
            else:
                if names is None:
                    parts: tuple[Any, ...] = (None,)
                else:
                    parts = (*parse(values), None)
                    if splitter is not None and (shape.count != count or len(parts) != count + 1):
                        raise Ambiguous
                text_keys = shape.text_keys(parts)
                qi_keys = shape.qi_keys(parts) if profile else no_qi
            # One submitted response per person and form (uq_response_person_form).
            sent[index] = details(channel, wording, version, sent_at)
            texts[index] = text.text(text_keys)
            if profile:
                qi.append(qi_keys)
        if person is not None:
            ids.append(person)
            recorder.add(structure, pattern, qi, sent)
            spool.add(person, texts)
        spool.flush()
    except BaseException:
        spool.close()
        raise
    finally:
        source.close()  # a failure: the fetching thread stops and the cursor is closed
    return ReadOnce(ids, recorder.columns(), dict(places.values()), spool)


class _RowBytes(dict[tuple[Any, ...], bytes]):
    """A row's bytes with its pseudonym and answers left out (`%b`), per combination of the
    released values its head and forms' details show and of the forms sent: people
    released alike who sent the same forms share it, so that their rows are put together
    by one `%` (in C) from the pseudonym and the spooled answers."""

    def __init__(self, layout: Layout, writer: CsvWriter) -> None:
        super().__init__()
        self.delimiter = writer.delimiter
        cell = _CellText(writer).__getitem__
        self.heads = _HeadText(layout, writer, cell)
        self.forms = [
            (
                _DetailsText(layout, form, writer, cell),
                bool(layout.fields[form]),
                writer.delimiter * (4 + len(layout.fields[form]) - 1),
            )
            for form in FORMS
        ]
        self.names = self.heads.names + tuple(
            name for details, _fields, _absent in self.forms for name in details.names
        )
        self.absent = (_ABSENT,) * len(self.names)

    def key(self, released: dict[str, Any], lengths: Sequence[int]) -> tuple[Any, ...]:
        """`released`'s values this row shows, and which forms were not sent (their spooled
        `lengths`, `_Spool.data`)."""
        return (*map(released.get, self.names, self.absent), *map(_NOT_SENT, lengths))

    def __missing__(self, key: tuple[Any, ...]) -> bytes:
        values = dict(zip(self.names, key, strict=False))
        released = {name: value for name, value in values.items() if value is not _ABSENT}
        heads = self.heads
        pieces: list[str | None] = [None, heads[heads.key(released)]]  # None: put in
        absent = key[len(self.names) :]
        for (details, has_fields, blank), not_sent in zip(self.forms, absent, strict=True):
            if not_sent:
                pieces.append(blank)
                continue
            pieces.append(details[details.key(released)])
            if has_fields:
                pieces.append(None)
        # Only the pieces put in are formats: a "%" of a released value is written as is.
        text = self.delimiter.join(
            "%b" if piece is None else piece.replace("%", "%%") for piece in pieces
        )
        row = (text + "\r\n").encode()
        if len(self) < CACHE_MAX:
            self[key] = row
        return row


def write_read_once(
    read: ReadOnce, layout: Layout, plan: Plan, key: bytes, writer: CsvWriter
) -> Written:
    """Write the people of the plan in its random order: for each, the head and each form's
    details as released, and each form's spooled answers. The same bytes as
    `export.write_rows` writes with `writer.write_prepared` and `writer.prepare`."""
    rows = _RowBytes(layout, writer)
    pseudonym = anonymise.pseudonyms(key)
    # A pseudonym is 16 hexadecimal digits, which no writer quotes nor neutralises today;
    # should one, each is prepared as any cell.
    as_is = all(writer.quote(writer.prepare(digit * 16)) == digit * 16 for digit in HEX)
    wanted = [bool(layout.fields[form]) for form in FORMS]
    spool = read.spool
    position = spool.index()
    people = 0
    written: list[int] = []
    out: list[bytes] = []
    size = 0
    for beneficiary_id in plan.order:
        released = plan.released(beneficiary_id)
        if released is None:
            continue
        people += 1
        written.append(beneficiary_id)
        data, lengths = spool.data(position[beneficiary_id])
        # The pseudonym, unique, is not remembered; the rest of the row is, per
        # combination of the released values it shows and of the forms sent.
        name = pseudonym(beneficiary_id)
        if not as_is:
            name = writer.quote(writer.prepare(name))
        pieces = [name.encode()]
        at = 0
        for length, has_fields in zip(lengths, wanted, strict=True):
            if length != ABSENT:
                if has_fields:
                    pieces.append(data[at : at + length])
                at += length
        row = rows[rows.key(released, lengths)] % tuple(pieces)
        out.append(row)
        size += len(row)
        if size >= FLUSH_BYTES:
            writer.write_encoded(b"".join(out), len(out))
            out.clear()
            size = 0
    writer.write_encoded(b"".join(out), len(out))
    return Written(people, people, plan, written)
