"""CSV wide, read once: the people in scope are read in one pass that gives both the
anonymisation plan's records and each person's answers already written as CSV text.

The plain path (`export.write_rows`) reads the people twice, once for the plan (their
quasi-identifiers) and once for the file (in the plan's random order), and codes every
cell of every row in Python. Here:

- one statement (`stream_people`'s, all answers) reads every submitted form in scope, its
  answers keyed by variable (`Keyed`), so the plan and the file see the same snapshot and
  no person is read twice (nor needs `export.as_planned`);
- a form's answer cells depend on its answers only, not on the plan: each form is written
  as CSV text at once (each variable's text remembered per distinct answer, as
  `export.WideCoder` does, and looked up without a Python step per variable), and spooled
  to a temporary file (memory stays bounded by the plan's records, not by the answers);
- once the plan is made, each row is its head (pseudonym, released quasi-identifiers),
  each form's released details, and the spooled text: the same bytes as the plain path
  (`tests/services/evaluation/test_csv_wide.py`).

Only for CSV (`CsvWriter.text`: the csv module quotes each cell on its own, so a row can
be written from pieces) in the wide shape; other formats and shapes take the plain path.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import operator
import os
import queue
import tempfile
import threading
from array import array
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import ColumnElement, Connection, Engine, Select, Text, func, select, true
from sqlalchemy import cast as sa_cast
from sqlalchemy.orm import Session

from selfcheck.evaluation import anonymise
from selfcheck.evaluation.anonymise import Plan
from selfcheck.evaluation.export import (
    CACHE_MAX,
    FORMS,
    RESPONSE_DETAILS,
    Layout,
    PersonAnswers,
    SentForm,
    Shape,
    Written,
    fetch_rows,
    sqlite_query,
)
from selfcheck.evaluation.scope import EvaluationFilters, response_conditions
from selfcheck.evaluation.writers.base import Writer
from selfcheck.evaluation.writers.csv_writer import CsvWriter
from selfcheck.platform.models import Answer, Response
from selfcheck.questionnaire.answer_types import ExportKind

FORM_INDEX = {form.value: index for index, form in enumerate(FORMS)}
ABSENT = -1  # spooled length of a form the person did not send
FLUSH_BYTES = 1 << 18  # spooled text written to the file by chunks of about 256 kB
GROUPINGS_MAX = 4096  # lists of variables whose grouping is remembered


def reads_once(layout: Layout, writer: Writer) -> bool:
    """Whether this export takes the read-once path (CSV, wide)."""
    return layout.shape is Shape.WIDE and isinstance(writer, CsvWriter)


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


Grouping = tuple[tuple[str, ...], Callable[[tuple[str, ...]], tuple[Key, ...]]]


def _grouping(names: tuple[str | None, ...]) -> Grouping | None:
    """How to group the values of responses whose variables are `names`: the variables, and
    a getter of their keys from the values (an index, or a slice for several values side
    by side). None when a variable's values are not side by side (or no answer)."""
    variables: list[str] = []
    items: list[int | slice] = []
    at = 0
    for name, same in itertools.groupby(names):
        count = sum(1 for _ in same)
        if name is None or name in variables:
            return None
        variables.append(name)
        items.append(at if count == 1 else slice(at, at + count))
        at += count
    if not items:
        return ((), lambda values: ())
    if len(items) == 1:
        item = items[0]
        return (tuple(variables), lambda values: (values[item],))
    getter: Callable[[tuple[str, ...]], tuple[Key, ...]] = operator.itemgetter(*items)
    return (tuple(variables), getter)


