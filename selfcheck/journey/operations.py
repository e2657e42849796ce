"""The beneficiary's journey through one questionnaire: start, save a page, navigate, submit.

Every operation is safe to repeat: a resent start finds the row its token created, a page
saved twice holds the last values, and a second submit changes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Executable,
    Integer,
    String,
    Table,
    Text,
    any_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.sql.elements import Label

from selfcheck.journey import schedule
from selfcheck.platform import clock, codes, db
from selfcheck.platform.models import (
    MAX_ROW_ID,
    Answer,
    Beneficiary,
    Channel,
    FollowupReminder,
    Response,
    StaffUser,
    Status,
    Structure,
    utcnow,
)
from selfcheck.policy import can_access_structure
from selfcheck.questionnaire.model import (
    FOLLOWUP_FORMS,
    FORM_RULES,
    Definition,
    FormKind,
    Item,
    Page,
    Variable,
    Wording,
)

Answers = dict[str, tuple[str, ...]]
CODE_ATTEMPTS = 5


class JourneyError(Exception):
    """A request the journey cannot honour; `reason` tells the view which message to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownCode(JourneyError):
    def __init__(self) -> None:
        super().__init__("unknown_code")


class NextStep(enum.Enum):
    START_BEFORE = "start_before"  # a code printed on a paper form, never used yet
    BEING_TYPED = "being_typed"  # a paper form a mediator has started typing in
    RESUME = "resume"
    START_AFTER = "start_after"
    START_FOLLOWUP = "start_followup"  # a follow-up is open: the code leads straight to it
    FOLLOWUP_WAITING = "followup_waiting"  # the end form is sent, the follow-up not open yet
    SUMMARY = "summary"


@dataclass(frozen=True)
class CodeRoute:
    step: NextStep
    beneficiary: Beneficiary
    response: Response | None
    followup: schedule.FollowupStatus | None = None


# --- reading ---------------------------------------------------------------------------


def answers_of(response: Response) -> Answers:
    collected: dict[str, list[str]] = {}
    for answer in response.answers:
        collected.setdefault(answer.variable, []).append(answer.value)
    return {variable: tuple(values) for variable, values in collected.items()}


def load_response(session: Session, response_id: int) -> Response | None:
    """The response with its answers and its beneficiary (every page shows the code).

    Joining the beneficiary saves the lazy load a page would otherwise trigger: one query
    less per page view (see benchmarks/README.md).
    """
    return session.scalar(
        select(Response)
        .where(Response.id == response_id)
        .options(selectinload(Response.answers), joinedload(Response.beneficiary))
    )


def load_sent_page_response(session: Session, response_id: int) -> Response | None:
    """The response for the thank-you page, with its person, the person's structure and all
    the person's responses (what the page, `come_back_opening` and the reminder block read),
    by one statement: the lazy loads of the person's responses and structure, and the
    answers (not shown there), were 3 more round trips on PostgreSQL (issue 18, tenth pass).
    A response's answers are still loaded if something asks for them."""
    person = joinedload(Response.beneficiary)
    return (
        session.scalars(
            select(Response)
            .where(Response.id == response_id)
            .options(
                person.joinedload(Beneficiary.structure),
                person.joinedload(Beneficiary.responses),
            )
        )
        .unique()
        .first()
    )


def load_person(session: Session, person_id: int) -> Beneficiary | None:
    """A person with their structure, their responses and the responses' answers (the
    summary page reads them all), by two statements: the person, the structure and the
    responses joined, then every response's answers at once. `session.get` and lazy loads
    took one statement for each (4 for one questionnaire, 5 for two) (issue 18, tenth pass)."""
    return (
        session.scalars(
            select(Beneficiary)
            .where(Beneficiary.id == person_id)
            .options(
                joinedload(Beneficiary.structure),
                joinedload(Beneficiary.responses).selectinload(Response.answers),
            )
        )
        .unique()
        .first()
    )


# Built once, as `_STATE_QUERY` below: building a statement's clauses costs more than running
# it (SQLite) on every page save. On the tables, not the mapped classes: plain Core statements
# (the session's hooks, the dashboard facts', still see them), without the ORM's bulk
# machinery, which synchronised the session's objects and prepared the rows of every page
# save (a sixth of its CPU on PostgreSQL, issue 18); a page save holds no answer object.
_ANSWERS: Table = cast(Table, Answer.__table__)
_DELETE_PAGE = delete(_ANSWERS).where(
    _ANSWERS.c.response_id == bindparam("response_id"),
    _ANSWERS.c.variable.in_(bindparam("variables", expanding=True)),
)
_INSERT_ANSWERS = insert(_ANSWERS)


@dataclass(frozen=True)
class ResponseState:
    """What a page view needs of a response, read with two plain queries and no ORM objects.

    Question pages are the hot path (see benchmarks/README.md); writes still go through the
    ORM `Response`.
    """

    id: int
    form: FormKind
    status: str
    furthest_page: str | None
    code: str
    structure_slug: str
    answers: Answers
    wording: Wording = Wording.STANDARD
    # PostgreSQL, `read_state_to_save`: the response row's version as read (its `xmin`, the
    # transaction that last updated it), which `save_read_page` requires unchanged.
    row_version: str | None = None

    @property
    def is_submitted(self) -> bool:
        return self.status == Status.SUBMITTED.value


# Built once: constructing a SELECT costs more than running it on the hot page path. One round
# trip: the response's columns repeat on each of its answer rows (none: one row, NULL answer).
_STATE_QUERY = (
    select(
        Response.form,
        Response.status,
        Response.furthest_page,
        Response.wording,
        Beneficiary.code,
        Structure.slug,
        Answer.variable,
        Answer.value,
    )
    .join(Beneficiary, Beneficiary.id == Response.beneficiary_id)
    .join(Structure, Structure.id == Response.structure_id)
    .outerjoin(Answer, Answer.response_id == Response.id)
    .where(Response.id == bindparam("response_id"))
    .order_by(Answer.id)
)


