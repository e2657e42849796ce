"""Database-independent backup and restore: a gzipped JSON-lines dump of every table.

The file is readable by any later selfcheck on SQLite or PostgreSQL alike (a SQLite backup
restores into PostgreSQL and back). Layout, one JSON document per line:

    {"format": "selfcheck-backup", "version": 1, "revision": "0005", "created_at": ...,
     "tables": [{"name": "structure", "columns": ["id", ...]}, ...]}
    {"table": "structure", "row": [1, "demo", ...]}
    ...
    {"end": true, "rows": {"structure": 1, ...}}

Dates are ISO 8601 text, binary values (export_selection.lines) base64 text; tables come in
foreign-key dependency order, so a restore inserts parents first. The dump is
read in one snapshot (PostgreSQL: REPEATABLE READ; SQLite: one read transaction) while the
app keeps running. A restore runs in one transaction: it is all there or nothing is.
For large installations the native tools are faster (see docs/operations.md, "Backup and restore").
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from alembic.migration import MigrationContext
from sqlalchemy import (
    Boolean,
    Connection,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    Table,
    func,
    insert,
    select,
    text,
)

from selfcheck.platform import migrate
from selfcheck.platform.models import Base

FORMAT = "selfcheck-backup"
VERSION = 1
BATCH = 1000


class BackupError(Exception):
    """A backup file or a target database we cannot use; the message says why and what to do."""


@dataclass
class BackupReport:
    revision: str
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


# Not in backups: the consented follow-up reminder addresses (journey/reminders.py). They are
# deleted once used; an old backup restored must not bring back an address already erased.
NOT_BACKED_UP = frozenset({"followup_reminder"})


def tables() -> list[Table]:
    """Every table of the models that a backup holds, parents before children."""
    return [t for t in Base.metadata.sorted_tables if t.name not in NOT_BACKED_UP]


def current_revision(connection: Connection) -> str | None:
    revision: str | None = MigrationContext.configure(connection).get_current_revision()
    return revision


# --- backup ----------------------------------------------------------------------------


def backup(engine: Engine, path: Path) -> BackupReport:
    """Write every row of every table to `path` (gzipped JSON lines), from one snapshot."""
    with engine.connect() as connection:
        _begin_snapshot(connection)
        revision = current_revision(connection)
        if revision is None:
            raise BackupError("the database has no schema: nothing to back up")
        report = BackupReport(revision)
        draft = path.with_name(path.name + ".partial")
        try:
            # Owner-only from the first byte (a backup holds every answer): never 0644.
            draft.unlink(missing_ok=True)
            os.close(os.open(draft, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            with gzip.open(draft, "wt", encoding="utf-8") as out:
                _write(out, _header(revision))
                for table in tables():
                    count = 0
                    query = select(table).order_by(*table.primary_key.columns)
                    result = connection.execution_options(yield_per=BATCH).execute(query)
                    for row in result:
                        _write(out, {"table": table.name, "row": [_encode(v) for v in row]})
                        count += 1
                    report.rows[table.name] = count
                _write(out, {"end": True, "rows": report.rows})
        except BaseException:
            draft.unlink(missing_ok=True)
            raise
        connection.rollback()
    draft.replace(path)  # a crash mid-backup never leaves a truncated file under the real name
    return report


def _begin_snapshot(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
    elif connection.dialect.name == "sqlite":
        # pysqlite only opens a transaction before writes; an explicit BEGIN makes every
        # SELECT below read the same WAL snapshot.
        connection.exec_driver_sql("BEGIN")


def _header(revision: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "revision": revision,
        "created_at": datetime.now(UTC).isoformat(),
        "tables": [{"name": t.name, "columns": [c.name for c in t.columns]} for t in tables()],
    }


def _write(out: IO[str], document: dict[str, Any]) -> None:
    out.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
    out.write("\n")


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # SQLite hands back naive UTC datetimes
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    if isinstance(value, bytes | memoryview):  # binary columns: base64 text
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


# --- restore ---------------------------------------------------------------------------


def read_header(path: Path) -> dict[str, Any]:
    with _open(path) as lines:
        return _check_header(next(lines, None))


def restore(engine: Engine, path: Path, force: bool = False) -> BackupReport:
    """Load a backup into `engine`'s database in one transaction.

    An empty database (no schema yet) is first migrated to the backup's revision. A database
    at another revision is refused (upgrade or downgrade it first), and so is one that already
    holds rows, unless `force`: then every table is emptied inside the same transaction.
    """
    header = read_header(path)
    revision: str = header["revision"]
    with engine.connect() as connection:
        existing = current_revision(connection)
    if existing is None:
        migrate.upgrade(engine, revision)
    elif existing != revision:
        raise BackupError(
            f"the backup is at schema revision {revision} and the database at {existing}: "
            f"run 'selfcheck db upgrade {revision}' (or downgrade) on an empty database first"
        )
    columns = {t["name"]: t["columns"] for t in header["tables"]}
    known = {t.name: t for t in tables()}
    for name, names in columns.items():
        table = known.get(name)
        if table is None or [c.name for c in table.columns] != names:
            raise BackupError(f"table {name} of the backup does not match this version")
    report = BackupReport(revision, dict.fromkeys(columns, 0))
    with engine.begin() as connection:
        if _holds_rows(connection):
            if not force:
                raise BackupError("the database is not empty: restore with --force to replace it")
            for table in reversed(Base.metadata.sorted_tables):  # the reminders too
                connection.execute(table.delete())
        with _open(path) as lines:
            next(lines)  # the header, checked above
            _load(connection, lines, known, columns, report)
        _reset_sequences(connection)
    return report


def _load(
    connection: Connection,
    lines: Iterator[dict[str, Any]],
    known: dict[str, Table],
    columns: dict[str, list[str]],
    report: BackupReport,
) -> None:
    batch: list[dict[str, Any]] = []
    current: Table | None = None
    ended = False
    for document in lines:
        if document.get("end"):
            ended = True
            if document.get("rows") != report.rows:
                raise BackupError("the backup's row counts do not match its rows")
            break
        name = document.get("table")
        row = document.get("row")
        table = known.get(name) if isinstance(name, str) else None
        if table is None or name not in columns or not isinstance(row, list):
            raise BackupError("the backup holds a line that is not a table row")
        if len(row) != len(columns[table.name]):
            raise BackupError(f"a row of table {table.name} has the wrong number of values")
        if current is not None and table is not current and batch:
            connection.execute(insert(current), batch)
            batch = []
        current = table
        batch.append(_decode_row(table, columns[table.name], row))
        report.rows[table.name] += 1
        if len(batch) >= BATCH:
            connection.execute(insert(table), batch)
            batch = []
    if current is not None and batch:
        connection.execute(insert(current), batch)
    if not ended:
        raise BackupError("the backup file is truncated (no end marker): it cannot be trusted")


def _decode_row(table: Table, names: list[str], row: list[Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in zip(names, row, strict=True):
        column_type = table.columns[name].type
        if value is not None and isinstance(column_type, DateTime):
            value = datetime.fromisoformat(value)
        elif value is not None and isinstance(column_type, Boolean):
            value = bool(value)
        elif value is not None and isinstance(column_type, LargeBinary):
            if not isinstance(value, str):
                raise BackupError(f"a binary value of table {table.name} is not base64 text")
            try:
                value = base64.b64decode(value, validate=True)
            except ValueError as exc:
                raise BackupError(f"a binary value of table {table.name} is not base64") from exc
        values[name] = value
    return values


def _holds_rows(connection: Connection) -> bool:
    return any(
        connection.execute(select(func.count()).select_from(table)).scalar_one()
        for table in tables()
    )


def _reset_sequences(connection: Connection) -> None:
    """PostgreSQL: move each id sequence past the restored ids (SQLite needs nothing)."""
    if connection.dialect.name != "postgresql":
        return
    for table in tables():
        id_column = table.columns.get("id")
        # Only integer keys have a sequence: the job table's id is a uuid string.
        if id_column is None or not id_column.primary_key:
            continue
        if not isinstance(id_column.type, Integer):
            continue
        connection.execute(
            text(
                "SELECT setval(pg_get_serial_sequence(:table, 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
            ),
            {"table": table.name},
        )


class _open:
    """Iterate the JSON documents of a backup file, with clear errors for a bad file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[str] | None = None

    def __enter__(self) -> Iterator[dict[str, Any]]:
        try:
            self.handle = gzip.open(self.path, "rt", encoding="utf-8")
        except OSError as exc:
            raise BackupError(f"cannot open {self.path}: {exc}") from exc
        return self._documents(self.handle)

    def __exit__(self, *_exc: object) -> None:
        if self.handle is not None:
            self.handle.close()

    def _documents(self, handle: IO[str]) -> Iterator[dict[str, Any]]:
        try:
            for number, line in enumerate(handle, start=1):
                try:
                    document = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BackupError(f"line {number} of the backup is not JSON") from exc
                if not isinstance(document, dict):
                    raise BackupError(f"line {number} of the backup is not a JSON object")
                yield document
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise BackupError(f"{self.path} is not a readable selfcheck backup: {exc}") from exc


def _check_header(document: dict[str, Any] | None) -> dict[str, Any]:
    if document is None or document.get("format") != FORMAT:
        raise BackupError("this file is not a selfcheck backup")
    if document.get("version") != VERSION:
        raise BackupError(f"backup format version {document.get('version')} is not supported")
    if not isinstance(document.get("revision"), str) or not isinstance(
        document.get("tables"), list
    ):
        raise BackupError("the backup header is incomplete")
    return document
