"""The journey's writes and their database round trips (issue 18, part 6, sixth pass).

On PostgreSQL a page save sends its three writes (the page's answers deleted and inserted,
the response's furthest page and time) as one statement (`journey._SAVE_PAGE_POSTGRES`):
what it stores must be what the separate statements stored (SQLite keeps them), on both
databases; the round trips of each request of the journey are counted as `sql_counter.py`
counts them in the benchmark.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, event, func, select, text, update

from selfcheck.journey import operations as journey
from selfcheck.platform import db
from selfcheck.platform.db import Database
from selfcheck.platform.models import (
    Answer,
    Beneficiary,
    DataVersion,
    Response,
    ResponseFact,
    Structure,
)
from selfcheck.privacy import operations as privacy
from selfcheck.questionnaire.model import Definition, FormKind
from tests.support import ANSWERS, Visitor, code_on_page, fill_and_submit, new_token


@dataclass
class Trips:
    """What one request sent, as `benchmarks/sql_counter.py` counts it."""

    statements: list[str] = field(default_factory=list)
    begins: int = 0
    commits: int = 0
    rollbacks: int = 0
    pings: int = 0

    @property
    def round_trips(self) -> int:
        return len(self.statements) + self.begins + self.commits + self.rollbacks + self.pings


def in_autocommit(connection: Any) -> bool:
    """Whether `connection` runs without transactions: its AUTOCOMMIT execution option (the
    rate-limit counters), or its DBAPI connection in autocommit from its start (PostgreSQL's
    reader, platform/db.py). SQLAlchemy still fires begin, commit and rollback events on it,
    though nothing is sent (psycopg sends no BEGIN in autocommit, and its rollback outside a
    transaction sends nothing)."""
    if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return True
    try:
        dbapi_connection = connection.connection.dbapi_connection
    except Exception:  # closed or invalidated meanwhile
        return False
    return getattr(dbapi_connection, "autocommit", None) is True


@contextmanager
def counted(engine: Engine | db.Database) -> Iterator[Trips]:
    """The round trips sent through `engine`, or through every engine of a `Database` (its
    reader has a pool of its own on PostgreSQL)."""
    engines = engine.engines() if isinstance(engine, db.Database) else (engine,)
    trips = Trips()

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        trips.statements.append(sql)

    def transaction(kind: str) -> Callable[..., None]:
        def handler(connection: Any, *_args: Any) -> None:
            if not in_autocommit(connection):
                setattr(trips, kind, getattr(trips, kind) + 1)

        return handler

    handlers: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", statement),
        ("begin", transaction("begins")),
        ("commit", transaction("commits")),
        ("rollback", transaction("rollbacks")),
    ]
    pings = [(each, each.dialect.do_ping) for each in engines]

    def counting(ping: Callable[[Any], bool]) -> Callable[[Any], bool]:
        def counted_ping(dbapi_connection: Any) -> bool:
            trips.pings += 1
            return ping(dbapi_connection)

        return counted_ping

    for each, ping in pings:
        for name, handler in handlers:
            event.listen(each, name, handler)
        each.dialect.do_ping = counting(ping)  # type: ignore[method-assign]
    try:
        yield trips
    finally:
        for each, ping in pings:
            each.dialect.do_ping = ping  # type: ignore[method-assign]
            for name, handler in handlers:
                event.remove(each, name, handler)


def _engine(app: Flask) -> db.Database:
    """What `counted` follows: every engine of the app."""
    database: db.Database = app.extensions[db.EXTENSION_KEY]
    return database


def _stored(database: Database, response_id: int) -> dict[str, list[str]]:
    with database.session() as session:
        rows = session.execute(
            select(Answer.variable, Answer.value)
            .where(Answer.response_id == response_id)
            .order_by(Answer.id)
        ).all()
    found: dict[str, list[str]] = {}
    for variable, value in rows:
        found.setdefault(variable, []).append(value)
    return found


def _started(database: Database, definition: Definition, structure: Structure) -> int:
    with database.session() as session:
        response = journey.start_response(
            session, definition, session.merge(structure), FormKind.BEFORE, "fr", new_token()
        )
        session.commit()
        return response.id


def _save(
    database: Database, definition: Definition, response_id: int, page_code: str, values: Any
) -> journey.Answers:
    page = definition.screen(FormKind.BEFORE, page_code)
    assert page is not None
    with database.session() as session:
        state = journey.lock_state(session, response_id, no_flush_wait=True)
        assert state is not None
        saved = journey.save_locked_page(session, definition, state, page, values)
        session.commit()
    return saved


def test_a_page_saved_again_holds_exactly_its_last_values(
    database: Database, definition: Definition, structure: Structure
) -> None:
    """The same values again (each deleted and inserted again in one statement: no unique
    conflict), other values, several values, none; the other pages' answers untouched."""
    response_id = _started(database, definition, structure)
    _save(database, definition, response_id, "p_help", {"ASSIST": ("seul",)})
    for devices in [
        ("smartphone", "tablette"),
        ("smartphone", "tablette"),
        ("tablette", "smartphone", "portable"),
        ("portable",),
        (),
        ("fixe",),
    ]:
        saved = _save(database, definition, response_id, "p_devices", {"DEVICES": devices})
        stored = _stored(database, response_id)
        assert stored.get("ASSIST") == ["seul"]
        assert stored.get("DEVICES", []) == list(devices)
        assert saved.get("DEVICES", ()) == devices and saved["ASSIST"] == ("seul",)
    with database.session() as session:
        response = session.get(Response, response_id)
        assert response is not None
        assert response.furthest_page == "p_devices"
        answer = session.scalar(select(Answer).where(Answer.response_id == response_id))
        assert answer is not None and answer.definition_version == definition.version