# A page save reads the state with the response's row locked until commit (PostgreSQL: the
# answers' side of the outer join cannot be locked, nor need it be: the response's lock is the
# one every writer of its answers takes first; SQLite serialises writers by itself).
_LOCKED_STATE_QUERY = _STATE_QUERY.with_for_update(of=Response)
# PostgreSQL: when the locked read waits for another transaction holding the row (READ
# COMMITTED), it re-checks the row as that transaction left it but keeps the answers of its own
# snapshot, taken before that transaction committed: stale answers "read under the lock"
# (attack10, round 17). The row's version as locked (the newest) and as in the statement's
# snapshot tell it: when they differ, the state is read again, the lock being held by then.
_SNAPSHOT_RESPONSE = cast(Table, Response.__table__).alias("snapshot_response")
_VERSIONS: tuple[Label[Any], Label[Any]] = (
    literal_column("response.xmin::text").label("locked_version"),
    select(literal_column("snapshot_response.xmin::text"))
    .select_from(_SNAPSHOT_RESPONSE)
    .where(_SNAPSHOT_RESPONSE.c.id == bindparam("response_id"))
    .scalar_subquery()
    .label("snapshot_version"),
)
_LOCKED_STATE_POSTGRES = _STATE_QUERY.add_columns(*_VERSIONS).with_for_update(of=Response)
# The same, on PostgreSQL, also telling the commit not to wait for the disk (`db.no_flush_wait`).
_LOCKED_STATE_NO_WAIT = _STATE_QUERY.add_columns(
    *_VERSIONS, db.no_flush_wait_column()
).with_for_update(of=Response)


def load_state(session: Session | Connection, response_id: int) -> ResponseState | None:
    """The response's state, read in `session`'s transaction, or on a bare `Connection`
    (a GET of a question page: `platform.db.read_connection`, no ORM session).

    On a bare connection the SELECT is sent as its SQL text, compiled once per dialect, on
    the connection's own DBAPI cursor (`_read_rows`): SQLAlchemy's `exec_driver_sql` built an
    execution context, a result and its rows around it, about half of the read's time
    (docs/performance.md, "Request overhead", sixth and seventh passes). Same SQL, same
    connection and transaction rules (the connection's: autocommit on PostgreSQL for
    `db.reader`), and the statement events still see it."""
    if isinstance(session, Session):
        return _state(session.connection(), _STATE_QUERY, response_id)
    sql, positional = _state_sql(session.dialect)
    params = (response_id,) if positional else {"response_id": response_id}
    return _state_of(response_id, _read_rows(session, sql, params))


def read_state(reader: Engine, response_id: int) -> ResponseState | None:
    """`load_state` on a pooled connection of `reader` (`platform.db.Database.reader`),
    taken and given back here: what a question page served before Flask reads
    (`journey.fast_page`).

    When nothing hangs on SQLAlchemy's `Connection` for this read (`_bare_reader`: the
    engine's own settings, no connection or statement listener, no SQL echo; the reader in
    production, on SQLite and, since round 21, on PostgreSQL, whose reader is an engine in
    autocommit from each connection's start) the statement goes on a DBAPI connection of
    the pool directly: the same pool checkout and checkin (pings, reset on return), the same
    SQL and rows, without building and closing a `Connection` around it (issue 18, round
    18). Otherwise through `reader.connect()`."""
    if not _bare_reader(reader):
        with reader.connect() as connection:
            return load_state(connection, response_id)
    sql, positional = _state_sql(reader.dialect)
    params = (response_id,) if positional else {"response_id": response_id}
    dbapi_connection = reader.raw_connection()
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(sql, params)
            rows: Sequence[Sequence[Any]] = cursor.fetchall()
        finally:
            cursor.close()
    except BaseException:
        dbapi_connection.invalidate()  # as `_read_rows`: never reused after a failed read
        raise
    finally:
        dbapi_connection.close()  # back to the pool
    return _state_of(response_id, rows)


def _bare_reader(reader: Engine) -> bool:
    """Whether a `Connection` of `reader` would do nothing for one read but take and give
    back its pooled DBAPI connection: no execution option (such as an isolation level set
    per connection), no SQL echo, no listener of a new connection or of statements."""
    dispatch = reader.dispatch
    return not (
        reader.get_execution_options()
        or reader.echo
        or dispatch.engine_connect
        or dispatch.before_cursor_execute
        or dispatch.after_cursor_execute
    )


def _read_rows(connection: Connection, sql: str, params: Any) -> Sequence[Sequence[Any]]:
    """The rows of one statement, sent on `connection`'s DBAPI cursor: what
    `connection.exec_driver_sql(sql, params).all()` returns (text SQL: no result types, so
    the same values), without its execution context and result objects.

    What SQLAlchemy does around a statement is kept where something depends on it: the
    `before_cursor_execute` and `after_cursor_execute` listeners are called as SQLAlchemy
    calls them (no execution context: None), so the round-trip counters of the tests and of
    `benchmarks/sql_counter.py` count it; with the engine's SQL echo on, the statement goes
    through `exec_driver_sql` to be logged; and a failed statement invalidates the pooled
    connection (SQLAlchemy would only for a lost connection: stricter, never reused broken).
    Reads, and one write: `save_read_page`'s statement, committed on its own (autocommit)."""
    if connection.engine.echo:
        return connection.exec_driver_sql(sql, params).all()
    dbapi_connection = connection.connection
    cursor = dbapi_connection.cursor()
    try:
        dispatch = connection.dispatch
        for listener in dispatch.before_cursor_execute:
            sql, params = listener(connection, cursor, sql, params, None, False)
        cursor.execute(sql, params)
        for listener in dispatch.after_cursor_execute:
            listener(connection, cursor, sql, params, None, False)
        rows: Sequence[Sequence[Any]] = cursor.fetchall()
    except BaseException:
        with contextlib.suppress(Exception):
            cursor.close()
        connection.invalidate()
        raise
    cursor.close()
    return rows


