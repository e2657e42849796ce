"""Shared fixtures: an app on a fresh, migrated database per test, its client and session.

Database: a SQLite file in the test's tmp_path, its schema built by the Alembic migrations.
With SELFCHECK_TEST_DATABASE_URL set (a PostgreSQL URL), the same suite runs on that
database instead (and on two spares beside it, taken in turn): each is emptied and migrated
once per session, and every table a test wrote to is emptied (TRUNCATE … RESTART IDENTITY
CASCADE) after it, in a thread, while the next test runs on another one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket
from sqlalchemy import Engine, MetaData, create_engine, event, make_url, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool
from werkzeug.routing import Rule

import selfcheck
from selfcheck import create_app
from selfcheck.accounts import auth
from selfcheck.accounts.structures import create_structure
from selfcheck.platform import migrate, ratelimit, security
from selfcheck.platform.config import ENV_PREFIX
from selfcheck.platform.db import EXTENSION_KEY, Database, make_engine
from selfcheck.platform.jobs import EXTENSION_KEY as JOBS_KEY
from selfcheck.platform.models import Base, Structure
from selfcheck.questionnaire import Definition
from selfcheck.questionnaire.loader import DEFAULT_DEFINITION
from tests import database_use
from tests.support import Visitor, cached_load_definition

TEST_DATABASE_ENV = "SELFCHECK_TEST_DATABASE_URL"


def postgres_database(url: str, suffix: str | None = None) -> str:
    """The URL of database `<name>_<suffix>` beside `url`'s (or `url`'s own without a suffix),
    created if missing (the test role has CREATEDB: scripts/postgres-test-db).

    Its sessions do not wait for the disk at each commit (synchronous_commit off, set on the
    database: every connection of the suite, the apps' included, gets it): a test database
    need not survive a crash of the server, and on a slow disk the wait was most of a
    commit's time. What a test sees of its data does not change.
    """
    base = make_url(url)
    name = f"{base.database}_{suffix}" if suffix else str(base.database)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            connection.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def _worker_database(url: str | None) -> str | None:
    """Under pytest-xdist each worker gets its own PostgreSQL database (`<name>_gw0`, ...), so
    workers never truncate each other's tables."""
    if url is None:
        return None
    return postgres_database(url, os.environ.get("PYTEST_XDIST_WORKER"))


POSTGRES_URL = _worker_database(os.environ.get(TEST_DATABASE_ENV) or None)


def is_postgres() -> bool:
    return POSTGRES_URL is not None


# Variables a test keeps: the suite's own settings, read before any test runs.
_KEPT_VARIABLES = frozenset({TEST_DATABASE_ENV})


@pytest.fixture(scope="session")
def _state_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, _state_home: Path) -> None:
    """No SELFCHECK_* variable of the developer's shell leaks into a test, and the keys the
    apps generate go to the session's folder, not the developer's (config.key_folder)."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX) and name not in _KEPT_VARIABLES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(_state_home))


# --- databases ---------------------------------------------------------------------------


# Databases a test process takes its tests' databases from: POSTGRES_URL and the spares
# beside it (`<name>_spare1`...). A test takes an empty one; after it, the tables it wrote are
# emptied in a thread while the next tests run on the others (_PostgresDatabases). Two spares:
# under load 20, a test waited 0.09 s on average for its database with two, 0.18 s with one
# (8 tests only: the emptying outlasts a short test); each costs a migration at the start of
# each process.
SPARE_DATABASES = 2


@pytest.fixture(scope="session")
def _postgres_engine() -> Iterator[_PostgresDatabases | None]:
    """With PostgreSQL: the test process's databases (POSTGRES_URL and its spares), each
    emptied of whatever is there and migrated to head once."""
    if POSTGRES_URL is None:
        yield None
        return
    urls = [POSTGRES_URL]
    urls += [postgres_database(POSTGRES_URL, f"spare{n}") for n in range(1, SPARE_DATABASES + 1)]
    databases = _PostgresDatabases(urls)
    try:
        with _Sent.paused():
            for engine in databases.engines.values():
                reset_postgres(engine)
                migrate.upgrade(engine)
        yield databases
        databases.finish()
    finally:
        databases.dispose()


# The name of the threads that empty a database after its test (_Sent does not count them).
EMPTIER = "selfcheck-test-emptier"


class _PostgresDatabases:
    """A few test databases of one test process, handed out in turn, each one empty.

    Emptying a database after its test (`_truncate_all`) is mostly waiting: a TRUNCATE makes
    new files for each table and index and its commit waits for the disk (it drops files,
    whatever synchronous_commit says): 0.2-0.9 s of wall time but ~0.05 s of CPU a test on
    the shared machine. So the test is over when it ends: its database is emptied in a
    thread while the next tests run on the others, and handed out again only once that is
    done (an error there stops the next test that would get it, naming the test that left
    it). Each test still starts on an empty database whose identities start at 1.
    """

    def __init__(self, urls: list[str]) -> None:
        self.engines = {url: make_engine(url) for url in urls}
        # (url, the thread emptying it or None, the error it raised, the test that used it)
        self._turns: list[tuple[str, threading.Thread | None, list[BaseException], str]] = [
            (url, None, [], "") for url in urls
        ]

    def take(self) -> str:
        """An empty database (waits until the oldest used one has been emptied)."""
        url, emptying, errors, left_by = self._turns.pop(0)
        if emptying is not None:
            emptying.join()
        if errors:
            raise RuntimeError(
                f"emptying the test database {make_url(url).database} after {left_by} failed"
            ) from errors[0]
        return url

    def give_back(self, url: str, test: str) -> None:
        """`url`'s test is over: empty the tables it wrote, in a thread."""
        errors: list[BaseException] = []
        engine = self.engines[url]

        def empty() -> None:
            try:
                _truncate_all(engine)
            except BaseException as error:  # raised by take(), in the main thread
                errors.append(error)

        thread = threading.Thread(target=empty, name=EMPTIER, daemon=True)
        thread.start()
        self._turns.append((url, thread, errors, test))

    def finish(self) -> None:
        """The session is over: every database emptied (an error there is still raised)."""
        for _ in range(len(self._turns)):
            self._turns.append((self.take(), None, [], ""))

    def dispose(self) -> None:
        for _, emptying, _, _ in self._turns:
            if emptying is not None:
                emptying.join()
        for engine in self.engines.values():
            engine.dispose()