def test_saves_of_one_page_at_once_keep_one_of_the_values(
    database: Database, definition: Definition, structure: Structure
) -> None:
    """Four saves of the same page with different values at once: each waits for the row's
    lock (taken by the state read), so the page holds exactly one save's values."""
    response_id = _started(database, definition, structure)
    variants = [("portable",), ("smartphone", "tablette"), ("tablette",), ("fixe", "portable")]
    failures = _all_at_once(
        variants,
        lambda values: _save(database, definition, response_id, "p_devices", {"DEVICES": values}),
    )
    assert failures == []
    assert tuple(_stored(database, response_id)["DEVICES"]) in variants


def test_a_page_save_on_postgresql_is_two_round_trips(
    visitor: Visitor, structure: Structure, app: Flask, database: Database
) -> None:
    """POST /q: the state read without a transaction (its row's version with it), then the
    page's writes as one statement committed on its own (`journey.save_read_page`) on
    PostgreSQL (round 16: 4, BEGIN, the locked state, the writes, COMMIT; before: 6). SQLite
    keeps the three statements (no round trips: in the worker), and reads the response's
    status for the facts at commit."""
    location = visitor.start(structure.slug).headers["Location"]
    assert visitor.get(location).status_code == 200
    with counted(_engine(app)) as trips:
        saved = visitor.answer({"ASSIST": ["seul"]})
    assert saved.status_code == 302
    words = [statement.split()[0] for statement in trips.statements]
    if _engine(app).engine.dialect.name == "postgresql":
        assert words == ["SELECT", "WITH"]
        assert "xmin" in trips.statements[0] and "FOR UPDATE" not in trips.statements[0]
        assert (trips.begins, trips.commits, trips.rollbacks, trips.pings) == (0, 0, 0, 0)
        assert trips.round_trips == 2
    else:
        assert words == ["SELECT", "DELETE", "INSERT", "UPDATE", "SELECT"]
    with database.session() as session:
        count = session.scalar(select(func.count()).select_from(Answer))
    assert count == 1