_STATE_SQL: dict[str, tuple[str, bool]] = {}


def _state_sql(dialect: Dialect) -> tuple[str, bool]:
    """`_STATE_QUERY` as the dialect's SQL text, and whether its one parameter is positional."""
    found = _STATE_SQL.get(dialect.name)
    if found is None:
        compiled = _STATE_QUERY.compile(dialect=dialect)
        assert list(compiled.params) == ["response_id"]
        found = _STATE_SQL[dialect.name] = (str(compiled), bool(compiled.positional))
    return found


# PostgreSQL: the state with the version of the response's row (`save_read_page`).
_VERSIONED_STATE_SQL: dict[str, str] = {}


def read_state_to_save(connection: Connection, response_id: int) -> ResponseState | None:
    """The state a page save starts from on PostgreSQL, read without a transaction nor a lock
    (a page view's one `SELECT`, `load_state`), with the response row's version: the save then
    writes only if no one changed the row since (`save_read_page`). 1 round trip where
    `lock_state` took 2 (BEGIN, the locked read) and its COMMIT a third (issue 18, round 17)."""
    sql = _VERSIONED_STATE_SQL.get("postgresql")
    if sql is None:
        query = _STATE_QUERY.add_columns(literal_column("response.xmin::text").label("row_version"))
        compiled = query.compile(dialect=connection.dialect)
        assert list(compiled.params) == ["response_id"] and not compiled.positional
        sql = _VERSIONED_STATE_SQL["postgresql"] = str(compiled)
    # On the DBAPI cursor, as a page view's read (`_read_rows`): no execution context nor
    # result objects around the one statement (round 18).
    rows = _read_rows(connection, sql, {"response_id": response_id})
    state = _state_of(response_id, rows)
    if state is None:
        return None
    return dataclasses.replace(state, row_version=rows[0][_ROW_VERSION])


def lock_state(
    session: Session, response_id: int, *, no_flush_wait: bool = False
) -> ResponseState | None:
    """The response's state, its row locked until commit: what a page save reads first
    (`save_locked_page`). One statement where reading the state then locking the response
    took two (a round trip of a page save on PostgreSQL, issue 18); the
    answers are read under the lock. `no_flush_wait`: as `db.no_flush_wait`, with the same
    statement (on PostgreSQL; SQLite: nothing to do)."""
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    if not postgres:
        return _state(connection, _LOCKED_STATE_QUERY, response_id)
    query = _LOCKED_STATE_NO_WAIT if no_flush_wait else _LOCKED_STATE_POSTGRES
    rows = connection.execute(query, {"response_id": response_id}).all()
    if rows and rows[0].locked_version != rows[0].snapshot_version:
        # Waited for another writer of the row: its answers were not in this statement's
        # snapshot. Read again (a new snapshot; the row's lock is ours now, nothing waits).
        rows = connection.execute(query, {"response_id": response_id}).all()
    return _state_of(response_id, rows)


def _state(connection: Connection, query: Executable, response_id: int) -> ResponseState | None:
    return _state_of(response_id, connection.execute(query, {"response_id": response_id}).all())


# The columns of `_STATE_QUERY`, by position: rows from SQLAlchemy and from a DBAPI cursor.
_FORM, _STATUS, _FURTHEST, _WORDING, _CODE, _SLUG, _VARIABLE, _VALUE = range(8)
# `read_state_to_save` adds the row's version after them.
_ROW_VERSION = 8


def _state_of(response_id: int, rows: Sequence[Sequence[Any]]) -> ResponseState | None:
    if not rows:
        return None
    collected: dict[str, list[str]] = {}
    for row in rows:
        variable = row[_VARIABLE]
        if variable is not None:
            collected.setdefault(variable, []).append(row[_VALUE])
    row = rows[0]
    return ResponseState(
        id=response_id,
        form=FormKind(row[_FORM]),
        status=row[_STATUS],
        furthest_page=row[_FURTHEST],
        code=row[_CODE],
        structure_slug=row[_SLUG],
        answers={variable: tuple(values) for variable, values in collected.items()},
        wording=wording_of(row[_WORDING]),
    )


def wording_of(value: str | None) -> Wording:
    """The stored wording; anything unexpected reads as the standard one."""
    try:
        return Wording(value or Wording.STANDARD)
    except ValueError:
        return Wording.STANDARD


def is_visible(item: Item, answers: Mapping[str, tuple[str, ...]]) -> bool:
    return item.show_if is None or item.show_if.is_met(answers)


def visible_items(
    page: Page, form: FormKind, answers: Mapping[str, tuple[str, ...]]
) -> tuple[Item, ...]:
    return tuple(item for item in page.items_for(form) if is_visible(item, answers))


def visible_pages(definition: Definition, form: FormKind, answers: Answers) -> tuple[Page, ...]:
    return tuple(page for page in definition.screens(form) if visible_items(page, form, answers))


def page_variables(page: Page, form: FormKind, answers: Answers) -> tuple[Variable, ...]:
    visible = {item.code for item in visible_items(page, form, answers)}
    return tuple(
        variable
        for variable in _definition_variables_on(page, form)
        if variable.item.code in visible
    )


def unanswered_task_rows(page: Page, form: FormKind, answers: Answers) -> tuple[Variable, ...]:
    """The task rows (autonomy ladder questions) of a page left blank: warned about once,
    never silently dropped (issue 12)."""
    return tuple(
        variable
        for variable in page_variables(page, form, answers)
        if variable.item.competence is not None and not answers.get(variable.code)
    )


def _definition_variables_on(page: Page, form: FormKind) -> tuple[Variable, ...]:
    return page.variables_for(form)