class Keyed(dict[str, Grouping | None]):
    """One response's answers by variable, each as its key (`__call__`), from the JSON
    texts of its variables and of its values (parallel arrays, as the index gives them: a
    variable's values side by side).

    The variables of a response take few distinct lists: each list's grouping is worked
    out once, by its JSON text, and remembered (`_grouping`), so that grouping a response is
    a few calls of C functions (parse the values, pick them) rather than a Python step per
    answer."""

    def __missing__(self, names: str) -> Grouping | None:
        grouping = _grouping(tuple(json.loads(names)))
        if len(self) < GROUPINGS_MAX:
            self[names] = grouping
        return grouping

    def __call__(self, names: str | None, values: str | None) -> dict[str, Key]:
        if names is None or values is None:  # PostgreSQL: no answer
            return {}
        grouping = self[names]
        if grouping is None:
            return _grouped(json.loads(names), json.loads(values))
        variables, getter = grouping
        return dict(zip(variables, getter(tuple(json.loads(values))), strict=True))


# The columns of `_postgres_query`, as `COPY ... (FORMAT BINARY)` gives them.
COPY_TYPES = ("int4", "int4", "text", "text", "text", "text", "timestamptz", "text", "text")
COPY_CHUNK = 500  # rows handed from the reading thread at once
COPY_CHUNKS = 4  # chunks read ahead at most (bounded memory)


def _postgres_query(conditions: list[ColumnElement[bool]]) -> Select[Any]:
    """PostgreSQL: each response's answers aggregated by a lateral subquery (an index-only
    scan of `uq_answer_value` per response) as `stream_people` reads them, but as two JSON
    texts: one string each to fetch and parse, not an array of strings. The response's
    strings are cast to text, as `COPY_TYPES` reads them (the same values)."""
    answers = (
        select(
            sa_cast(func.json_agg(Answer.variable), Text).label("names"),
            sa_cast(func.json_agg(Answer.value), Text).label("answer_values"),
        )
        .where(Answer.response_id == Response.id)
        .lateral("answers")
    )
    beneficiary, structure, form, channel, wording, version, sent_at = RESPONSE_DETAILS
    texts = [sa_cast(c, Text) for c in (form, channel, wording, version)]
    columns: list[Any] = [beneficiary, structure, *texts, sent_at]
    return (
        select(*columns, answers.c.names, answers.c.answer_values)
        .select_from(Response)
        .outerjoin(answers, true())
        .where(*conditions)
        .order_by(Response.beneficiary_id, Response.form)
    )


def form_rows(
    db: Session | Connection, filters: EvaluationFilters
) -> Generator[tuple[Any, ...], None, None]:
    """Every submitted form in scope, by person then form: its details (`RESPONSE_DETAILS`),
    then its answers by variable (`Keyed`). SQLite: `stream_people`'s query (JSON arrays).
    `db`: a session (its transaction) or a connection of its own (`RowsReading`)."""
    conditions = response_conditions(filters)
    dialect = db.get_bind().dialect if isinstance(db, Session) else db.dialect
    source: Generator[Any, None, None]
    if dialect.name == "postgresql":
        connection = db.connection() if isinstance(db, Session) else db
        source = copied_rows(connection, _postgres_query(conditions), COPY_TYPES)
    else:
        source = fetch_rows(db, sqlite_query(conditions))
    keyed = Keyed()
    try:
        for *details, names, values in source:
            yield (*details, keyed(names, values))
    finally:
        source.close()