def test_round_trips_of_a_whole_journey(
    visitor: Visitor, structure: Structure, app: Flask, database: Database
) -> None:
    """Each write of the journey on PostgreSQL, counted as the benchmark counts them: start
    8 round trips (round 18: 9, the structure and the start token now read together; was 11:
    the two rate-limit counters in one statement, the start token read once), a page save 2
    (round 16: 4, before: 6), sending 8 (round 18: 14; was 19: the state read locked once,
    no ORM reads; of the 8, 4 keep the dashboard facts, round 19: the people locked with
    their responses' statuses read, their responses, answers and second entries read by one
    statement, every write and the data version's raise by one). SQLite: the same journey,
    stored."""
    engine = _engine(app)
    postgres = engine.engine.dialect.name == "postgresql"
    # Every page is seen here for the first time: not in the page cache yet, which the layer
    # in front of Flask (journey/fast_page.py) finds only after reading the state; it hands
    # the state to Flask's view, which does not read it again: one SELECT either way.
    assert app.config.get("SELFCHECK_FAST_PAGES", True)
    start_page = f"/s/{structure.slug}"
    assert visitor.get(start_page).status_code == 200
    chosen = next(f for f in visitor.forms() if f.hidden().get("form") == "before")
    assert chosen.action is not None
    with counted(engine) as started:
        begun = visitor.post(chosen.action, chosen.hidden())
    assert begun.status_code == 302
    with counted(engine) as saves:
        visitor.fill(ANSWERS[FormKind.BEFORE], begun)
    assert visitor.url == "/check"
    with counted(engine) as sent:
        done = visitor.submit()
    assert done.status_code == 302 and visitor.follow(done).status_code == 200
    with database.session() as session:
        response = session.scalar(select(Response))
        assert response is not None and response.is_submitted
        stored = len(list(session.scalars(select(Answer.id))))
    assert stored == sum(len(values) for values in ANSWERS[FormKind.BEFORE].values())
    if not postgres:
        return  # SQLite: the journey stored (above); its round trips are PostgreSQL's to count
    assert started.round_trips == 8, started.statements
    assert [s.split()[0] for s in started.statements].count("INSERT") == 3  # counters, rows
    assert "FROM response" in started.statements[0] and "FROM structure" in started.statements[0]
    # Each page: its view (1 SELECT, no transaction) and its save (the state, the writes in
    # one statement committed on its own).
    pages = sum(statement.startswith("WITH touched") for statement in saves.statements)
    assert pages >= 10 and saves.round_trips == pages * (1 + 2) + 1  # + the check page
    assert sent.round_trips == 8, sent.statements
    assert "FOR UPDATE OF response" in sent.statements[0]
    assert sent.statements[1].startswith("UPDATE response SET status")
    # The facts: the people locked (their responses' statuses read in the same statement),
    # the old facts, the responses with their answers, then every write in one WITH.
    assert "FOR UPDATE OF beneficiary" in sent.statements[2]
    assert " OR " not in sent.statements[2]  # one IN: read by the primary key (_lock_people)
    assert "FROM response_fact" in sent.statements[3]
    assert "LEFT OUTER JOIN answer" in sent.statements[4]
    assert sent.statements[5].startswith("WITH added AS (INSERT INTO response_fact")
    assert "data_version" in sent.statements[5] and len(sent.statements) == 6


def test_the_thank_you_page_and_the_summary_read_without_a_transaction(
    visitor: Visitor, structure: Structure, app: Flask, database: Database
) -> None:
    """GET /done and GET /summary only read, through the ORM session `db.read_only_session`
    opens on the reader: on PostgreSQL their statements are sent without BEGIN and ROLLBACK
    (6 round trips each -> 4, round 18), on SQLite as before; the pages are the same."""
    engine = _engine(app)
    visitor.fill(ANSWERS[FormKind.BEFORE], visitor.start(structure.slug))
    sent = visitor.submit()
    assert sent.status_code == 302 and sent.headers["Location"].endswith("/done")
    with counted(engine) as thanked:
        thanks = visitor.get("/done")
    with counted(engine) as summed:
        summary = visitor.get("/summary")
    assert thanks.status_code == 200 and summary.status_code == 200
    assert code_on_page(thanks.get_data(as_text=True))  # the person's code, read and shown
    for trips in (thanked, summed):
        assert trips.statements and all(s.split()[0] == "SELECT" for s in trips.statements)
        assert trips.commits == 0
        if engine.engine.dialect.name == "postgresql":
            assert (trips.begins, trips.rollbacks) == (0, 0)
            assert trips.round_trips == len(trips.statements)
    # Round 20: the thank-you page reads the response, the person, the structure and the
    # person's responses by one statement (was 4); the summary the person, structure and
    # responses by one, every response's answers by a second (was 4): on both databases.
    assert len(thanked.statements) == 1, thanked.statements
    assert len(summed.statements) == 2, summed.statements
    assert "FROM answer" in summed.statements[1] and " IN " in summed.statements[1]


