"""Every writer of a response's answers updates the response's row in the same transaction:
enforced, not only written down (issue 18, round 18).

Why it matters: PostgreSQL's page save is optimistic (`journey.save_read_page`): it reads the
state without a lock, with the response row's `xmin`, and writes only if the row is still that
version. A transaction that changed a response's answers without updating its row would leave
`xmin` as it was, and a page save read before it would write over it as if nothing happened
(and a sending would check its required answers on a state that is gone).

How it is enforced: `install` hooks a session factory and its engine, and sees every write a
session makes: ORM objects (flush), statements run by the session
(`session.execute(delete(Answer)…)`, the journey's Core statements, including the responses'
UPDATE inside a statement's WITH, as `journey._SAVE_PAGE_POSTGRES`), and, at the engine
(`before_execute`), every other Core statement sent on the session's connection
(`session.connection().execute(…)`, the legacy bulk methods): while a session holds a
connection, the connection's `info` names the session's record (`Written`). It notes the
responses whose answers were inserted, updated or deleted, and the responses whose row was
updated or deleted (an ORM response inserted too); just before the outer transaction commits,
every response of the first kind must be of the second.

Savepoints: what is noted is kept by level (the connection's SAVEPOINT, RELEASE and ROLLBACK
TO events): a savepoint released gives its writes to its parent, one rolled back forgets them
(its writes are undone: a row update rolled back does not cover answers committed).

- `strict` (the tests and debug mode): a writer that forgot the row raises
  `AnswersWithoutTheirRow` at commit (the transaction is not committed), so the test of any
  new writer fails.
- otherwise (production): the rows forgotten are updated there and then (`updated_at` set to
  itself: a new row version, a new `xmin`, nothing else changed) and an error is logged. The
  invariant then holds whatever the writer did: the answers a person typed are kept (refusing
  would lose them for a bug that is ours, not theirs), and it costs nothing while every
  writer keeps the rule (one set difference at commit).

Cost: a read stops at an `isinstance` (no write statement: nothing else is done); a statement
the session already saw carries an execution option and stops there too; a statement on the
connection is read from its parameters (an INSERT's `response_id`, a WHERE naming its
responses) and otherwise costs one SELECT of the responses it changes (a bulk update by key:
not on any request's path).

What it cannot see: SQL as text (`text()`, `exec_driver_sql`, a raw DBAPI cursor): which
responses it writes is not known without parsing it. The one such writer of answers,
`save_read_page`'s statement, updates the row in the same statement;
`tests/services/test_row_guard.py` reads the package's sources and fails on any other raw SQL
writing to `answer` (migrations aside: they run before the app). Connections outside a
session (`engine.begin()`) are not followed either.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, event, update
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker
from sqlalchemy.sql import visitors
from sqlalchemy.sql.dml import UpdateBase

from selfcheck.platform.models import Answer, Response
from selfcheck.platform.written import (
    changed_ids,
    forget_matched,
    inserted_ids,
    matching_ids,
    written_ids,
)

log = logging.getLogger(__name__)

WRITTEN = "selfcheck.row_guard.written"
SEEN = "selfcheck_row_guard_seen"  # an execution option: the statement was noted already
CHUNK = 500


class AnswersWithoutTheirRow(RuntimeError):
    """A transaction wrote answers of responses whose row it did not update (strict mode)."""


@dataclass
class Level:
    """What one level of the transaction wrote: the outer transaction, or a savepoint."""

    answers: set[int] = field(default_factory=set)  # responses whose answers were written
    rows: set[int] = field(default_factory=set)  # responses whose row was written


class Written:
    """What a session's transaction wrote, by level: a savepoint's level is kept with its
    parent's when it is released, forgotten when it is rolled back (its writes are undone)."""

    def __init__(self, session: Session) -> None:
        self.levels = [Level()]
        self.flushing = False  # a flush began (`before_flush`): `_after_flush` sees it
        self.bound: list[dict[Any, Any]] = []  # the `info` of the connections it is kept in
        self._session = weakref.ref(session)

    def in_flush(self) -> bool:
        """Whether a flush is sending its statements now. The session's own mark, also set
        by the legacy bulk methods, is not enough alone; ours alone may outlive a flush that
        found nothing to do (no `after_flush` then)."""
        session = self._session()
        return self.flushing and session is not None and session._flushing

    @property
    def answers(self) -> set[int]:
        return self.levels[-1].answers

    @property
    def rows(self) -> set[int]:
        return self.levels[-1].rows

    def savepoint(self) -> None:
        self.levels.append(Level())

    def release(self) -> None:
        if len(self.levels) > 1:
            done = self.levels.pop()
            self.answers.update(done.answers)
            self.rows.update(done.rows)

    def rollback_savepoint(self) -> None:
        if len(self.levels) > 1:
            self.levels.pop()

    def any_answers(self) -> bool:
        return any(level.answers for level in self.levels)

    def missing(self) -> set[int]:
        answers = set().union(*(level.answers for level in self.levels))
        rows = set().union(*(level.rows for level in self.levels))
        return answers - rows