def neighbour_page(
    definition: Definition, form: FormKind, page_code: str, answers: Answers, step: int
) -> Page | None:
    """The visible page `step` places after (1) or before (-1) `page_code`, if any.

    The current page may itself have become hidden, so we walk the full page order.
    """
    order = definition.screens(form)
    index = next((i for i, page in enumerate(order) if page.code == page_code), None)
    if index is None:
        # A page of the item bank that a layout screen now shows (a retrospective form
        # started before its layout changed): walk on from the last screen showing it.
        holding = [i for i, page in enumerate(order) if page_code in {p.code for p in page.parts}]
        index = holding[-1] if holding else None
    if index is None:
        return None
    visible = {page.code for page in visible_pages(definition, form, answers)}
    index += step
    while 0 <= index < len(order):
        if order[index].code in visible:
            return order[index]
        index += step
    return None


def is_new_follow_up(page: Page, form: FormKind, answers: Answers) -> bool:
    """A page of conditional questions only, none answered yet: it has just been opened."""
    items = page.items_for(form)
    return all(item.show_if is not None for item in items) and not any(
        answers.get(variable.code) for variable in page_variables(page, form, answers)
    )


def missing_required(
    definition: Definition, form: FormKind, answers: Answers
) -> list[tuple[Page, Variable]]:
    missing = []
    for page in visible_pages(definition, form, answers):
        for variable in page_variables(page, form, answers):
            if variable.item.required and not answers.get(variable.code):
                missing.append((page, variable))
    return missing


def resume_page(
    definition: Definition, response: Response | ResponseState, answers: Answers
) -> Page | None:
    """Where to send someone who comes back: the page after the furthest one they saved."""
    form = FormKind(response.form)
    pages = visible_pages(definition, form, answers)
    if not pages:
        return None
    if response.furthest_page is None:
        return pages[0]
    after = neighbour_page(definition, form, response.furthest_page, answers, 1)
    return after  # None means: everything seen, go to the check page


# --- writing ---------------------------------------------------------------------------


def start_response(
    session: Session,
    definition: Definition,
    structure: Structure,
    form: FormKind,
    locale: str,
    start_token: str,
    channel: Channel = Channel.ONLINE,
    wording: Wording = Wording.STANDARD,
    *,
    token_unused: bool = False,
) -> Response:
    """Create a beneficiary with a fresh code and their first response, once per token.

    `wording` is the one the person chose at the start (standard or easy-read); it is kept
    with the response, so a resumed questionnaire reads the same way. `token_unused`: the
    caller has just read, in this transaction, that no response has this token (the start
    view does, to know whether to count the start): it is not read again (a round trip,
    issue 18); a start with the same token at the same moment still meets the unique index
    under the savepoint below.
    """
    if not token_unused:
        existing = session.scalar(select(Response).where(Response.start_token == start_token))
        if existing is not None:
            return existing
    for _attempt in range(CODE_ATTEMPTS):
        beneficiary = Beneficiary(code=codes.generate_code(), structure_id=structure.id)
        response = _new_response(definition, beneficiary, structure.id, form, locale, channel)
        response.wording = wording.value
        response.start_token = start_token
        try:
            # A savepoint: a conflict undoes these two rows only, never the caller's work.
            with session.begin_nested():
                session.add_all([beneficiary, response])
            # New in this transaction, hence seen by no other until it commits: see save_page.
            db.hold_in_progress(session, response.id)
            return response
        except IntegrityError:
            existing = session.scalar(select(Response).where(Response.start_token == start_token))
            if existing is not None:  # the same start arrived twice at once
                return existing
    raise JourneyError("code_generation")  # 5 collisions of 40-bit codes: something is wrong


def start_after(
    session: Session,
    definition: Definition,
    beneficiary: Beneficiary,
    locale: str,
    wording: Wording | None = None,
) -> Response:
    """Open (or find) the 'after' questionnaire of someone who completed a 'before'.

    Without an explicit choice, it keeps the wording of the person's earlier answers.
    """
    if wording is None:
        earlier = sorted(beneficiary.responses, key=lambda response: response.id)
        wording = wording_of(earlier[-1].wording) if earlier else Wording.STANDARD
    return open_form(session, definition, beneficiary, FormKind.AFTER, locale, wording=wording)


def open_form(
    session: Session,
    definition: Definition,
    beneficiary: Beneficiary,
    form: FormKind,
    locale: str,
    channel: Channel = Channel.ONLINE,
    wording: Wording = Wording.STANDARD,
) -> Response:
    """Open (or find: one per person and form) a questionnaire for an existing code."""
    found = _response_of(session, beneficiary.id, form)
    if found is not None:
        return found
    try:
        with session.begin_nested():  # a savepoint, as in start_response
            response = _new_response(
                definition, beneficiary, beneficiary.structure_id, form, locale, channel
            )
            response.wording = wording.value
            session.add(response)
    except IntegrityError:  # the same form opened at the same moment elsewhere
        session.expire(beneficiary, ["responses"])
        found = _response_of(session, beneficiary.id, form)
        if found is None:
            raise
        return found
    db.hold_in_progress(session, response.id)  # new, as in start_response
    return response


def create_codes(session: Session, structure: Structure, count: int) -> list[Beneficiary]:
    """Fresh codes with no answers yet, to print on paper forms (a batch for a session)."""
    created: list[Beneficiary] = []
    while len(created) < count:
        batch = [
            Beneficiary(code=codes.generate_code(), structure_id=structure.id)
            for _ in range(count - len(created))
        ]
        try:
            with session.begin_nested():  # a savepoint, as in start_response
                session.add_all(batch)
            created += batch
        except IntegrityError:  # a 40-bit collision: draw that batch again
            pass
    return created