def copied_rows(
    connection: Connection, query: Select[Any], types: Sequence[str]
) -> Generator[tuple[Any, ...], None, None]:
    """PostgreSQL: the rows of `query` by `COPY (query) TO STDOUT (FORMAT BINARY)` on
    `connection` (its transaction), each column loaded as `types` says (psycopg's loaders,
    the values a cursor gives).

    Unlike a server-side cursor, which computes the next rows only when asked for them
    (a round trip, and the server's process woken up, every `yield_per` rows), the server
    sends the rows as fast as it makes them: a thread reads them while the caller works
    (at most `COPY_CHUNKS` chunks ahead). The parameters are merged into the statement by
    the driver (COPY takes none), quoted as literals. Closing the generator early stops the
    thread and cancels the copy (the transaction is then failed: only on the way out)."""
    compiled = query.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    statement = f"COPY ({compiled.string}) TO STDOUT (FORMAT BINARY)"
    driver = connection.connection.driver_connection
    assert driver is not None
    chunks: queue.Queue[list[tuple[Any, ...]] | BaseException] = queue.Queue(maxsize=COPY_CHUNKS)
    stop = threading.Event()

    def read() -> None:
        try:
            with driver.cursor() as cursor, cursor.copy(statement, compiled.params) as copy:
                copy.set_types(list(types))
                chunk: list[tuple[Any, ...]] = []
                for row in copy.rows():
                    chunk.append(row)
                    if len(chunk) == COPY_CHUNK:
                        if stop.is_set():
                            raise Stopped  # cancels the copy (psycopg's `Copy.finish`)
                        chunks.put(chunk)
                        chunk = []
            if chunk:
                chunks.put(chunk)
            chunks.put([])
        except BaseException as error:  # given to the caller, raised there
            chunks.put(error)

    thread = threading.Thread(target=read, name="export-copy", daemon=True)
    thread.start()
    try:
        while True:
            chunk = chunks.get()
            if isinstance(chunk, BaseException):
                raise chunk
            if not chunk:
                return
            yield from chunk
    finally:
        stop.set()
        while thread.is_alive():  # a put waiting for room: make some
            with contextlib.suppress(queue.Empty):
                chunks.get(timeout=0.05)
        thread.join()


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


class _Values(dict[Key, list[str]]):
    """A key's values (`key_values`), per key: quasi-identifiers take few distinct ones."""

    def __missing__(self, key: Key) -> list[str]:
        values = key_values(key)
        if len(self) < CACHE_MAX:
            self[key] = values
        return values


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

    def text(self, keys: dict[str, Key]) -> str:
        # No Python step per variable: every lookup is done by map over C functions.
        found = map(operator.call, self.lookups, map(keys.get, self.codes))
        return self.delimiter.join(found)


# --- the spool: each person's forms as text, in a temporary file -----------------------------


@dataclass
class _Spool:
    """Each person's forms as CSV text, in a temporary file: per person their offset, and per
    form the text's length in characters (ABSENT when not sent)."""

    # Closed by `close` (ReadOnce is the context manager), removed by the system at once.
    file: IO[bytes] = field(default_factory=lambda: tempfile.TemporaryFile(prefix="export-"))  # noqa: SIM115
    # Arrays while the plan is made (its peak of memory); the index by person once written.
    people: array[int] = field(default_factory=lambda: array("q"))
    position: dict[int, int] | None = None  # beneficiary id -> index, made by `texts`
    offsets: array[int] = field(default_factory=lambda: array("q", [0]))
    lengths: array[int] = field(default_factory=lambda: array("i"))
    pending: list[bytes] = field(default_factory=list)
    pending_size: int = 0

    def add(self, beneficiary_id: int, texts: Sequence[str | None]) -> None:
        data = "".join(text for text in texts if text is not None).encode()
        self.people.append(beneficiary_id)
        self.offsets.append(self.offsets[-1] + len(data))
        self.lengths.extend(ABSENT if text is None else len(text) for text in texts)
        self.pending.append(data)
        self.pending_size += len(data)
        if self.pending_size >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        self.file.write(b"".join(self.pending))
        self.file.flush()
        self.pending.clear()
        self.pending_size = 0

    def texts(self, beneficiary_id: int) -> list[str | None]:
        if self.position is None:
            self.position = {person: index for index, person in enumerate(self.people)}
        index = self.position[beneficiary_id]
        start, end = self.offsets[index], self.offsets[index + 1]
        data = os.pread(self.file.fileno(), end - start, start).decode()
        texts: list[str | None] = []
        at = 0
        for length in self.lengths[index * len(FORMS) : (index + 1) * len(FORMS)]:
            if length == ABSENT:
                texts.append(None)
            else:
                texts.append(data[at : at + length])
                at += length
        return texts

    def close(self) -> None:
        self.file.close()