def test_the_summary_of_a_person_with_two_questionnaires_in_two_statements(
    visitor: Visitor, structure: Structure, app: Flask, database: Database, definition: Definition
) -> None:
    """A person who sent "before" and "after": the summary reads both responses' answers in
    one statement (the lazy loads took one per response), and shows the same page as the
    lazy loads did."""
    engine = _engine(app)
    visitor.fill(ANSWERS[FormKind.BEFORE], visitor.start(structure.slug))
    assert visitor.submit().status_code == 302
    with database.session() as session:
        person = session.scalar(select(Beneficiary))
        assert person is not None
        after = journey.start_after(session, definition, person, "fr")
        session.commit()
        fill_and_submit(session, definition, after, ANSWERS[FormKind.AFTER])
        person_id = person.id
    with counted(engine) as summed:
        summary = visitor.get("/summary")
    assert summary.status_code == 200
    assert len(summed.statements) == 2, summed.statements

    def answers(person: Beneficiary | None) -> list[tuple[str, list[tuple[str, str]]]]:
        assert person is not None
        return [(r.form, [(a.variable, a.value) for a in r.answers]) for r in person.responses]

    with database.session() as session:  # the same objects, in the same order, as lazily
        eager = answers(journey.load_person(session, person_id))
    with database.session() as session:
        lazy = answers(session.get(Beneficiary, person_id))
    assert eager == lazy and [form for form, _ in eager] == ["before", "after"]


def test_a_read_only_session_refuses_to_write(app: Flask, structure: Structure) -> None:
    """A view that chose `read_only_session` and writes would commit at once on PostgreSQL,
    outside any unit of work: a flush or a Core write through it raises, on both databases,
    and nothing is written."""
    with app.test_request_context("/done"):
        session = db.read_only_session()
        assert db.get_session() is session
        found = session.get(Structure, structure.id)
        assert found is not None
        found.name = "renamed"
        with pytest.raises(db.ReadOnlyError):
            session.flush()
        session.rollback()
        with pytest.raises(db.ReadOnlyError):
            session.execute(update(Structure).values(name="renamed"))
    with app.test_request_context("/done"):
        again = db.get_session().get(Structure, structure.id)
        assert again is not None and again.name == structure.name


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE structure SET name = 'renamed'",
        "  /* a comment */ delete from structure",
        "WITH gone AS (DELETE FROM structure RETURNING id) SELECT count(*) FROM gone",
        "SELECT id FROM structure FOR UPDATE",
        "INSERT INTO structure (name) SELECT name FROM structure",
    ],
)
def test_a_read_only_session_refuses_a_write_however_it_is_built(
    app: Flask, structure: Structure, sql: str
) -> None:
    """guard19 (attack11): the check is on the SQL sent, so a write as text, as a driver
    statement or as a Core statement on the session's Connection raises too, before it is
    sent; a read as text goes through."""
    with app.test_request_context("/done"):
        session = db.read_only_session()
        assert session.scalar(text("SELECT name FROM structure")) == structure.name
        with pytest.raises(db.ReadOnlyError):
            session.execute(text(sql))
        session.rollback()
        with pytest.raises(db.ReadOnlyError):
            session.connection().exec_driver_sql(sql)
        session.rollback()
        with pytest.raises(db.ReadOnlyError):
            session.connection().execute(update(Structure).values(name="renamed"))
        session.rollback()
    with app.test_request_context("/done"):
        again = db.get_session().get(Structure, structure.id)
        assert again is not None and again.name == structure.name


def test_a_request_that_opened_its_session_keeps_it(app: Flask) -> None:
    """`read_only_session` after the request's ordinary session: the same session (one per
    request), able to write."""
    with app.test_request_context("/done"):
        ordinary = db.get_session()
        assert db.read_only_session() is ordinary


# --- a page save from a state read without a lock (PostgreSQL, round 17) ------------------


def _read_state(database: Database, response_id: int) -> journey.ResponseState:
    with database.reader.connect() as connection:
        state = journey.read_state_to_save(connection, response_id)
    assert state is not None and state.row_version is not None
    return state


def _save_read(
    database: Database,
    definition: Definition,
    state: journey.ResponseState,
    page_code: str,
    values: Any,
    *,
    no_flush_wait: bool = True,
) -> journey.Answers | None:
    page = definition.screen(FormKind.BEFORE, page_code)
    assert page is not None
    with database.reader.connect() as connection:
        return journey.save_read_page(
            connection, definition, state, page, values, no_flush_wait=no_flush_wait
        )