def reset_postgres(engine: Engine) -> None:
    """Drop every table (ours and alembic_version) of the test database."""
    with engine.begin() as connection:
        reflected = MetaData()
        reflected.reflect(connection)
        reflected.drop_all(connection)


# The tables a test wrote to: a heap file that is not empty (TRUNCATE gives a table a new,
# empty file; any row written since, even deleted or rolled back, gave it a page), or an
# identity or serial sequence that was used (a failed insert may draw a number and write
# nothing).
_WRITTEN_TABLES = text(
    """
    SELECT t.relname FROM pg_class t
     WHERE t.relnamespace = current_schema()::regnamespace AND t.relkind = 'r'
       AND t.relname = ANY(:names) AND pg_relation_size(t.oid) > 0
    UNION
    SELECT t.relname FROM pg_depend d
      JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
      JOIN pg_class t ON t.oid = d.refobjid
      JOIN pg_sequences q
        ON q.schemaname = current_schema() AND q.sequencename = s.relname
     WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
       AND d.deptype IN ('a', 'i') AND q.last_value IS NOT NULL
       AND t.relnamespace = current_schema()::regnamespace AND t.relname = ANY(:names)
    """
)


# huey's PostgreSQL storage, its default table prefix (selfcheck.platform.jobs).
HUEY_TABLES = ("huey_kv", "huey_schedule", "huey_task", "huey_counter")


def _truncate_all(engine: Engine) -> None:
    """Empty every table a test wrote to, as if all were truncated.

    Only those: a TRUNCATE costs about 15 ms a table even when it is empty (a new file for the
    table and each of its indexes), 0.3-0.7 s for all 25 under load, after each of the ~1,000
    tests of the PostgreSQL pass; most tests write to a few tables. A table left alone has
    an empty file and unused sequences: exactly what TRUNCATE … RESTART IDENTITY would leave
    (CASCADE still empties the tables that refer to one emptied).
    """
    # The job queue's tables too (huey makes them in the app's database on PostgreSQL): a
    # message a test left (a deferred job's next try) would be the next test's, signed under
    # another app's secret ("Signature mismatch"), or counted as pending.
    names = [table.name for table in Base.metadata.sorted_tables] + list(HUEY_TABLES)
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL lock_timeout = '10s'"))
        written = set(connection.scalars(_WRITTEN_TABLES, {"names": names}))
        if written:
            listed = ", ".join(name for name in names if name in written)
            connection.execute(text(f"TRUNCATE {listed} RESTART IDENTITY CASCADE"))


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    _postgres_engine: _PostgresDatabases | None,
    _migrated_sqlite_template: Path,
) -> Iterator[str]:
    """URL of an empty database whose schema is at the migrations' head."""
    if _postgres_engine is not None:
        url = _postgres_engine.take()
        yield url
        # TRUNCATE, not DELETE (+ VACUUM): deleted rows stay as dead tuples until a vacuum,
        # and a VACUUM of the emptied tables leaves pg_class saying "0 rows in N pages", so
        # the planner then estimates no rows however many the next test writes (measured: a
        # 500-person demo took minutes, nested loops of sequential scans). TRUNCATE resets
        # the statistics to "unknown". It runs in a thread (_PostgresDatabases).
        _postgres_engine.give_back(url, request.node.nodeid)
        return
    # A copy of one migrated file: the same schema as migrating each time, ~50 ms less a test.
    path = tmp_path / "selfcheck-test.db"
    shutil.copyfile(_migrated_sqlite_template, path)
    yield f"sqlite:///{path}"