def _new_response(
    definition: Definition,
    beneficiary: Beneficiary,
    structure_id: int,
    form: FormKind,
    locale: str,
    channel: Channel,
) -> Response:
    return Response(
        beneficiary=beneficiary,
        structure_id=structure_id,
        form=form.value,
        definition_id=definition.id,
        definition_version=definition.version,
        channel=channel.value,
        locale=locale,
        status=Status.IN_PROGRESS.value,
        # None yet, and known: the first page chosen after the start reads no answers back.
        answers=[],
    )


def _response_of(session: Session, beneficiary_id: int, form: FormKind) -> Response | None:
    return session.scalar(
        select(Response).where(
            Response.beneficiary_id == beneficiary_id, Response.form == form.value
        )
    )


def save_page(
    session: Session,
    definition: Definition,
    response: Response,
    page: Page,
    values: Mapping[str, Sequence[str]],
) -> Answers:
    """Replace the answers of one page's visible variables, in one transaction.

    `values` comes from a validated form; we still refuse anything that is not an option
    of its item, so a bug upstream cannot store a value outside the scale. Returns every
    answer of the response as saved, so that the caller need not read them again after the
    commit (on PostgreSQL that was a transaction of its own: 4 to 5 more round trips).
    The journey's views save with `lock_state` and `save_locked_page` instead (no ORM
    objects, fewer statements); this one serves the demo and the tests.
    """
    if lock_for_writing(session, response) != Status.IN_PROGRESS.value:
        raise JourneyError("already_submitted")
    form = FormKind(response.form)
    after = _replace_page(
        session, definition, response.id, form, page, values, answers_of(response)
    )
    response.furthest_page = _furthest(definition, form, response.furthest_page, page)
    response.updated_at = utcnow()
    session.flush()
    session.expire(response, ["answers"])
    # Read under the row's lock, and a page save does not change it: the dashboard facts need
    # not read it again at commit (a draft page changes no fact; issue 18).
    db.hold_in_progress(session, response.id)
    return after


def save_locked_page(
    session: Session,
    definition: Definition,
    state: ResponseState,
    page: Page,
    values: Mapping[str, Sequence[str]],
) -> Answers:
    """`save_page` for a state read by `lock_state`, without ORM objects: the answers as
    `save_page` writes them, the furthest page and the time of the response in one UPDATE
    (the journey's page save, 14 of the 34 requests of a questionnaire: issue 18)."""
    if state.status != Status.IN_PROGRESS.value:
        raise JourneyError("already_submitted")
    furthest = _furthest(definition, state.form, state.furthest_page, page)
    if session.get_bind().dialect.name == "postgresql":
        # One statement for the three writes (`_SAVE_PAGE_POSTGRES`): 4 round trips, not 6.
        after, variables, rows = _page_rows(
            definition, state.id, state.form, page, values, state.answers
        )
        session.execute(
            _SAVE_PAGE_POSTGRES,
            {
                "response_id": state.id,
                "furthest": furthest,
                "now": utcnow(),
                "variables": variables,
                "variables_given": [row["variable"] for row in rows],
                "values_given": [row["value"] for row in rows],
                # Not `definition_version`: a parameter named as a column of the response
                # would be added to the UPDATE's SET (SQLAlchemy's crud).
                "version_given": definition.version,
            },
        )
    else:
        after = _replace_page(
            session, definition, state.id, state.form, page, values, state.answers
        )
        session.execute(
            _TOUCH_RESPONSE, {"response_id": state.id, "furthest": furthest, "now": utcnow()}
        )
    db.hold_in_progress(session, state.id)  # as in save_page
    return after


def save_read_page(
    connection: Connection,
    definition: Definition,
    state: ResponseState,
    page: Page,
    values: Mapping[str, Sequence[str]],
    *,
    no_flush_wait: bool = True,
) -> Answers | None:
    """`save_locked_page` for a state read by `read_state_to_save` (PostgreSQL), as one
    statement committed on its own (`connection`: `platform.db.read_connection`, autocommit),
    which writes only if the response's row is the one read: the same version (`xmin`:
    every writer of a response's answers updates its row in the same transaction) and still
    in progress. Returns every answer as saved, or None when the row changed, was erased or
    sent since (nothing written: the caller starts again with `lock_state`).

    2 round trips for a page save (the read, this statement) instead of 4 (BEGIN, the locked
    read, the writes, COMMIT): issue 18, docs/performance.md part 6, seventh pass.
    `no_flush_wait`: its commit does not wait for the disk (`db.no_flush_wait`), said inside
    the statement (`set_config(…, true)` holds for the statement's own transaction).

    The dashboard facts (evaluation/facts.py) see writes through the ORM session only; this
    one goes around it, and changes no fact: it touches a response in progress only (checked
    by the statement itself, under the row's lock), and the facts count submitted ones (as
    for `save_locked_page`, whose response is noted with `db.hold_in_progress`)."""
    if state.status != Status.IN_PROGRESS.value or state.row_version is None:
        raise JourneyError("already_submitted")
    furthest = _furthest(definition, state.form, state.furthest_page, page)
    after, variables, rows = _page_rows(
        definition, state.id, state.form, page, values, state.answers
    )
    # Sent on the DBAPI cursor like the read (`_read_rows`: the statement events still fire,
    # a failure invalidates the connection); autocommit, so it is committed when answered.
    found = _read_rows(
        connection,
        _SAVE_READ_PAGE_NO_WAIT if no_flush_wait else _SAVE_READ_PAGE,
        {
            "response_id": state.id,
            "row_version": state.row_version,
            "in_progress": Status.IN_PROGRESS.value,
            "furthest": furthest,
            "now": utcnow(),
            "variables": variables,
            "variables_given": [str(row["variable"]) for row in rows],
            "values_given": [str(row["value"]) for row in rows],
            "version_given": definition.version,
        },
    )[0][0]
    return after if found else None