def _postgres(database: Database) -> bool:
    return database.engine.dialect.name == "postgresql"


def _postgres_only(database: Database) -> None:
    """Skip (with the reason) rather than pass empty on SQLite: the save from a state read
    without a lock is PostgreSQL's; SQLite saves under its write lock."""
    if not _postgres(database):
        pytest.skip("PostgreSQL only: SQLite saves under its write lock (no save from a read)")


def test_a_page_saved_from_a_read_state_holds_exactly_its_last_values(
    database: Database, definition: Definition, structure: Structure
) -> None:
    """As the locked save: the same values again, other values, several, none; the other
    pages' answers untouched; the furthest page and the version of the definition kept."""
    _postgres_only(database)
    response_id = _started(database, definition, structure)
    assert _save_read(
        database, definition, _read_state(database, response_id), "p_help", {"ASSIST": ("seul",)}
    ) == {"ASSIST": ("seul",)}
    for devices in [
        ("smartphone", "tablette"),
        ("smartphone", "tablette"),
        ("tablette", "smartphone", "portable"),
        ("portable",),
        (),
        ("fixe",),
    ]:
        state = _read_state(database, response_id)
        saved = _save_read(database, definition, state, "p_devices", {"DEVICES": devices})
        assert saved is not None
        stored = _stored(database, response_id)
        assert stored.get("ASSIST") == ["seul"]
        assert stored.get("DEVICES", []) == list(devices)
        assert saved.get("DEVICES", ()) == devices and saved["ASSIST"] == ("seul",)
    with database.session() as session:
        response = session.get(Response, response_id)
        assert response is not None and response.furthest_page == "p_devices"
        answer = session.scalar(select(Answer).where(Answer.response_id == response_id))
        assert answer is not None and answer.definition_version == definition.version


def test_a_read_state_saved_after_another_write_saves_nothing(
    database: Database, definition: Definition, structure: Structure
) -> None:
    """A save of the same response committed in between (another tab), a sending, an
    erasure: the save from the older read writes nothing and says so (None)."""
    _postgres_only(database)
    response_id = _started(database, definition, structure)
    stale = _read_state(database, response_id)
    _save(database, definition, response_id, "p_help", {"ASSIST": ("seul",)})
    assert _save_read(database, definition, stale, "p_devices", {"DEVICES": ("fixe",)}) is None
    assert _stored(database, response_id) == {"ASSIST": ["seul"]}
    # Read again: saved.
    fresh = _read_state(database, response_id)
    assert _save_read(database, definition, fresh, "p_devices", {"DEVICES": ("fixe",)})
    assert _stored(database, response_id) == {"ASSIST": ["seul"], "DEVICES": ["fixe"]}
    # Sent since it was read (the status): nothing written.
    read = _read_state(database, response_id)
    with database.session() as session:
        session.execute(
            update(Response).where(Response.id == response_id).values(status="submitted")
        )
        session.commit()
    assert _save_read(database, definition, read, "p_devices", {"DEVICES": ("portable",)}) is None
    assert _stored(database, response_id)["DEVICES"] == ["fixe"]


def test_a_read_state_saved_after_the_person_was_erased_writes_nothing(
    database: Database, definition: Definition, structure: Structure
) -> None:
    _postgres_only(database)
    response_id = _started(database, definition, structure)
    read = _read_state(database, response_id)
    with database.session() as session:
        privacy.erase_by_code(session, read.code, secret="test")
        session.commit()
    assert _save_read(database, definition, read, "p_help", {"ASSIST": ("seul",)}) is None
    assert _stored(database, response_id) == {}


def test_saves_from_one_read_at_once_keep_exactly_one(
    database: Database, definition: Definition, structure: Structure
) -> None:
    """Four saves of the same page from the same read, at once (a double click, two tabs):
    one writes, the others find the row changed and write nothing."""
    _postgres_only(database)
    response_id = _started(database, definition, structure)
    state = _read_state(database, response_id)
    variants = [("portable",), ("smartphone", "tablette"), ("tablette",), ("fixe", "portable")]
    results: dict[tuple[str, ...], object] = {}

    def save(values: tuple[str, ...]) -> None:
        results[values] = _save_read(database, definition, state, "p_devices", {"DEVICES": values})

    failures = _all_at_once(variants, save)
    assert failures == []
    written = [values for values, result in results.items() if result is not None]
    assert len(written) == 1
    assert tuple(_stored(database, response_id)["DEVICES"]) == written[0]