@dataclass
class ReadOnce:
    """The people in scope, read once: the plan's inputs (`anonymise.plan_records`) and the
    spooled text of their forms. Close it (a context manager) to drop the temporary file."""

    ids: list[int]
    records: list[dict[str, Any]]
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
    makes it) and their forms' answers as CSV text (spooled)."""
    places = anonymise.structure_places(db, filters.structure_ids)
    records: list[dict[str, Any]] = []
    ids, spool = _read_rows(
        form_rows(db, filters),
        layout,
        writer,
        anonymise.recorder(places, layout.definition),
        lambda _person, record: records.append(record),
    )
    return ReadOnce(ids, records, dict(places.values()), spool)


def _read_rows(
    source: Generator[tuple[Any, ...], None, None],
    layout: Layout,
    writer: CsvWriter,
    record: Callable[[PersonAnswers], dict[str, Any]],
    take: Callable[[int, dict[str, Any]], None],
    stop: threading.Event | None = None,
) -> tuple[list[int], _Spool]:
    """The people of `source` (`form_rows`): their forms' answers as CSV text, spooled, and
    each one's raw quasi-identifier record given to `take` (with their beneficiary id), in
    the order read. `stop` set: `Stopped` is raised before the next person."""
    qi_codes = tuple(item.code for item in layout.definition.quasi_identifiers())
    forms = {form.value: _FormText(layout, form, writer) for form in FORMS}
    parsed = _Values()  # lists shared between people: `qi_record` only reads them
    spool = _Spool()
    ids: list[int] = []
    try:
        for beneficiary_id, rows in itertools.groupby(source, key=operator.itemgetter(0)):
            if stop is not None and stop.is_set():
                raise Stopped
            person = PersonAnswers(beneficiary_id, None, {})
            texts: list[str | None] = [None] * len(FORMS)
            for _id, structure_id, form, channel, wording, version, sent_at, given in rows:
                if person.structure_id is None or structure_id > person.structure_id:
                    person.structure_id = structure_id
                # The plan reads the quasi-identifiers' answers only (`qi_record`).
                answers = {code: parsed[given[code]] for code in qi_codes if code in given}
                # One submitted response per person and form (uq_response_person_form).
                person.forms[form] = SentForm(channel, wording, version, sent_at, answers)
                index = FORM_INDEX.get(form)
                if index is not None:
                    texts[index] = forms[form].text(given)
            ids.append(beneficiary_id)
            take(beneficiary_id, record(person))
            spool.add(beneficiary_id, texts)
        spool.flush()
    except BaseException:
        spool.close()
        raise
    finally:
        source.close()  # a failure: the fetching thread stops and the cursor is closed
    return ids, spool


class Stopped(Exception):
    """The rows' read was stopped by its caller (`RowsReading`)."""


# --- the rows read by a thread while the plan is made (PostgreSQL) ---------------------------


class _Compared:
    """The records of the rows' read compared, person by person, with those the plan was
    made from (`expect`), as they come: equal, the plan is the plan of the rows read. Records
    read before the plan's are known wait in `pending`. Used by one thread at a time: the
    rows' thread (`take`) until it ends, then the caller (`finish`); `expect` only sets the
    plan's records, once."""

    def __init__(self) -> None:
        self.expected: tuple[Sequence[int], Sequence[dict[str, Any]]] | None = None
        self.pending: list[tuple[int, dict[str, Any]]] = []
        self.index = 0
        self.same = True

    def expect(self, ids: Sequence[int], records: Sequence[dict[str, Any]]) -> None:
        self.expected = (ids, records)

    def take(self, beneficiary_id: int, record: dict[str, Any]) -> None:
        if self.expected is None:
            self.pending.append((beneficiary_id, record))
            return
        if self.pending:
            self._compare_pending()
        self._compare(beneficiary_id, record)

    def _compare_pending(self) -> None:
        pending, self.pending = self.pending, []
        for beneficiary_id, record in pending:
            self._compare(beneficiary_id, record)

    def _compare(self, beneficiary_id: int, record: dict[str, Any]) -> None:
        if not self.same:
            return
        assert self.expected is not None
        ids, records = self.expected
        at = self.index
        self.same = at < len(ids) and ids[at] == beneficiary_id and records[at] == record
        self.index = at + 1

    def finish(self) -> bool:
        """Whether every record read was the plan's, and every record of the plan read."""
        assert self.expected is not None
        self._compare_pending()
        return self.same and self.index == len(self.expected[0])