@pytest.fixture(scope="session")
def _migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at the migrations' head, built once per session by Alembic."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    with _Sent.paused():
        engine = make_engine(f"sqlite:///{path}")
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


# --- the app -----------------------------------------------------------------------------


class SharedBytecode(BytecodeCache):
    """Compiled page templates kept in memory for every app of the test process.

    Each test builds its own app, whose Jinja environment would parse and compile every page
    it renders again (~8 ms a template, several a test). Jinja checks each entry against the
    template's source (a changed file is compiled again), and every app of the suite sets up
    its environment the same way (create_app), so sharing the compiled code changes nothing
    a page shows.
    """

    def __init__(self) -> None:
        self._compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        compiled = self._compiled.get(bucket.key)
        if compiled is not None:
            bucket.bytecode_from_string(compiled)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._compiled[bucket.key] = bucket.bytecode_to_string()


SHARED_BYTECODE = SharedBytecode()


def _share_url_builders() -> None:
    """Every app of a test process reuses werkzeug's URL builders for identical rules.

    Building an app compiles, for each of its ~75 URL rules, two small Python functions that
    `url_for` calls (werkzeug's `Rule._compile_builder`: an AST, then `compile`): ~50 ms of
    the ~56 ms of CPU that `create_app` takes, and the suite builds an app per test. The
    function depends only on the rule's text, parts, defaults and converters and on
    `append_unknown` (it reaches the rule's converters through its first argument at each
    call), so a rule equal in all of these gets the same function.
    """
    original = Rule._compile_builder
    built: dict[tuple[object, ...], Callable[..., tuple[str, str]]] = {}

    def compile_builder(self: Rule, append_unknown: bool = True) -> Any:
        key = (
            self.rule,
            tuple(self._trace),
            repr(sorted((self.defaults or {}).items())),
            tuple(
                (name, type(converter), repr(sorted(_settings(converter))))
                for name, converter in sorted(self._converters.items())
            ),
            append_unknown,
        )
        builder = built.get(key)
        if builder is None:
            builder = built[key] = original(self, append_unknown)
        return builder

    Rule._compile_builder = compile_builder  # type: ignore[method-assign]


def _settings(converter: object) -> list[tuple[str, object]]:
    """A converter's own settings (regex, digits, items…), without the app's URL map."""
    return [(name, value) for name, value in vars(converter).items() if name != "map"]


_share_url_builders()