def test_a_read_state_save_waits_for_a_writer_holding_the_row_then_saves_nothing(
    database: Database, definition: Definition, structure: Structure
) -> None:
    """A transaction holding the response's row (a locked page save, not committed yet): the
    save from an earlier read waits for it, then finds the row changed (PostgreSQL checks
    the condition again on the row as the other transaction left it) and writes nothing."""
    _postgres_only(database)
    response_id = _started(database, definition, structure)
    read = _read_state(database, response_id)
    page = definition.screen(FormKind.BEFORE, "p_devices")
    assert page is not None
    outcome: list[object] = []
    with database.session() as holder:
        state = journey.lock_state(holder, response_id)
        assert state is not None
        journey.save_locked_page(holder, definition, state, page, {"DEVICES": ("fixe",)})
        waiting = threading.Thread(
            target=lambda: outcome.append(
                _save_read(database, definition, read, "p_devices", {"DEVICES": ("portable",)})
            )
        )
        waiting.start()
        waiting.join(timeout=1.0)
        assert waiting.is_alive()  # waiting for the row's lock
        holder.commit()
    waiting.join(timeout=10)
    assert outcome == [None]
    assert _stored(database, response_id) == {"DEVICES": ["fixe"]}


def test_a_page_save_whose_row_changed_is_saved_again_under_the_lock(
    visitor: Visitor, structure: Structure, app: Flask, database: Database, monkeypatch: Any
) -> None:
    """The view: when the row changed between the read and the save, the page is read again
    with the row locked and saved (as on SQLite): nothing lost, no error."""
    _postgres_only(database)
    location = visitor.start(structure.slug).headers["Location"]
    assert visitor.get(location).status_code == 200
    read = journey.read_state_to_save

    def changed_since(connection: Any, response_id: int) -> journey.ResponseState | None:
        state = read(connection, response_id)
        assert state is not None
        return dataclasses.replace(state, row_version="1")  # as if another write came first

    monkeypatch.setattr(journey, "read_state_to_save", changed_since)
    with counted(_engine(app)) as trips:
        saved = visitor.answer({"ASSIST": ["seul"]})
    assert saved.status_code == 302
    assert any("FOR UPDATE" in statement for statement in trips.statements)
    with database.session() as session:
        stored = session.scalars(select(Answer.value)).all()
    assert stored == ["seul"]


def _all_at_once(
    variants: list[tuple[str, ...]], save: Callable[[tuple[str, ...]], object]
) -> list[BaseException]:
    """Run `save` for every variant in threads released together; what they raised."""
    barrier = threading.Barrier(len(variants))
    failures: list[BaseException] = []

    def run(values: tuple[str, ...]) -> None:
        try:
            barrier.wait()
            save(values)
        except BaseException as error:  # reported by the test, with its type
            failures.append(error)

    threads = [threading.Thread(target=run, args=(values,)) for values in variants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def _version(database: Database) -> int:
    with database.session() as session:
        return int(session.scalar(select(DataVersion.n)) or 0)


def test_the_data_version_is_raised_once_per_commit_that_touches_facts(
    visitor: Visitor, structure: Structure, database: Database
) -> None:
    """The sending's facts written with the data version's raise in one statement on
    PostgreSQL (`facts._write_postgres`, round 19): the version goes up by exactly one, as
    when it was a statement of its own (SQLite); and a commit that touches a submitted
    response without changing its facts (nothing written) still raises it once."""
    visitor.fill(ANSWERS[FormKind.BEFORE], visitor.start(structure.slug))
    before = _version(database)
    assert visitor.submit().status_code == 302
    sent = _version(database)
    assert sent == before + 1
    with database.session() as session:
        session.execute(update(Response).values(wording=Response.wording))
        session.commit()
    assert _version(database) == sent + 1
    with database.session() as session:
        kept = session.scalar(select(func.count()).select_from(ResponseFact))
    assert kept == 1
