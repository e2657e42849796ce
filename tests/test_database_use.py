"""tests/database_use.py: which tests the PostgreSQL pass keeps (those that can reach the
database) and which it leaves out (they would run exactly as on the SQLite pass)."""

from __future__ import annotations

import pytest

from tests import database_use
from tests import database_use_samples as samples


def fixture_function(request: pytest.FixtureRequest, name: str) -> object:
    definitions = request._fixturemanager.getfixturedefs(name, request.node)
    assert definitions, name
    return definitions[-1].func


@pytest.mark.parametrize(
    ("name", "reaches"),
    [
        ("database_url", True),  # every app, client and session of the suite comes through it
        ("_postgres_engine", True),
        ("app", False),  # its own source names no hook: its fixture `database_url` does
        ("definition", False),
        ("_clean_environment", False),  # keeps the variable, reads no database
    ],
)
def test_root_fixtures_are_read_one_by_one(
    request: pytest.FixtureRequest, name: str, reaches: bool
) -> None:
    function = fixture_function(request, name)
    assert database_use.function_reaches_database(function) is reaches  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("module", "reaches"),
    [
        ("tests.reliability.scratch", True),  # names POSTGRES_URL
        ("tests.test_migrations", True),  # imports scratch
        ("tests.test_db", True),  # is_postgres() at module level
        ("tests.browser.conftest", True),  # the live server's own PostgreSQL database
        ("tests.questionnaire.test_roles", False),
        ("tests.support", False),
        ("tests.conftest", False),  # read function by function, not as a whole
    ],
)
def test_modules_are_read_with_what_they_import(module: str, reaches: bool) -> None:
    assert database_use.module_reaches_database(module) is reaches


def test_functions_are_followed_through_what_they_call() -> None:
    assert not database_use.function_reaches_database(samples.without_hook)
    assert database_use.function_reaches_database(samples.through_a_helper)


def test_this_test_is_kept_and_a_pure_one_would_not_be(request: pytest.FixtureRequest) -> None:
    # This module names is_postgres: all its tests are kept, conservatively.
    assert database_use.reaches_database(request.node)
    free = database_use.database_free([request.node])
    assert free == []


def test_a_test_marked_one_database_with_a_reason_is_left_out(
    request: pytest.FixtureRequest,
) -> None:
    request.node.add_marker(pytest.mark.one_database(reason="renders a PDF, no query"))
    assert database_use.one_database_reason(request.node) == "renders a PDF, no query"
    assert not database_use.reaches_database(request.node)
    assert database_use.database_free([request.node]) == [request.node]


@pytest.mark.parametrize("marker", [pytest.mark.one_database, pytest.mark.one_database(reason="")])
def test_one_database_without_a_reason_stops_the_run(
    request: pytest.FixtureRequest, marker: pytest.MarkDecorator
) -> None:
    request.node.add_marker(marker)
    with pytest.raises(pytest.UsageError, match="needs a reason"):
        database_use.reaches_database(request.node)