# PostgreSQL: `save_read_page`'s one statement. `touched` locks and updates the response's row
# only if it is the version read and in progress: a writer that updated the row since (a page
# saved from another tab, sending, a paper entry) changed its `xmin`; one that holds it now is
# waited for, and the condition is checked again on the row as it left it (READ COMMITTED's
# recheck of an UPDATE). The DELETE and the INSERT run only if `touched` found the row, so
# nothing of this response can have been committed since the statement's snapshot; the
# INSERT after the DELETE as in `_SAVE_PAGE_POSTGRES` (it reads the DELETE's count; a part of
# a WITH that writes runs to its end whether or not the main query reads it). A response
# erased meanwhile has no row: nothing written.
_SAVE_READ_PAGE_SQL = """\
WITH touched AS (
    UPDATE response SET furthest_page = %(furthest)s, updated_at = %(now)s
    WHERE id = %(response_id)s AND xmin = %(row_version)s::xid AND status = %(in_progress)s
    RETURNING id
), replaced AS (
    DELETE FROM answer
    WHERE response_id = %(response_id)s AND variable = ANY(%(variables)s::text[])
    AND EXISTS (SELECT FROM touched)
    RETURNING id
), added AS (
    INSERT INTO answer (response_id, variable, value, definition_version)
    SELECT %(response_id)s, given.variable, given.value, %(version_given)s
    FROM unnest(%(variables_given)s::text[], %(values_given)s::text[]) AS given(variable, value)
    WHERE EXISTS (SELECT FROM touched) AND (SELECT count(*) FROM replaced) >= 0
    RETURNING id
)
SELECT (SELECT count(*) FROM touched){no_wait}"""
_SAVE_READ_PAGE = _SAVE_READ_PAGE_SQL.format(no_wait="")
_SAVE_READ_PAGE_NO_WAIT = _SAVE_READ_PAGE_SQL.format(
    no_wait=", set_config('synchronous_commit', 'off', true)"
)


# Built once on the table, as the statements above (no object of this response is in the
# session to synchronise).
_RESPONSES: Table = cast(Table, Response.__table__)
_TOUCH_RESPONSE = (
    update(_RESPONSES)
    .where(_RESPONSES.c.id == bindparam("response_id"))
    .values(furthest_page=bindparam("furthest"), updated_at=bindparam("now"))
)


# PostgreSQL: the page's three writes as one statement (a data-modifying CTE), 2 round trips
# of a page save's 6 (issue 18, docs/performance.md part 6, sixth pass):
#
#   WITH touched AS (UPDATE response SET furthest_page = …, updated_at = … WHERE id = …),
#        replaced AS (DELETE FROM answer WHERE response_id = … AND variable = ANY(…))
#   INSERT INTO answer (…) SELECT … FROM unnest(:variables_given, :values_given) …
#   WHERE (SELECT count(*) FROM replaced) >= 0
#
# The parts of a WITH run in no guaranteed order (one not read by the main statement runs
# after it): the INSERT reads the DELETE's count, so every old row of the page is deleted
# before the first new one is inserted, and the unique index on (response, variable, value)
# does not see a value saved again as a duplicate (a row deleted by the transaction itself is
# no conflict). All parts see the database as it was when the statement began: rows of this
# response committed by anyone else since are impossible, its row being locked since the
# state was read (`lock_state`), which must come first. The UPDATE changes neither the
# status nor anything the dashboard counts. The facts' hook sees an INSERT into the answers
# of `response_id` (evaluation/facts.py), as before.
_GIVEN = (
    func.unnest(
        bindparam("variables_given", type_=postgresql.ARRAY(String)),
        bindparam("values_given", type_=postgresql.ARRAY(Text)),
    )
    .table_valued("variable", "value")
    .render_derived(name="given")
)
_TOUCHED = (
    update(_RESPONSES)
    .where(_RESPONSES.c.id == bindparam("response_id"))
    .values(furthest_page=bindparam("furthest"), updated_at=bindparam("now"))
    .returning(_RESPONSES.c.id)
    .cte("touched")
)
_REPLACED = (
    delete(_ANSWERS)
    .where(
        _ANSWERS.c.response_id == bindparam("response_id"),
        _ANSWERS.c.variable == any_(bindparam("variables", type_=postgresql.ARRAY(String))),
    )
    .returning(_ANSWERS.c.id)
    .cte("replaced")
)
_SAVE_PAGE_POSTGRES = (
    insert(_ANSWERS)
    .from_select(
        ["response_id", "variable", "value", "definition_version"],
        select(
            bindparam("response_id", type_=Integer),
            _GIVEN.c.variable,
            _GIVEN.c.value,
            bindparam("version_given", type_=String),
        ).where(select(func.count()).select_from(_REPLACED).scalar_subquery() >= 0),
    )
    .add_cte(_TOUCHED)
)


def _furthest(definition: Definition, form: FormKind, furthest: str | None, page: Page) -> str:
    """The furthest page saved once `page` is: the later of the two in the form's order."""
    order = [p.code for p in definition.screens(form)]
    if furthest is None or (furthest in order and order.index(page.code) > order.index(furthest)):
        return page.code
    return furthest


def _replace_page(
    session: Session,
    definition: Definition,
    response_id: int,
    form: FormKind,
    page: Page,
    values: Mapping[str, Sequence[str]],
    before: Answers,
) -> Answers:
    """Replace the answers of the page's visible variables; every answer, as saved."""
    after, variables, rows = _page_rows(definition, response_id, form, page, values, before)
    session.execute(_DELETE_PAGE, {"response_id": response_id, "variables": variables})
    if rows:
        # A Core executemany, not ORM objects: saving a page was most of a journey's CPU
        # (benchmarks/bench_journey.py), and these rows are never used as objects here.
        session.execute(_INSERT_ANSWERS, rows)
    return after


