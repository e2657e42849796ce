"""Which tests can reach the test database: the PostgreSQL pass runs only those.

`scripts/test` runs the whole suite on SQLite, then again on PostgreSQL. A test that never
reaches the test database (an engine test on a fixture definition, a YAML or template check,
a PDF layout...) does exactly the same thing on the second pass. With
SELFCHECK_TEST_DATABASE_ONLY=1 (the PostgreSQL pass of `scripts/test`) such tests are
deselected, and the run says how many and why.

Nothing here is a hand-kept list of tests. A test *may reach the database*, and is kept, when
any of these names a PostgreSQL hook of tests/conftest.py (`POSTGRES_URL`, `is_postgres`,
`postgres_database`, `reset_postgres`, `_postgres_engine`, `TEST_DATABASE_ENV` or the variable
SELFCHECK_TEST_DATABASE_URL itself):

- the source of the test's module, or of any `tests.*` module it imports, at any depth and
  inside functions too (tests/conftest.py itself is read function by function, below);
- the source of the test function or of any fixture it requests, directly or through other
  fixtures (the `database_url` fixture, through which every app, client and session of the
  suite gets its database, and the browser tests' `live_server` are found this way), followed
  through every function, class or module of `tests` they name.

The test database is only ever chosen through those names, so a test that names none of them,
directly or through its fixtures and helpers, runs on SQLite or on no database at all, the
same on both passes. The rule errs one way only: a test it cannot read is kept.

A test whose database is incidental (it needs an app, and so a database, but what it tests
runs no query: a PDF layout, a renderer counted...) says so with
`@pytest.mark.one_database(reason="...")` (a reason is required) and is left out too. The
marker is checked where it runs: on the SQLite pass a marked test that sends the database
any statement while it runs fails (`tests/conftest.py`, `_one_database_runs_no_query`).
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from types import CodeType, FunctionType, ModuleType
from typing import Any

import pytest

ONLY_ENV = "SELFCHECK_TEST_DATABASE_ONLY"
ONE_DATABASE = "one_database"
DATABASE_NAMES = re.compile(
    r"\b(POSTGRES_URL|is_postgres|postgres_database|reset_postgres|_postgres_engine"
    r"|TEST_DATABASE_ENV|SELFCHECK_TEST_DATABASE_URL)\b"
)
# The hooks themselves live here: its functions are read one by one, not as a whole.
ROOT_CONFTEST = "tests.conftest"
TESTS_PACKAGE = "tests"


def _in_tests(name: str | None) -> bool:
    return name is not None and (name == TESTS_PACKAGE or name.startswith(TESTS_PACKAGE + "."))


def _source_file(name: str) -> Path | None:
    """The file of module `name`, or None when it is no module (`tests.x.some_function`)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


@cache
def _imported_test_modules(name: str, path: Path) -> frozenset[str]:
    """The `tests.*` modules the source file of module `name` imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - (node.level - 1)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            names.add(stem)
            names.update(f"{stem}.{alias.name}" for alias in node.names)
    return frozenset(name for name in names if _in_tests(name))


@cache
def module_reaches_database(name: str) -> bool:
    """True when module `name`, or a `tests.*` module it imports at any depth, names a hook."""
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current in seen or current == ROOT_CONFTEST:
            continue  # tests/conftest.py is read function by function
        seen.add(current)
        path = _source_file(current)
        if path is None:
            if current in sys.modules:
                return True  # a module we cannot read: keep the test
            continue  # `tests.x.name` for a name imported from module tests.x
        if DATABASE_NAMES.search(path.read_text(encoding="utf-8")):
            return True
        pending.extend(_imported_test_modules(current, path))
    return False


def _names(code: CodeType) -> Iterable[str]:
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            yield from _names(constant)


_function_answers: dict[Callable[..., Any], bool] = {}


def function_reaches_database(function: Callable[..., Any]) -> bool:
    """True when `function`, or a `tests.*` function, class or module it names (at any
    depth), names a hook."""
    if function not in _function_answers:
        _function_answers[function] = _function_reaches(function, frozenset())
    return _function_answers[function]


def _function_reaches(function: Callable[..., Any], seen: frozenset[int]) -> bool:
    function = inspect.unwrap(function)
    if id(function) in seen:
        return False
    seen = seen | {id(function)}
    if not isinstance(function, FunctionType):
        return True  # a callable object we cannot read: keep the test
    if not _in_tests(function.__module__):
        return False  # pytest's, hypothesis's or selfcheck's own code: no test hook there
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return True
    if DATABASE_NAMES.search(source):
        return True
    if function.__module__ != ROOT_CONFTEST and module_reaches_database(function.__module__):
        return True
    for name in set(_names(function.__code__)):
        value = function.__globals__.get(name)
        if isinstance(value, ModuleType):
            if _in_tests(value.__name__) and module_reaches_database(value.__name__):
                return True
        elif isinstance(value, FunctionType):
            if _function_reaches(value, seen):
                return True
        elif (
            isinstance(value, type)
            and _in_tests(value.__module__)
            and (value.__module__ == ROOT_CONFTEST or module_reaches_database(value.__module__))
        ):
            return True
    return False


def one_database_reason(item: pytest.Item) -> str | None:
    """The reason given by the test's `one_database` marker, None without one. A marker
    without a reason is a mistake (pytest.UsageError): the reason is the marker's proof."""
    marker = item.get_closest_marker(ONE_DATABASE)
    if marker is None:
        return None
    reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
    if not isinstance(reason, str) or not reason.strip():
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.{ONE_DATABASE} needs a reason")
    return reason


def reaches_database(item: pytest.Item) -> bool:
    """May this test reach the test database? (True when in doubt.)"""
    if not isinstance(item, pytest.Function):
        return True
    if one_database_reason(item) is not None:
        return False  # incidental, said and checked (module docstring)
    if item.module is None or module_reaches_database(item.module.__name__):
        return True
    if function_reaches_database(item.function):
        return True
    definitions = item._fixtureinfo.name2fixturedefs
    for name in item.fixturenames:
        for definition in definitions.get(name, ()):
            if function_reaches_database(definition.func):
                return True
    return False


def database_free(items: list[pytest.Item]) -> list[pytest.Item]:
    return [item for item in items if not reaches_database(item)]


def summary(deselected: list[pytest.Item]) -> list[str]:
    """What the run says: how many tests were left out and where they are."""
    folders = Counter(str(Path(item.nodeid.split("::")[0]).parent) for item in deselected)
    lines = [
        f"{len(deselected)} tests left out ({ONLY_ENV}=1): none of them can reach the test "
        "database (no fixture, helper or module of theirs names it), so they would run "
        "exactly as on the SQLite pass",
    ]
    if folders:
        lines.append(
            "left out, by folder: "
            + ", ".join(f"{folder} {number}" for folder, number in sorted(folders.items()))
        )
    return lines