class RememberingHasher(PasswordHasher):
    """The app's argon2 hasher (same parameters) that verifies each (hash, password) pair once
    per test process and gives the same outcome again.

    Verifying costs ~0.18 s of CPU (argon2id, 64 MiB, the app's real parameters), and most
    view tests sign someone in through the login page, where it is most of their time.
    `tests/staff.py` gives every account of the suite the same hash of the same password, so
    the pairs repeat. Verification is a pure function of the pair: the outcome (True, or the
    same exception) is what argon2 said the first time, for real; hashing is not remembered.
    `auth._verify` (the app's wrapper, which tests spy on) still runs at every attempt.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._outcomes: dict[tuple[str | bytes, str | bytes], Exception | None] = {}

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        key = (hash, password)
        if key not in self._outcomes:
            try:
                super().verify(hash, password)
            except Argon2Error as error:
                self._outcomes[key] = error
            else:
                self._outcomes[key] = None
        failed = self._outcomes[key]
        if failed is not None:
            raise type(failed)(*failed.args)
        return True


auth._HASHER = RememberingHasher.from_parameters(auth._HASHER._parameters)


class RememberedCodebookRenders:
    """The export codebook's in-process render (`codebook._render_pdf`), remembered per test
    process by what it renders: the HTML the codebook's template gives and the folder of
    printable templates (its stylesheet, fonts and images).

    A codebook PDF takes 4-9 s of WeasyPrint on a quiet machine (the wide one, 48 pages:
    ~9 s), and each test's app has a cache folder of its own (tmp_path), so every test that
    exports rendered it again: seconds each for about a hundred tests a pass. The PDF is a
    function of that HTML and those files (no date, no data): the bytes given back are those
    a render gave the first time, for real. Renders apart (SELFCHECK_CODEBOOK_PDF_APART, the
    child process) are not remembered; tests that count or replace `_render_pdf` put their
    own in its place, as before.
    """

    def __init__(self, render: Callable[[Any], bytes]) -> None:
        self._render = render
        self._pdfs: dict[tuple[str, str], bytes] = {}
        self.rendered = 0

    def __call__(self, book: Any) -> bytes:
        from flask import current_app

        from selfcheck.evaluation import codebook

        if current_app.config.get(codebook.APART_KEY, True):
            return self._render(book)
        key = (
            str(codebook._printable_dir()),
            hashlib.sha256(codebook.html(book).encode()).hexdigest(),
        )
        if key not in self._pdfs:
            self._pdfs[key] = self._render(book)
            self.rendered += 1
        return self._pdfs[key]


def _remember_codebook_renders() -> None:
    from selfcheck.evaluation import codebook

    codebook._render_pdf = RememberedCodebookRenders(codebook._render_pdf)  # type: ignore[assignment]


_remember_codebook_renders()

AppFactory = Callable[..., Flask]


@pytest.fixture(autouse=True)
def _one_rate_limit_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rate limits' clock (`security.reserve`, and `ratelimit` where no `now` is given)
    stopped at the test's start: every hit of a test falls in one window. The windows are
    fixed and aligned on the epoch (600-3600 s in the tests); one ending in the middle of a
    test split its counts, and a limit expected after three attempts was not reached (a rare
    failure, seen once in round 22). Tests of the windows themselves give their own `now`."""
    started = ratelimit.utcnow()
    monkeypatch.setattr(ratelimit, "utcnow", lambda: started)
    monkeypatch.setattr(security, "utcnow", lambda: started)


@pytest.fixture
def make_app(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppFactory]:
    """Build apps on the test database (extra keyword arguments become config overrides)."""
    monkeypatch.setattr(selfcheck, "load_definition", cached_load_definition)
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        config: dict[str, Any] = {
            "DATABASE_URL": database_url,
            "INSTANCE_PATH": tmp_path / "instance",
            "TESTING": True,
            # Second factor for platform administrators and evaluators: off for the suite's
            # password-only helpers; tests/views/test_admin_two_factor.py switches it on.
            "SELFCHECK_TOTP_REQUIRED": False,
            # Jobs run inside the request (huey immediate mode); tests/platform/test_jobs.py
            # also runs a real worker.
            "SELFCHECK_JOBS_URL": "immediate",
            # The export's codebook PDF rendered in the test process, not by a child process
            # (about 1 s more per export); tests/platform/test_printing.py renders apart.
            "SELFCHECK_CODEBOOK_PDF_APART": False,
        }
        config.update(overrides)
        app = create_app(config)
        app.jinja_env.bytecode_cache = SHARED_BYTECODE
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions[EXTENSION_KEY].dispose()
        app.extensions[JOBS_KEY].close()


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def visitor(client: FlaskClient) -> Visitor:
    """Drives the journey through the test client (CSRF tokens read from the pages)."""
    return Visitor(client)


@pytest.fixture
def new_visitor(app: Flask) -> Callable[[], Visitor]:
    """Another person, or the same person on another device: a client with no cookies."""
    return lambda: Visitor(app.test_client())


@pytest.fixture
def database(app: Flask) -> Database:
    db: Database = app.extensions[EXTENSION_KEY]
    return db


@pytest.fixture
def db_session(database: Database) -> Iterator[Session]:
    with database.session() as session:
        yield session


@pytest.fixture(scope="session")
def definition() -> Definition:
    return cached_load_definition(DEFAULT_DEFINITION)