def _page_rows(
    definition: Definition,
    response_id: int,
    form: FormKind,
    page: Page,
    values: Mapping[str, Sequence[str]],
    before: Answers,
) -> tuple[Answers, list[str], list[dict[str, object]]]:
    """What saving the page writes: every answer once saved, the page's visible variables
    (their answers are replaced) and the answer rows to insert (values checked)."""
    variables = page_variables(page, form, before)
    codes = {variable.code for variable in variables}
    after = {code: given for code, given in before.items() if code not in codes}
    rows: list[dict[str, object]] = []
    for variable in variables:
        given = [value for value in values.get(variable.code, ()) if value != ""]
        _check_values(variable.item, given)
        if given:
            after[variable.code] = tuple(given)
        rows += [
            {
                "response_id": response_id,
                "variable": variable.code,
                "value": value,
                "definition_version": definition.version,
            }
            for value in given
        ]
    return after, [variable.code for variable in variables], rows


def lock_for_writing(session: Session, response: Response) -> str:
    """Lock the response row until commit and return its current status.

    Two saves of the same page at once (a double click) would otherwise both delete then
    both insert. PostgreSQL: SELECT … FOR UPDATE; SQLite serialises writers by itself.
    """
    status: str = session.execute(
        select(Response.status).where(Response.id == response.id).with_for_update()
    ).scalar_one()
    return status


def _check_values(item: Item, values: Sequence[str]) -> None:
    if item.type.check(item, values):
        raise JourneyError("invalid_value")


def _hidden_on_sending(definition: Definition, form: FormKind, answers: Answers) -> list[str]:
    """The answers to questions that ended up hidden, which sending removes (`submit`,
    `submit_locked`); JourneyError when a required answer is missing."""
    if missing_required(definition, form, answers):
        raise JourneyError("missing_required")
    shown = {
        variable.code
        for page in visible_pages(definition, form, answers)
        for variable in page_variables(page, form, answers)
    }
    return [variable for variable in answers if variable not in shown]


def submit(session: Session, definition: Definition, response: Response) -> bool:
    """Mark the response submitted; True if this call did it, False if it already was.

    Answers to questions that ended up hidden (a "which ones?" after changing "yes" to "no")
    are removed first, so stored data always matches what the person last saw.
    """
    if response.is_submitted or lock_for_writing(session, response) != Status.IN_PROGRESS.value:
        return False
    form = FormKind(response.form)
    session.expire(response, ["answers"])  # read them again under the lock
    hidden = _hidden_on_sending(definition, form, answers_of(response))
    if hidden:
        session.execute(
            delete(Answer).where(Answer.response_id == response.id, Answer.variable.in_(hidden))
        )
    # Conditional update: of two simultaneous submits, exactly one changes the row.
    result = session.execute(
        update(Response)
        .where(Response.id == response.id, Response.status == Status.IN_PROGRESS.value)
        .values(status=Status.SUBMITTED.value, submitted_at=utcnow(), updated_at=utcnow())
    )
    session.flush()
    session.refresh(response)
    sent = bool(getattr(result, "rowcount", 0))
    if sent and form in FOLLOWUP_FORMS:
        forget_reminder(session, response.beneficiary_id)  # the follow-up is done
    return sent


def submit_locked(session: Session, definition: Definition, state: ResponseState) -> bool:
    """`submit` for a state read by `lock_state` (the check page's "send"), without ORM
    objects: the answers were read with the response's row locked, so nothing is read
    again (`submit` read the response and its answers, locked the row, read the answers
    again under the lock, then the response and its answers once more after the UPDATE:
    6 statements of the sending's 17 on PostgreSQL, issue 18). The same checks and writes
    as `submit`; True if this call submitted it, False if it already was."""
    if state.is_submitted:
        return False
    hidden = _hidden_on_sending(definition, state.form, state.answers)
    if hidden:
        session.execute(_DELETE_PAGE, {"response_id": state.id, "variables": hidden})
    result = session.execute(_SUBMIT_RESPONSE, {"response_id": state.id, "now": utcnow()})
    sent = bool(getattr(result, "rowcount", 0))
    if sent and state.form in FOLLOWUP_FORMS:  # the follow-up is done: as `forget_reminder`
        session.execute(
            delete(FollowupReminder).where(
                FollowupReminder.beneficiary_id
                == select(Response.beneficiary_id).where(Response.id == state.id).scalar_subquery()
            ),
            execution_options={"synchronize_session": False},
        )
    return sent


# Conditional, as in `submit`: of two simultaneous submits, exactly one changes the row.
_SUBMIT_RESPONSE = (
    update(_RESPONSES)
    .where(
        _RESPONSES.c.id == bindparam("response_id"),
        _RESPONSES.c.status == Status.IN_PROGRESS.value,
    )
    .values(
        status=Status.SUBMITTED.value, submitted_at=bindparam("now"), updated_at=bindparam("now")
    )
)


def forget_reminder(session: Session, beneficiary_id: int) -> None:
    """Delete the person's consented reminder address, if any (follow-up done, reminder
    sent, person deleted or erased: see journey/reminders.py). Never commits."""
    session.execute(
        delete(FollowupReminder).where(FollowupReminder.beneficiary_id == beneficiary_id),
        execution_options={"synchronize_session": False},
    )


# --- codes -----------------------------------------------------------------------------


def find_person_by_id(session: Session, user: StaffUser, person_id: int) -> Beneficiary | None:
    """The person with this database id if `user` may see their structure; None otherwise.

    The staff pages address a person by it (never by the code, which is a credential and
    would stay in a shared computer's browser history). An id of another structure, an
    unknown one and one out of range look the same: the page answers 404.
    """
    if not 0 < person_id <= MAX_ROW_ID:
        return None
    person = session.scalar(
        select(Beneficiary)
        .where(Beneficiary.id == person_id)
        .options(selectinload(Beneficiary.responses), selectinload(Beneficiary.structure))
    )
    if person is None or not can_access_structure(user, person.structure):
        return None
    return person