class RowsReading:
    """The rows' read of `read_once` (every answer, each form's text spooled) done by a
    thread on a connection of its own, started at once, while the caller reads the plan's
    records (`anonymise.collect`, the quasi-identifiers only) and makes the plan: the
    database server prepares the rows while the process plans, instead of one after the
    other.

    The two reads are two statements, so two snapshots: the records of the rows' read are
    compared with the plan's (`expect`), person by person; `result` gives the rows only when
    they are the same people with the same records (so the plan made is the plan of these
    rows), else None (someone answered in between: read once again). A context manager: on
    leaving, the thread is stopped and waited for, and the spool closed unless handed out."""

    def __init__(
        self,
        engine: Engine,
        filters: EvaluationFilters,
        layout: Layout,
        writer: CsvWriter,
        places: dict[int, tuple[str, str]],
    ) -> None:
        self.compared = _Compared()
        self.departments = dict(places.values())
        self.stop = threading.Event()
        self.done: tuple[list[int], _Spool] | None = None
        self.error: BaseException | None = None
        record = anonymise.recorder(places, layout.definition)

        def read() -> None:
            try:
                with engine.connect() as connection:
                    self.done = _read_rows(
                        form_rows(connection, filters),
                        layout,
                        writer,
                        record,
                        self.compared.take,
                        self.stop,
                    )
            except BaseException as error:  # raised by `result`
                self.error = error

        self.thread = threading.Thread(target=read, name="export-rows", daemon=True)
        self.thread.start()

    def expect(self, ids: Sequence[int], records: Sequence[dict[str, Any]]) -> None:
        """The plan's people and records (`anonymise.collect`), to compare the rows' with."""
        self.compared.expect(ids, records)

    def result(self) -> ReadOnce | None:
        """Wait for the rows: the people read once (the plan's records not kept), or None
        when they are not the plan's. Call `expect` first."""
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.done is not None
        ids, spool = self.done
        if not self.compared.finish():
            return None
        self.done = None  # handed out: closed by the caller
        return ReadOnce(ids, [], self.departments, spool)

    def __enter__(self) -> RowsReading:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        if self.done is not None:
            self.done[1].close()
            self.done = None


def write_read_once(
    read: ReadOnce, layout: Layout, plan: Plan, key: bytes, writer: CsvWriter
) -> Written:
    """Write the people of the plan in its random order: for each, the head and each form's
    details as released, and each form's spooled answers. The same bytes as
    `export.write_rows` writes with `writer.write_prepared` and `writer.prepare`."""
    delimiter = writer.delimiter
    cell = _CellText(writer).__getitem__
    shapes = [
        (form, bool(layout.fields[form]), delimiter * (4 + len(layout.fields[form]) - 1))
        for form in FORMS
    ]
    people = 0
    written: list[int] = []
    for beneficiary_id in plan.order:
        released = plan.released(beneficiary_id)
        if released is None:
            continue
        people += 1
        written.append(beneficiary_id)
        # The pseudonym, unique, is not remembered; the rest of the head is.
        pseudonym, *head = layout.qi_cells(anonymise.pseudonym(key, beneficiary_id), released)
        pieces = [writer.quote(writer.prepare(pseudonym)), delimiter.join(map(cell, head))]
        for (form, has_fields, absent), answers in zip(
            shapes, read.spool.texts(beneficiary_id), strict=True
        ):
            if answers is None:
                pieces.append(absent)
                continue
            pieces.append(delimiter.join(map(cell, layout.details(released, form))))
            if has_fields:
                pieces.append(answers)
        writer.write_text(delimiter.join(pieces))
    return Written(people, people, plan, written)