def _written(session: Session) -> Written:
    found = session.info.get(WRITTEN)
    if found is None:
        found = session.info[WRITTEN] = Written(session)
    assert isinstance(found, Written)
    return found


# The tables a statement writes inside itself (the parts of a WITH), by statement: the
# journey's statements are built once, and walking one costs ~90 µs.
_INNER: weakref.WeakKeyDictionary[Any, frozenset[str]] = weakref.WeakKeyDictionary()


def _inner_writes(statement: Any) -> frozenset[str]:
    try:
        return _INNER[statement]
    except KeyError:
        pass
    except TypeError:  # not weakly referenceable: walked each time
        return _walk(statement)
    found = _INNER[statement] = _walk(statement)
    return found


def _walk(statement: Any) -> frozenset[str]:
    return frozenset(
        str(getattr(part.table, "name", ""))
        for part in visitors.iterate(statement)
        if isinstance(part, UpdateBase) and part is not statement
    )


def _on_execute(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    # Seen here: `_on_connection_execute` leaves it (the ORM passes the option down).
    state.update_execution_options(**{SEEN: True})
    # The connection first: a savepoint begun before this statement is sent now (the
    # session sends SAVEPOINT when it first needs the connection), so that what is noted
    # here goes to the savepoint's level (`Written`), forgotten if it is rolled back.
    state.session.connection()
    try:
        _note(state)
    finally:  # the rows the facts' hook read for this statement, asked again here only
        forget_matched(state.session)


def _note(state: ORMExecuteState) -> None:
    statement = state.statement
    table = getattr(getattr(statement, "table", None), "name", None)
    if table == Answer.__tablename__:
        responses = (
            written_ids(state, "response_id")
            if state.is_insert
            else matching_ids(state, Answer.response_id)
        )
        written = _written(state.session)
        written.answers.update(responses)
        if Response.__tablename__ in _inner_writes(statement):
            # The row written by the same statement (a WITH's UPDATE of the response given
            # by the same parameters: `journey._SAVE_PAGE_POSTGRES`).
            written.rows.update(responses)
    elif table == Response.__tablename__ and not state.is_insert:
        _written(state.session).rows.update(matching_ids(state, Response.id))


def _on_connection_execute(
    connection: Connection,
    statement: Any,
    multiparams: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    options: Mapping[str, Any],
) -> None:
    """A statement run on a guarded session's connection that neither the session's execute
    (`_on_execute`) nor a flush (`_after_flush`) saw: Core on `session.connection()`, the
    legacy bulk methods of the session (saving objects, inserting or updating mappings)."""
    if not isinstance(statement, UpdateBase) or SEEN in options:
        return  # a read, or seen by `_on_execute`: the hot path stops here
    written = connection.info.get(WRITTEN)
    if not isinstance(written, Written) or written.in_flush():
        return  # not a guarded session's, or a flush's (`_after_flush` sees its objects)
    table = getattr(getattr(statement, "table", None), "name", None)
    rows: Sequence[Mapping[str, Any]] = multiparams or ([params] if params else [])
    if table == Answer.__tablename__:
        responses = (
            inserted_ids(statement, rows, "response_id")
            if statement.is_insert
            else changed_ids(connection, statement, rows, Answer.response_id)
        )
        written.answers.update(responses)
        if Response.__tablename__ in _inner_writes(statement):
            written.rows.update(responses)
    elif table == Response.__tablename__ and not statement.is_insert:
        written.rows.update(changed_ids(connection, statement, rows, Response.id))


def _level(change: Callable[[Written], None]) -> Callable[..., None]:
    def on_savepoint_event(connection: Connection, *_rest: object) -> None:
        written = connection.info.get(WRITTEN)
        if isinstance(written, Written):
            change(written)

    return on_savepoint_event


def _before_flush(session: Session, _context: object, _instances: object) -> None:
    _written(session).flushing = True


def _after_flush(session: Session, _context: object) -> None:
    """ORM objects: the flush's new, changed and deleted ones (still listed here)."""
    _written(session).flushing = False
    dirty = (
        found
        for found in session.dirty
        if isinstance(found, Answer | Response)
        and session.is_modified(found, include_collections=False)
    )
    for found in (*session.new, *session.deleted, *dirty):
        if isinstance(found, Answer):
            _written(session).answers.add(found.response_id)
        elif isinstance(found, Response):
            _written(session).rows.add(found.id)


def check(session: Session, *, strict: bool) -> set[int]:
    """Before the outer commit: the responses whose answers were written without their row
    (none when every writer keeps the rule). Strict: raise; else update those rows here."""
    written = session.info.get(WRITTEN)
    if not isinstance(written, Written) or not written.any_answers():
        return set()
    session.flush()  # objects added since the last flush are seen only then
    missing = written.missing()
    if not missing:
        return set()
    if strict:
        raise AnswersWithoutTheirRow(
            f"answers of responses {sorted(missing)[:10]} written without updating their row "
            "in the same transaction (journey/row_guard.py)"
        )
    log.error(
        "answers of %d responses written without updating their row: rows updated at commit "
        "(journey/row_guard.py)",
        len(missing),
    )
    ordered = sorted(missing)
    for start in range(0, len(ordered), CHUNK):
        session.execute(
            update(Response)
            .where(Response.id.in_(ordered[start : start + CHUNK]))
            .values(updated_at=Response.updated_at),
            execution_options={"synchronize_session": False},
        )
    return missing


def install(sessions: sessionmaker[Session], *, strict: bool) -> None:
    """Check the rule in every transaction of `sessions`' sessions (module doc)."""

    def before_commit(session: Session) -> None:
        if session.in_nested_transaction():  # a savepoint's release: checked at the end
            return
        check(session, strict=strict)

    def on_begin(session: Session, _transaction: object, connection: Connection) -> None:
        # The connection's statements and savepoints are followed while the session holds
        # it (`_on_connection_execute`, `_level`): its `info` (kept with the pooled DBAPI
        # connection) names the session's record until the transaction ends.
        written = _written(session)
        info = connection.info
        if info.get(WRITTEN) is not written:
            info[WRITTEN] = written
            written.bound.append(info)

    def on_end(session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:
            written = session.info.pop(WRITTEN, None)
            if isinstance(written, Written):
                for info in written.bound:
                    if info.get(WRITTEN) is written:
                        del info[WRITTEN]

    def on_soft_rollback(session: Session, _previous: SessionTransaction) -> None:
        found = session.info.get(WRITTEN)
        if isinstance(found, Written):  # a flush that failed: no `after_flush`
            found.flushing = False

    engine = sessions.kw["bind"]
    event.listen(sessions, "do_orm_execute", _on_execute)
    event.listen(sessions, "before_flush", _before_flush)
    event.listen(sessions, "after_flush", _after_flush)
    event.listen(sessions, "before_commit", before_commit)
    event.listen(sessions, "after_begin", on_begin)
    event.listen(sessions, "after_transaction_end", on_end)
    event.listen(sessions, "after_soft_rollback", on_soft_rollback)
    event.listen(engine, "before_execute", _on_connection_execute)
    event.listen(engine, "savepoint", _level(Written.savepoint))
    event.listen(engine, "release_savepoint", _level(Written.release))
    event.listen(engine, "rollback_savepoint", _level(Written.rollback_savepoint))