def find_beneficiary(session: Session, raw_code: str) -> Beneficiary:
    """Normalise and check a typed code (raises codes.InvalidCode), then look it up."""
    code = codes.normalise(raw_code)
    beneficiary = session.scalar(
        select(Beneficiary)
        .where(Beneficiary.code == code)
        .options(selectinload(Beneficiary.responses))
    )
    if beneficiary is None:
        raise UnknownCode()
    return beneficiary


def route_for_code(
    beneficiary: Beneficiary, now: datetime | None = None, zone: ZoneInfo | None = None
) -> CodeRoute:
    """What someone who types their code should see next.

    After the end form: the follow-up when it is open, a page saying when to come back
    before it opens, the summary once every follow-up is sent (`now` and `zone`: the
    application's clock and calendar; the system clock and Paris without them).
    """
    by_form = {response.form: response for response in beneficiary.responses}
    open_response = next((r for r in beneficiary.responses if not r.is_submitted), None)
    if open_response is not None and open_response.channel == Channel.PAPER.value:
        return CodeRoute(NextStep.BEING_TYPED, beneficiary, open_response)
    if open_response is not None:
        return CodeRoute(NextStep.RESUME, beneficiary, open_response)
    if not by_form:
        return CodeRoute(NextStep.START_BEFORE, beneficiary, None)
    if FormKind.BEFORE.value in by_form and FormKind.AFTER.value not in by_form:
        return CodeRoute(NextStep.START_AFTER, beneficiary, None)
    followup = followup_status(beneficiary, now, zone)
    if followup.state is schedule.FollowupState.OPEN:
        return CodeRoute(NextStep.START_FOLLOWUP, beneficiary, None, followup)
    if followup.state is schedule.FollowupState.WAITING:
        return CodeRoute(NextStep.FOLLOWUP_WAITING, beneficiary, None, followup)
    return CodeRoute(NextStep.SUMMARY, beneficiary, None, followup)


def followup_delays(structure: Structure) -> dict[FormKind, int]:
    return schedule.months_of(structure.followup_months, structure.second_followup_months)


def followup_status(
    beneficiary: Beneficiary, now: datetime | None = None, zone: ZoneInfo | None = None
) -> schedule.FollowupStatus:
    """Where this person stands with their follow-ups (see journey.schedule.status)."""
    forms = [
        schedule.SentForm(FormKind(r.form), r.submitted_at if r.is_submitted else None)
        for r in beneficiary.responses
    ]
    return schedule.status(
        forms,
        followup_delays(beneficiary.structure),
        now or utcnow(),
        zone or ZoneInfo(clock.DEFAULT_ZONE),
    )


def come_back_opening(
    beneficiary: Beneficiary, now: datetime | None = None, zone: ZoneInfo | None = None
) -> schedule.Opening | None:
    """When this person should come back with their code: the next follow-up's opening (also
    when it is already open and not answered), None when no follow-up awaits them."""
    state = followup_status(beneficiary, now, zone)
    if state.state in (schedule.FollowupState.WAITING, schedule.FollowupState.OPEN):
        return state.opening
    return None


def start_followup(
    session: Session,
    definition: Definition,
    beneficiary: Beneficiary,
    locale: str,
    now: datetime | None = None,
    zone: ZoneInfo | None = None,
) -> Response:
    """Open (or find: once per person and form) the follow-up that is open for this person.

    Refused (JourneyError) without a sent end form ("followup_without_end") and before the
    follow-up opens ("followup_not_open"). It keeps the wording of the person's end form.
    """
    present = {FormKind(r.form): r.is_submitted for r in beneficiary.responses}
    if FORM_RULES[FormKind.FOLLOWUP].refusal(present) is not None:
        raise JourneyError("followup_without_end")
    state = followup_status(beneficiary, now, zone)
    if state.state is not schedule.FollowupState.OPEN or state.form is None:
        raise JourneyError("followup_not_open")
    earlier = sorted(beneficiary.responses, key=lambda response: response.id)
    wording = wording_of(earlier[-1].wording) if earlier else Wording.STANDARD
    return open_form(session, definition, beneficiary, state.form, locale, wording=wording)


def possible_slug(slug: str) -> bool:
    """Whether a structure's address could be `slug`: not one holding NUL, which PostgreSQL
    refuses as a query parameter (a 500 on `/s/%00`; attack13). No slug ever made has one."""
    return "\x00" not in slug


def find_structure(session: Session, slug: str) -> Structure | None:
    if not possible_slug(slug):
        return None
    return session.scalar(select(Structure).where(Structure.slug == slug))


def find_structure_and_start(
    session: Session, slug: str, start_token: str
) -> tuple[Structure | None, int | None]:
    """The structure of `slug` and the id of the response started with `start_token`, if any
    (a start form sent twice), in one statement: the start's two reads (issue 18)."""
    if not possible_slug(slug):
        return None, None
    started = select(Response.id).where(Response.start_token == start_token).scalar_subquery()
    found = session.execute(select(Structure, started).where(Structure.slug == slug)).first()
    if found is None:
        return None, None
    return found[0], found[1]


@dataclass(frozen=True)
class Place:
    """What the start page shows of a structure, read without ORM objects (`find_place`)."""

    slug: str
    name: str
    archived: bool


# Built once, as `_STATE_QUERY`: the start page is shown twice per journey (issue 18).
_PLACE_QUERY = select(Structure.slug, Structure.name, Structure.archived_at).where(
    Structure.slug == bindparam("slug")
)


def find_place(connection: Connection, slug: str) -> Place | None:
    """The structure of a start link, on a bare connection (`platform.db.read_connection`)."""
    if not possible_slug(slug):
        return None
    row = connection.execute(_PLACE_QUERY, {"slug": slug}).first()
    if row is None:
        return None
    return Place(slug=row.slug, name=row.name, archived=row.archived_at is not None)