@pytest.fixture
def structure(db_session: Session) -> Structure:
    created = create_structure(db_session, "Médiathèque de Rezé", "urbain", "44")
    db_session.commit()  # the test is the caller: operations never commit
    return created


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests are slow too: `-m "not slow"` leaves them out (scripts/test --fast).

    The slow tests run first (browser tests, then the others marked slow; otherwise in the
    order collected): under pytest-xdist, a test of minutes handed out last kept one worker
    busy while the other had nothing left to do.
    """
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.slow)
    items.sort(key=_run_order)


def _run_order(item: pytest.Item) -> int:
    if item.get_closest_marker("browser") is not None:
        return 0
    return 1 if item.get_closest_marker("slow") is not None else 2


# --- the PostgreSQL pass: only the tests that can reach the database (tests/database_use.py) ---

DATABASE_FREE_KEY = pytest.StashKey[list[str]]()


def _database_only() -> bool:
    return os.environ.get(database_use.ONLY_ENV, "") not in ("", "0")


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_database_only(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """With SELFCHECK_TEST_DATABASE_ONLY=1, leave out the tests that cannot reach the database."""
    if not _database_only():
        return
    free = database_use.database_free(items)
    if free:
        left_out = set(free)
        items[:] = [item for item in items if item not in left_out]
        config.hook.pytest_deselected(items=free)
    lines = database_use.summary(free)
    config.stash[DATABASE_FREE_KEY] = lines
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: the controller prints it
        workeroutput[database_use.ONLY_ENV] = lines


class _Sent:
    """What a test marked `one_database` sends a database, from the set-up of its fixtures
    to its end (None outside such a test): every statement SQLAlchemy sends (its cursor
    event), every statement a SQLite connection runs (its trace callback: a raw DBAPI
    cursor too) and every connection taken from a pool (a raw cursor of any driver needs
    one)."""

    log: list[str] | None = None

    @classmethod
    @contextmanager
    def paused(cls) -> Iterator[None]:
        """For the fixtures that build the suite's databases (the migrated SQLite template,
        the PostgreSQL schema), shared by every test and set up by the first that needs
        them: not what that test sends."""
        kept, cls.log = cls.log, None
        try:
            yield
        finally:
            cls.log = kept


def _sent(statement: str) -> None:
    if _Sent.log is not None and threading.current_thread().name != EMPTIER:
        _Sent.log.append(statement)


def _sent_by_cursor(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
    _sent(statement)


def _taken_from_pool(*_args: object) -> None:
    _sent("(a connection taken from the pool)")


@event.listens_for(Pool, "connect")
def _trace_sqlite(dbapi_connection: object, _record: object) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.set_trace_callback(_sent)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    """A test marked `one_database` is followed from the set-up of its fixtures on."""
    if database_use.one_database_reason(item) is not None:
        _Sent.log = []
        event.listen(Engine, "before_cursor_execute", _sent_by_cursor)
        event.listen(Pool, "checkout", _taken_from_pool)
    return (yield)


def _stop_following() -> list[str]:
    sent, _Sent.log = _Sent.log or [], None
    if event.contains(Engine, "before_cursor_execute", _sent_by_cursor):
        event.remove(Engine, "before_cursor_execute", _sent_by_cursor)
    if event.contains(Pool, "checkout", _taken_from_pool):
        event.remove(Pool, "checkout", _taken_from_pool)
    return sent


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """A test marked `one_database` (its database incidental, so run on the SQLite pass only)
    fails if it sends any database a statement while its fixtures are set up or while it
    runs: the marker is a claim, checked."""
    if database_use.one_database_reason(item) is None:
        return (yield)
    try:
        outcome = yield
    finally:
        sent = _stop_following()
    if sent:
        pytest.fail(
            f"marked {database_use.ONE_DATABASE} but sent {len(sent)} statement(s) to "
            f"the database, the first: {sent[0][:200]!r}",
            pytrace=False,
        )
    return outcome


def pytest_runtest_teardown(item: pytest.Item) -> None:
    _stop_following()  # a set-up that failed: the call did not run


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist controller: keep what a worker left out (every worker leaves out the same)."""
    lines = getattr(node, "workeroutput", {}).get(database_use.ONLY_ENV)
    if lines is not None:
        node.config.stash[DATABASE_FREE_KEY] = lines


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lines = config.stash.get(DATABASE_FREE_KEY, None)
    if lines is None:
        return
    terminalreporter.write_sep("-", "database tests only")
    for line in lines:
        terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Every selected test left out as database-free is no "collected nothing": the SQLite pass
    ran them. A run that selected nothing at all still fails (exit status 5)."""
    lines = session.config.stash.get(DATABASE_FREE_KEY, None)
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and lines and not lines[0].startswith("0 "):
        session.exitstatus = pytest.ExitCode.OK
