"""The fast paths of the export (issue 18, part 4) give exactly what the plain ones give:
wide rows coded once per distinct answer (`WideCoder`), the writer's cell coding done ahead
(`Writer.prepare`), people read in the plan's order (PostgreSQL: one query, rows fetched by
a thread), and "at least k people" counted up to k only (the request that queues a job)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session

from selfcheck.evaluation import anonymise
from selfcheck.evaluation.anonymity import MASKED
from selfcheck.evaluation.export import (
    FORMS,
    Layout,
    PersonAnswers,
    SentForm,
    Shape,
    WideCoder,
    _prefetched,
    stream_people,
)
from selfcheck.evaluation.scope import EvaluationFilters, count_people, count_people_up_to
from selfcheck.evaluation.writers import WRITERS
from selfcheck.platform.models import Answer, Beneficiary, Response, Structure
from selfcheck.questionnaire.model import NO_ANSWER, Definition


def _drawn_person(definition: Definition, rng: random.Random, number: int) -> PersonAnswers:
    """A person with some forms, each variable answered, left unanswered ("Sans réponse")
    or not asked, drawn like the demo data."""
    person = PersonAnswers(number, 1, {})
    for form in FORMS:
        if rng.random() < 0.3:
            continue
        answers: dict[str, list[str]] = {}
        for variable in definition.variables(form):
            item = variable.item
            chance = rng.random()
            if chance < 0.1:
                continue  # not asked
            if chance < 0.2:
                answers[variable.code] = [NO_ANSWER]
            else:
                answers[variable.code] = item.type.demo_value(item, rng)
        when = datetime(2026, rng.randint(1, 12), 3, tzinfo=UTC)
        person.forms[form.value] = SentForm("online", "standard", "3", when, answers)
    return person


def _released(rng: random.Random) -> dict[str, Any]:
    released: dict[str, Any] = {anonymise.PLACE: ("department", "44")}
    for form in FORMS:
        for detail, value in (("month", "2026-03"), ("channel", "paper"), ("wording", "easy")):
            column = anonymise.detail_column(form, detail)
            released[column] = MASKED if rng.random() < 0.2 else value
        released[anonymise.detail_column(form, "version")] = "3"
    return released


@pytest.mark.usefixtures("request_context")
@pytest.mark.parametrize("free_text", [False, True])
def test_wide_coder_gives_the_rows_of_the_layout(
    definition: Definition, tmp_path: Path, free_text: bool
) -> None:
    layout = Layout(definition, Shape.WIDE, free_text)
    rng = random.Random(18)
    people = [_drawn_person(definition, rng, number) for number in range(20)]
    writers = [WRITERS[code](tmp_path / code, layout.columns, "t") for code in WRITERS]
    try:
        for prepare in [lambda value: value] + [writer.prepare for writer in writers]:
            coder = WideCoder(layout, prepare)
            for person in people * 2:  # the second time from the coder's memory
                released = _released(rng)
                head = layout.qi_cells("p", released)
                (plain,) = list(layout.rows(person, head, released))
                assert coder.row(person, head, released) == [prepare(v) for v in plain]
    finally:
        for writer in writers:
            writer.close()


@pytest.mark.usefixtures("request_context")
def test_csv_written_from_prepared_cells_is_the_same_file(
    definition: Definition, tmp_path: Path
) -> None:
    layout = Layout(definition, Shape.WIDE, True)
    rng = random.Random(5)
    people = [_drawn_person(definition, rng, number) for number in range(20)]
    people[0].forms["before"] = SentForm("online", "standard", "3", None, {})
    for code in ("csv", "csv-excel"):
        plain = WRITERS[code](tmp_path / f"plain-{code}", layout.columns, "t")
        fast = WRITERS[code](tmp_path / f"fast-{code}", layout.columns, "t")
        coder = WideCoder(layout, fast.prepare)
        for person in people:
            released = _released(rng)
            head = layout.qi_cells("=cmd", released)  # a formula start, neutralised
            plain.write(next(layout.rows(person, head, released)))
            fast.write_prepared(coder.row(person, head, released))
        plain.close()
        fast.close()
        written = (tmp_path / f"fast-{code}").read_bytes()
        assert written == (tmp_path / f"plain-{code}").read_bytes()
        assert b"'=cmd" in written


class _Result:
    """What `_prefetched` uses of a SQLAlchemy result: `fetchmany`."""

    def __init__(self, rows: Sequence[int], fail_after: int | None = None) -> None:
        self.rows = list(rows)
        self.fail_after = fail_after
        self.fetches = 0

    def fetchmany(self, size: int) -> list[int]:
        self.fetches += 1
        if self.fail_after is not None and self.fetches > self.fail_after:
            raise RuntimeError("connection lost")
        chunk, self.rows = self.rows[:size], self.rows[size:]
        return chunk


def _threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "export-prefetch"}


def test_prefetched_rows_come_in_order_and_the_thread_ends() -> None:
    before = _threads()
    assert list(_prefetched(_Result(range(1000)), 7)) == list(range(1000))  # type: ignore[arg-type]
    assert _threads() == before


def test_prefetched_closed_early_stops_its_thread() -> None:
    before = _threads()
    rows: Iterator[Any] = _prefetched(_Result(range(10_000)), 3)  # type: ignore[arg-type]
    assert [next(rows) for _ in range(5)] == [0, 1, 2, 3, 4]
    rows.close()  # e.g. the writer failed: the thread must not keep using the connection
    assert _threads() == before


def test_prefetched_error_reaches_the_reader() -> None:
    rows = _prefetched(_Result(range(100), fail_after=2), 10)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="connection lost"):
        list(rows)


def _people(db: Session, structure: Structure, count: int) -> list[int]:
    """`count` people with a submitted 'before' form (two answers each), by bulk inserts."""
    now = datetime(2026, 3, 1, tzinfo=UTC)
    ids = []
    for number in range(count):
        person = Beneficiary(code=f"SPEED{number:05d}", structure_id=structure.id)
        db.add(person)
        db.flush()
        response = Response(
            beneficiary_id=person.id,
            structure_id=structure.id,
            form="before",
            definition_id="test",
            definition_version="1",
            channel="online",
            locale="fr",
            status="submitted",
            submitted_at=now,
            wording="standard",
        )
        db.add(response)
        db.flush()
        db.execute(
            insert(Answer),
            [
                {"response_id": response.id, "variable": "V1", "value": str(number)},
                {"response_id": response.id, "variable": "V2", "value": "x"},
            ],
        )
        ids.append(person.id)
    db.commit()
    return ids


def test_counting_up_to_k_and_reading_in_a_given_order(
    db_session: Session, structure: Structure
) -> None:
    ids = _people(db_session, structure, 12)
    filters = EvaluationFilters(structure_ids=(structure.id,))
    assert count_people(db_session, filters) == 12
    assert count_people_up_to(db_session, filters, 5) == 5
    assert count_people_up_to(db_session, filters, 50) == 12
    assert count_people_up_to(db_session, EvaluationFilters(structure_ids=(-1,)), 5) == 0

    order = ids[:]
    random.Random(3).shuffle(order)
    read = list(stream_people(db_session, filters, order[:7]))
    found = [person.beneficiary_id for person in read]
    # PostgreSQL: in the order asked; SQLite: by id (write_rows puts them in order).
    wanted = order[:7] if db_session.get_bind().dialect.name == "postgresql" else sorted(order[:7])
    assert found == wanted
    first = read[found.index(ids[4])]
    assert first.forms["before"].answers == {"V1": ["4"], "V2": ["x"]}
    only = list(stream_people(db_session, filters, variables={"V2"}))
    assert len(only) == 12
    assert all(p.forms["before"].answers == {"V2": ["x"]} for p in only)
