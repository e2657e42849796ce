"""What an INSERT, UPDATE or DELETE run through a session writes: the ids it names or will
change. Shared by the session hooks that follow writes (the dashboard facts,
evaluation/facts.py, and the row guard, journey/row_guard.py): here, below both, so neither
package imports the other."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Connection, select
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList


def written_ids(state: ORMExecuteState, name: str) -> set[int]:
    """The values of `name` an INSERT writes, from its parameters (a row or many)."""
    given: Any = state.parameters
    rows: list[Mapping[str, Any]] = (
        list(given) if isinstance(given, list) else [given] if given else []
    )
    return inserted_ids(state.statement, rows, name)


def inserted_ids(statement: Any, rows: Sequence[Mapping[str, Any]], name: str) -> set[int]:
    """The values of `name` an INSERT writes: from its parameters (a row or many), else from
    the statement's own values (`insert(...).values(...)`, compiled to read them)."""
    found = {row[name] for row in rows if row.get(name) is not None}
    if not found:
        value = statement.compile().params.get(name)
        if value is not None:
            found = {value}
    if not found:
        raise RuntimeError(f"an INSERT into {statement} gives no {name}")
    return found


def changed_ids(
    connection: Connection, statement: Any, rows: Sequence[Mapping[str, Any]], column: Any
) -> set[int]:
    """`matching_ids` for a statement run on a Connection (no ORM state): the values of
    `column` in the rows the UPDATE or DELETE will change, for each of its parameter sets
    (an executemany), from the statement when it says them, else read first on the same
    connection (in the same transaction)."""
    found: set[int] = set()
    where = getattr(statement, "whereclause", None)
    for given in rows or ({},):
        bound = _bound_by(statement, given, column)
        if bound is not None:
            found |= bound
            continue
        query = select(column).distinct()
        if where is not None:
            query = query.where(where)
        found.update(connection.scalars(query, dict(given)))
    return found


def matching_ids(state: ORMExecuteState, column: Any) -> set[int]:
    """The values of `column` in the rows the UPDATE or DELETE will change: from the
    statement itself when it says them (`_bound`), else read before it runs."""
    bound = _bound(state, column)
    if bound is not None:
        return bound
    # Read once per statement run: the row guard's hook (journey/row_guard.py), run after
    # the dashboard facts' hook (evaluation/facts.py) for the same statement, asks the same
    # (and forgets it: `forget_matched`).
    known = state.session.info.get(MATCHED)
    if (
        isinstance(known, tuple)
        and known[0] is state.statement
        and known[1] is state.parameters
        and known[2] is column
    ):
        return set(known[3])
    where = state.statement.whereclause  # type: ignore[attr-defined]
    query = select(column).distinct()
    if where is not None:
        query = query.where(where)
    given = state.parameters if isinstance(state.parameters, dict) else {}
    found = set(state.session.connection().scalars(query, given))
    state.session.info[MATCHED] = (state.statement, state.parameters, column, frozenset(found))
    return found


MATCHED = "selfcheck.written.matched"


def forget_matched(session: Session) -> None:
    """Once every hook saw a statement: what `matching_ids` read for it is not kept."""
    session.info.pop(MATCHED, None)


def _bound(state: ORMExecuteState, column: Any) -> set[int] | None:
    return _bound_by(state.statement, state.parameters or {}, column)


def _bound_by(statement: Any, given: Any, column: Any) -> set[int] | None:
    """The values of `column` in the rows an UPDATE or DELETE changes, when its WHERE names
    them itself: `column = :value` or `column IN (:values)`, alone or ANDed with other
    conditions (a page save's `DELETE … WHERE response_id = :response_id AND variable IN …`).
    Every row it changes then has one of these values: no query (issue 18: a page save read
    them with a `SELECT DISTINCT`, one of its round trips). None when the WHERE does not
    say (the caller reads them)."""
    where = getattr(statement, "whereclause", None)
    if where is None or not isinstance(given, dict):
        return None
    conditions = (
        where.clauses
        if isinstance(where, BooleanClauseList) and where.operator is operators.and_
        else (where,)
    )
    target = getattr(column, "expression", column)  # an ORM attribute's column
    for condition in conditions:
        if not isinstance(condition, BinaryExpression):
            continue
        left, right = condition.left, condition.right
        if not (
            isinstance(left, Column)
            and isinstance(right, BindParameter)
            and isinstance(target, Column)
            and left.name == target.name
            and left.table.name == target.table.name
        ):
            continue
        if right.callable is not None:
            continue
        value: Any = given.get(right.key, right.value)
        if condition.operator is operators.eq:
            values: list[Any] = [value]
        elif condition.operator is operators.in_op and isinstance(value, list | tuple):
            values = list(value)
        else:
            continue
        if values and all(type(found) is int for found in values):
            return set(values)
    return None
